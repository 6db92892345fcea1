"""The eval stage: greedy answers of the unaligned model and of every method's model on every eval
set, graded, in ``predictions/<model>/<set>.jsonl`` (``types.Prediction`` rows).

Beside the label each row records the answer's confidence where the method has one — a verbal
phrase, or for R-Tuning P(sure) / (P(sure) + P(unsure)) at the certainty slot — and
``p_refusal``, the model's probability of answering with a refusal, a threshold-free view of where
it would refuse.

A method that abstains by threshold (R-Tuning: its "I am unsure." follows a full answer) first
answers the `train` questions (``eval/<method>/_fit``): the threshold on its confidence that
maximises honesty there is written to ``predictions/<method>/_fit.json``, and on every eval set an
answer below it is withheld (``baselines.withhold``: the refusal, with the answer kept in
``meta.withheld``). The baselines' predictions (``knowbound.loop.baseline_outputs``) are outputs
of this stage too.
"""

from __future__ import annotations

import math
from typing import Sequence

from knowbound.errors import KnowboundError
from knowbound.loop.probe import MODEL_READS, server_reads
from knowbound.loop.rundir import ConfigView, Output, RunDir, StageResult, budget_confidence, budget_reads
from knowbound.methods import Method, get_method
from knowbound.methods.phrases import REFUSAL, RTUNING_QUESTION, RTUNING_SURE, RTUNING_UNSURE
from knowbound.types import UNALIGNED, Prediction, Question, SamplingParams

NAME = "eval"
# Trained models are always answered with the hf backend; the unaligned one (also for prompt-only
# methods) reads every key of how it is asked (MODEL_READS).
READS = ("eval.max_new_tokens", "prompt", "grading", "model.prompt_format", "model.dtype")
USES = ("model.device", "model.max_batch_size", "model.threads")
FIT = "_fit"  # the file stem (predictions/<model>/_fit.json) and key suffix of a threshold fit


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
            *, max_new_tokens: int = 64, mode: str = "default", refusal: str = REFUSAL,
            stop: tuple[str, ...] = ()) -> list[Prediction]:
    """Greedy answers of ``backend`` to ``questions``, graded; ``method`` None is the unaligned model."""
    from knowbound.grading import grade
    from knowbound.prompts import render_prompt

    prompt_name = (method.eval_prompt if method is not None and method.eval_prompt else prompt)
    prompts = [render_prompt(prompt_name, q) for q in questions]
    confidence_kind = method.confidence if method is not None else "none"
    # R-Tuning's certainty is read by scoring both replies after the certainty question, so the
    # answer is generated only up to that question.
    stop = (RTUNING_QUESTION,) if confidence_kind == "rtuning" else tuple(stop)
    outputs = backend.generate(prompts, SamplingParams(n=1, temperature=0.0, max_new_tokens=max_new_tokens, stop=stop))
    texts = [out[0].text for out in outputs]

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
                               completion.finish_reason, meta=dict(q.meta), logprob=completion.logprob))
    return rows


def check_failed(rows: Sequence[Prediction], what: str) -> None:
    """An error when answers failed to generate (a server that went down): the output is then not
    done, and a re-run asks again, rather than scoring the failures as missing answers."""
    failed = [r for r in rows if r.label is None]
    if failed:
        raise KnowboundError(f"eval: {what}: {len(failed)} of {len(rows)} answers failed "
                             f"({failed[0].error or 'no error text'}); re-run to retry them")


def fit_path(run: RunDir, model: str):
    """Where a model's (or baseline's) threshold fit is written."""
    return run.dir / "predictions" / model / f"{FIT}.json"


def read_fit(run: RunDir, model: str):
    """The threshold fit of ``model`` (``baselines.ThresholdFit``)."""
    import json
    import math

    from knowbound.baselines import ThresholdFit

    data = json.loads(fit_path(run, model).read_text())
    threshold = math.inf if data["threshold"] is None else data["threshold"]
    return ThresholdFit(threshold, data["honesty"], data["refusal_rate"], data["n"])


