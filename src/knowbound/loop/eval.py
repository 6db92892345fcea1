"""The eval stage: greedy answers of the unaligned model and of every method's model on every eval
set, graded, in ``predictions/<model>/<set>.jsonl`` (``types.Prediction`` rows).

Beside the label each row records the answer's confidence where the method has one — a verbal
phrase, or for R-Tuning P(sure) / (P(sure) + P(unsure)) at the certainty slot — and
``p_refusal``, the model's probability of answering with a refusal, a threshold-free view of where
it would refuse.
"""

from __future__ import annotations

import math
from typing import Sequence

from knowbound.errors import KnowboundError
from knowbound.loop.probe import MODEL_READS
from knowbound.loop.rundir import ConfigView, Output, RunDir, StageResult
from knowbound.methods import Method, get_method
from knowbound.methods.phrases import REFUSAL, RTUNING_QUESTION, RTUNING_SURE, RTUNING_UNSURE
from knowbound.types import UNALIGNED, Prediction, Question, SamplingParams

NAME = "eval"
# Trained models are always answered with the hf backend; the unaligned one (also for prompt-only
# methods) reads every key of how it is asked (MODEL_READS).
READS = ("eval.max_new_tokens", "prompt", "grading", "model.prompt_format", "model.dtype")
USES = ("model.device", "model.max_batch_size", "model.threads")


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
            *, max_new_tokens: int = 64, mode: str = "default", refusal: str = REFUSAL) -> list[Prediction]:
    """Greedy answers of ``backend`` to ``questions``, graded; ``method`` None is the unaligned model."""
    from knowbound.grading import grade
    from knowbound.prompts import render_prompt

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
            rows.append(Prediction(q.id, q.question, q.answers, "", None, None, None, error=completion.error,
                                   meta=dict(q.meta)))
            continue
        g = grade(text, q, mode)
        confidence = conf_rt if confidence_kind == "rtuning" else (g.confidence if confidence_kind == "verbal" else None)
        rows.append(Prediction(q.id, q.question, q.answers, text, g.label, g.correct, g.refusal, confidence, p_ref,
                               completion.finish_reason, meta=dict(q.meta)))
    return rows


def eval_models(run: RunDir) -> list[tuple[str, Method | None]]:
    """(model name, method) of every evaluated model: the unaligned one (method None) first, then the
    prompt-only methods (they answer with the unaligned model, evaluated while it is loaded), then
    the trained ones, in config order."""
    methods = sorted((get_method(name) for name in run.cfg.methods), key=lambda m: m.kind != "none")
    return [(UNALIGNED, None)] + [(m.name, m) for m in methods]


def outputs(run: RunDir) -> list[Output]:
    """One output per (model, eval set)."""
    return [_output(run, model, method, set_name)
            for model, method in eval_models(run) for set_name in run.cfg.data.eval]


def _output(run: RunDir, model: str, method: Method | None, set_name: str) -> Output:
    key = f"eval/{model}/{set_name}"
    path = run.dir / "predictions" / model / f"{set_name}.jsonl"
    trained = method is not None and method.kind != "none"

    def work(view: ConfigView) -> None:
        from knowbound.crash import crash_point
        from knowbound.io import write_jsonl

        backend = run.backend(model if trained else UNALIGNED, view)
        rows = predict(backend, run.questions(set_name), method, view.prompt,
                       max_new_tokens=view.eval.max_new_tokens, mode=view.grading)
        crash_point(key)
        write_jsonl(path, (r.to_dict() for r in rows))
        idk = sum(r.label == "idk" for r in rows) / max(1, len(rows))
        acc = sum(bool(r.correct) for r in rows) / max(1, len(rows))
        run.log(f"eval: {model} on {set_name}: accuracy {acc:.3f}, refusals {idk:.3f}")

    after = (f"questions/{set_name}",) + ((f"train/{model}",) if trained else ())
    reads = READS + (() if trained else tuple(k for k in MODEL_READS if k not in READS))
    uses = USES + (() if trained else ("model.api_key_env",))
    identity = {"method": model, **({} if trained else {"model": run.model_id})}
    return Output(key, (path,), work, reads=reads, uses=uses, after=after, identity=identity)


def run(rundir: RunDir) -> StageResult:
    """Answer every eval set with every model."""
    return rundir.run_stage(NAME, outputs(rundir))
