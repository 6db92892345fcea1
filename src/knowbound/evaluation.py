"""The eval stage: greedy answers of a model on an eval set, graded, with confidences.

Each prediction row (see docs/run-directory.md) is readable by ``knowbound score`` as is. Beside
the label it records the answer's confidence where the method has one — a verbal phrase, or for
R-Tuning P(sure) / (P(sure) + P(unsure)) at the certainty slot — and ``p_refusal``, the model's
probability of answering with a refusal, a threshold-free view of where it would refuse.
"""

from __future__ import annotations

import math
from typing import Sequence

import numpy as np

from knowbound.errors import KnowboundError
from knowbound.grading import grade
from knowbound.methods import Method
from knowbound.methods.phrases import REFUSAL, RTUNING_QUESTION, RTUNING_SURE, RTUNING_UNSURE
from knowbound.prompts import render_prompt
from knowbound.types import Question, SamplingParams


def _rtuning_prefix(text: str) -> str:
    """The generated answer up to and including the certainty question (added if missing)."""
    cut = text.find(RTUNING_QUESTION)
    if cut >= 0:
        return text[: cut + len(RTUNING_QUESTION)]
    return f"{text.strip()} {RTUNING_QUESTION}"


def refusal_start(refusal: str, words: int = 2) -> str:
    """The opening words of a refusal ("I apologize"): what a model says when it starts one."""
    return " ".join(refusal.split()[:words]).rstrip(",.")


def _softmax2(a: float, b: float) -> float:
    """exp(a) / (exp(a) + exp(b)), stable."""
    m = max(a, b)
    return math.exp(a - m) / (math.exp(a - m) + math.exp(b - m))


def predict(backend, questions: Sequence[Question], method: Method | None, prompt: str,
            *, max_new_tokens: int = 64, mode: str = "default", refusal: str = REFUSAL) -> list[dict]:
    """Greedy answers of ``backend`` to ``questions``, graded; ``method`` None is the unaligned model."""
    prompt_name = (method.eval_prompt if method is not None and method.eval_prompt else prompt)
    prompts = [render_prompt(prompt_name, q) for q in questions]
    outputs = backend.generate(prompts, SamplingParams(n=1, temperature=0.0, max_new_tokens=max_new_tokens))
    texts = [out[0].text for out in outputs]
    confidence_kind = method.confidence if method is not None else "none"

    p_refusal: list[float | None] = [None] * len(questions)
    rtuning_conf: list[float | None] = [None] * len(questions)
    scoring = getattr(backend, "logprobs_of", None)  # a server backend cannot score continuations
    if confidence_kind == "rtuning" and scoring is None:
        raise KnowboundError("R-Tuning's confidence needs log-probabilities: evaluate it with the hf backend")
    if confidence_kind == "rtuning":
        prefixes = [_rtuning_prefix(t) for t in texts]
        scores = scoring(prompts, [[f"{p} {RTUNING_SURE}", f"{p} {RTUNING_UNSURE}"] for p in prefixes])
        rtuning_conf = [_softmax2(s[0], s[1]) for s in scores]
        p_refusal = [1.0 - c for c in rtuning_conf]
    elif scoring is not None:
        scores = scoring(prompts, [[refusal_start(refusal)]] * len(prompts))
        p_refusal = [math.exp(s[0]) for s in scores]

    rows = []
    for q, out, text, conf_rt, p_ref in zip(questions, outputs, texts, rtuning_conf, p_refusal):
        completion = out[0]
        if completion.failed:
            rows.append({"id": q.id, "question": q.question, "answers": list(q.answers), "pred_text": "",
                         "label": None, "correct": None, "refusal": None, "confidence": None,
                         "p_refusal": None, "error": completion.error, "meta": dict(q.meta)})
            continue
        g = grade(text, q, mode)
        confidence = conf_rt if confidence_kind == "rtuning" else (g.confidence if confidence_kind == "verbal" else None)
        rows.append({"id": q.id, "question": q.question, "answers": list(q.answers), "pred_text": text,
                     "label": g.label, "correct": g.correct, "refusal": g.refusal, "confidence": confidence,
                     "p_refusal": p_ref, "finish_reason": completion.finish_reason, "meta": dict(q.meta)})
    return rows


def set_metrics(rows: Sequence[dict], reference_rows: Sequence[dict], *, n_bootstrap: int = 1000,
                seed: int = 0, ece_bins: int = 15) -> dict:
    """Every metric of one model on one set, against the reference (unaligned) model's rows."""
    from knowbound.metrics import auroc
    from knowbound.scoring import summarize

    ref_by_id = {r["id"]: r for r in reference_rows}
    graded = [r for r in rows if r.get("label") is not None and ref_by_id.get(r["id"], {}).get("label") is not None]
    labels = [r["label"] for r in graded]
    correct = [bool(r["correct"]) for r in graded]
    conf = [np.nan if r.get("confidence") is None else float(r["confidence"]) for r in graded]
    has_conf = any(not math.isnan(c) for c in conf)
    out = summarize(labels, correct, conf if has_conf else None,
                    reference_labels=[ref_by_id[r["id"]]["label"] for r in graded],
                    reference_correct=[bool(ref_by_id[r["id"]]["correct"]) for r in graded],
                    n_bootstrap=n_bootstrap, seed=seed, ece_bins=ece_bins)
    out["refusal_rate"] = out["idk"]
    out["failed"] = len(rows) - len(graded)
    exposures = [r.get("meta", {}).get("exposure") for r in graded]
    p_ref = [r.get("p_refusal") for r in graded]
    if graded and all(isinstance(e, int) for e in exposures) and all(p is not None for p in p_ref):
        # Positive class: never-seen facts; a good model puts more refusal mass there.
        out["refusal_auroc"] = auroc(p_ref, [e == 0 for e in exposures])
    return out