def eval_models(run: RunDir) -> list[tuple[str, Method | None]]:
    """(model name, method) of every evaluated model: the unaligned one (method None) first, then the
    prompt-only methods and P(IK) heads (they answer with the unaligned model, evaluated while it is
    loaded), then the trained ones, in config order."""
    methods = sorted((get_method(name) for name in run.cfg.methods), key=lambda m: (m.kind != "none", m.kind != "head"))
    return [(UNALIGNED, None)] + [(m.name, m) for m in methods]


def outputs(run: RunDir) -> list[Output]:
    """One output per (model, eval set), a threshold fit before the sets of a method that abstains
    by threshold, and the baselines' outputs (the samples they need right after the unaligned
    model's answers, while it is loaded)."""
    from knowbound.loop import baseline_outputs

    outs: list[Output] = []
    for model, method in eval_models(run):
        if method is not None and method.kind == "head":
            outs += [_head_output(run, model, method, set_name) for set_name in run.cfg.data.eval]
            continue
        if method is not None and method.abstain == "threshold":
            outs.append(_fit_output(run, model, method))
        outs += [_output(run, model, method, set_name) for set_name in run.cfg.data.eval]
        if model == UNALIGNED:
            outs += baseline_outputs.sample_outputs(run)
    return outs + baseline_outputs.outputs(run)


def _model_declarations(run: RunDir, model: str, method: Method | None):
    """(reads, uses, identity) of the outputs answered by ``model``."""
    trained = method is not None and method.kind != "none"
    reads = READS + (() if trained else tuple(k for k in MODEL_READS if k not in READS) + server_reads(run))
    uses = USES + (() if trained else ("model.api_key_env",))
    identity = {"method": model, **({} if trained else {"model": run.model_id})}
    return reads, uses, identity


def _output(run: RunDir, model: str, method: Method | None, set_name: str) -> Output:
    key = f"eval/{model}/{set_name}"
    path = run.dir / "predictions" / model / f"{set_name}.jsonl"
    trained = method is not None and method.kind != "none"
    by_threshold = method is not None and method.abstain == "threshold"

    def work(view: ConfigView) -> None:
        from knowbound.crash import crash_point
        from knowbound.io import write_jsonl

        backend = run.backend(model if trained else UNALIGNED, view)
        predictions = predict(backend, run.questions(set_name), method, view.prompt,
                              max_new_tokens=view.eval.max_new_tokens, mode=view.grading,
                              stop=() if trained else view.model.stop)
        check_failed(predictions, f"{model} on {set_name}")
        rows = [r.to_dict() for r in predictions]
        if by_threshold:
            from knowbound.baselines import withhold

            fit = read_fit(run, model)
            rows = withhold(rows, lambda r: r["confidence"] is not None and fit.refuses(r["confidence"]), REFUSAL)
        crash_point(key)
        write_jsonl(path, rows)
        idk = sum(r["label"] == "idk" for r in rows) / max(1, len(rows))
        acc = sum(bool(r["correct"]) for r in rows) / max(1, len(rows))
        run.log(f"eval: {model} on {set_name}: accuracy {acc:.3f}, refusals {idk:.3f}")

    after = (f"questions/{set_name}",) + ((f"train/{model}",) if trained else ())
    after += (f"eval/{model}/{FIT}",) if by_threshold else ()
    reads, uses, identity = _model_declarations(run, model, method)
    return Output(key, (path,), work, reads=reads, uses=uses, after=after, identity=identity)


def _head_output(run: RunDir, model: str, method: Method, set_name: str) -> Output:
    """A P(IK) head's predictions: the unaligned model's answers, withheld where P(IK) is below the
    head's threshold; ``confidence`` is P(IK), ``p_refusal`` 1 - P(IK)."""
    key = f"eval/{model}/{set_name}"
    path = run.dir / "predictions" / model / f"{set_name}.jsonl"

    def work(view: ConfigView) -> None:
        from knowbound.baselines import withhold
        from knowbound.io import read_jsonl, write_jsonl
        from knowbound.pik import PikHead, entity_features, entity_of, feature_matrix
        from knowbound.prompts import render_prompt

        head = PikHead.load(run.dir / "models" / model)
        rows = read_jsonl(run.dir / "predictions" / UNALIGNED / f"{set_name}.jsonl")
        questions = {q.id: q for q in run.questions(set_name)}
        graded = [r for r in rows if r.get("label") is not None]
        # The head reads hidden states, which a server does not return: hf on the same model.
        if view.model.backend == "hf":
            backend = run.backend(UNALIGNED, view)
        else:
            from knowbound.backends import open_backend

            backend = open_backend("hf", run.model_path, model_settings=view.model)
        prompts = [render_prompt(view.prompt, questions[r["id"]]) for r in graded]
        states = backend.answer_states(prompts, [r["pred_text"] for r in graded])
        entity = None
        if head.entity_key and graded:  # the entity features (build.pik_entity, build.pik_swaps)
            entity = entity_features(
                backend, prompts, [r["pred_text"] for r in graded],
                [entity_of(questions[r["id"]], head.entity_key, p) for r, p in zip(graded, prompts)],
                head.swap_tails, head.swaps, head.swap_seed)
        p_know = head.p_know(feature_matrix(states, entity)) if graded else []
        for r, p in zip(graded, p_know):
            r["confidence"], r["p_refusal"] = float(p), float(1.0 - p)
        rows = withhold(rows, lambda r: r["confidence"] < head.threshold, REFUSAL)
        write_jsonl(path, rows)
        idk = sum(r["label"] == "idk" for r in rows) / max(1, len(rows))
        run.log(f"eval: {model} on {set_name}: refusals {idk:.3f} (P(IK) below {head.threshold:.3f})")

    reads, uses, identity = _model_declarations(run, UNALIGNED, None)
    return Output(key, (path,), work, reads=reads, uses=uses,
                  after=(f"questions/{set_name}", f"eval/{UNALIGNED}/{set_name}", f"train/{model}"),
                  identity={**identity, "method": model})


def _fit_output(run: RunDir, model: str, method: Method) -> Output:
    """The threshold of a method that abstains by threshold, fitted on its answers to `train`."""
    key = f"eval/{model}/{FIT}"
    path = fit_path(run, model)
    reads_budget = budget_reads(run.cfg)

    def work(view: ConfigView) -> None:
        from knowbound.baselines import fit_threshold
        from knowbound.io import write_json
        from knowbound.loop.label import read_knowledge

        questions = run.questions("train")
        backend = run.backend(model, view)
        rows = predict(backend, questions, method, view.prompt, max_new_tokens=view.eval.max_new_tokens,
                       mode=view.grading)
        check_failed(rows, f"{model} on train, for its threshold")
        reference = {i.question.id: i.knowledge.greedy_label for i in read_knowledge(run.dir, questions)}
        ok = [r for r in rows if r.label is not None and r.confidence is not None and reference.get(r.id)]
        if not ok:  # a verbal-confidence model that stated none (it refused everything): withhold nothing
            from knowbound.baselines import ThresholdFit

            run.log(f"eval: {model}: no answer to train states a confidence; nothing will be withheld")
            fit = ThresholdFit(0.0, 0.0, 0.0, 0)
        else:
            group = {q.id: q.group for q in questions}
            fit = fit_threshold([r.confidence for r in ok], [reference[r.id] for r in ok], [r.label for r in ok],
                                max_accuracy_drop=view.eval.max_accuracy_drop,
                                budget_confidence=budget_confidence(view, reads_budget),
                                groups=[group[r.id] for r in ok])
        path.parent.mkdir(parents=True, exist_ok=True)
        write_json(path, {**fit.to_dict(), "score": "confidence", "fitted_on": "train"})
        run.log(f"eval: {model}: abstains below confidence {fit.threshold:.3f} "
                f"(fitted on train: honesty {fit.honesty:.3f}, refusals {fit.refusal_rate:.3f})")

    reads, uses, identity = _model_declarations(run, model, method)
    return Output(key, (path,), work, reads=reads + reads_budget, uses=uses,
                  after=("questions/train", "label", f"train/{model}"), identity=identity)


def run(rundir: RunDir) -> StageResult:
    """Answer every eval set with every model."""
    from knowbound.baselines import BASELINES
    from knowbound.loop.baseline_outputs import left_out

    for name in rundir.cfg.eval.baselines:
        why = left_out(rundir, BASELINES[name])
        if why:
            rundir.log(f"eval: baseline {name} left out: {why}")
    return rundir.run_stage(NAME, outputs(rundir))
