"""The eval stage's baseline outputs: predictions of the baselines of ``knowbound.baselines``.

* ``eval/samples/<set>``: k answers of the unaligned model per eval question, sampled like the
  probe's (``samples/eval-<set>.jsonl``), for ``self-consistency``;
* ``eval/<baseline>/_fit``: a baseline's threshold, fitted on `train` from the probe;
* ``eval/<baseline>/<set>``: the unaligned model's predictions with the baseline's refusals
  (``predictions/<baseline>/<set>.jsonl``), scored like any model's.

Each baseline row carries ``p_refusal``, the baseline's refusal score (higher: more likely to
refuse), so the refusal AUROCs compare baselines and methods on one footing.
"""

from __future__ import annotations

import math
from typing import Callable

from knowbound.baselines import BASELINES, Baseline
from knowbound.errors import KnowboundError
from knowbound.loop.probe import MODEL_READS, MODEL_USES, server_reads
from knowbound.loop.rundir import ConfigView, Output, RunDir, budget_confidence, budget_reads
from knowbound.methods.phrases import REFUSAL
from knowbound.types import UNALIGNED

SAMPLE_READS = ("eval.consistency_samples", "probe.m", "probe.temperature", "probe.top_p", "probe.max_new_tokens",
                "prompt", "seed", *MODEL_READS)
SAMPLE_USES = ("probe.batch_size", *MODEL_USES)
CONSISTENCY_READS = ("eval.consistency_samples", "probe.m")


def consistency_k(view: ConfigView) -> int:
    """k of self-consistency: ``eval.consistency_samples``, else the probe's M, and at most M."""
    k = view.eval.consistency_samples
    return min(view.probe.m, k) if k is not None else view.probe.m


def run_baselines(run: RunDir) -> list[Baseline]:
    """The configured baselines that apply to this run (``exposure-rule`` needs the knowledge world,
    ``max-probability`` the hf backend's log-probabilities)."""
    return [BASELINES[name] for name in run.cfg.eval.baselines if not left_out(run, BASELINES[name])]


def left_out(run: RunDir, b: Baseline) -> str | None:
    """Why a configured baseline does not apply to this run, or None."""
    if b.needs == "exposure" and not run.cfg.model.world:
        return "it needs the knowledge world's exposure counts"
    if b.needs == "logprob" and run.cfg.model.backend != "hf":
        return "a server need not report the answer's log-probability (it needs the hf backend)"
    return None


def _needs_samples(run: RunDir) -> bool:
    return any(b.needs == "samples" for b in run_baselines(run))


def samples_path(run: RunDir, set_name: str):
    return run.dir / "samples" / f"eval-{set_name}.jsonl"


def sample_outputs(run: RunDir) -> list[Output]:
    """k sampled answers of the unaligned model per question of every eval set (when needed)."""
    if not _needs_samples(run):
        return []
    return [_sample_output(run, s) for s in run.cfg.data.eval]


def _sample_output(run: RunDir, set_name: str) -> Output:
    path = samples_path(run, set_name)

    def work(view: ConfigView) -> None:
        from knowbound.sampling import sample_questions

        p = view.probe
        k = consistency_k(view)
        stats = sample_questions(run.questions(set_name), run.backend(UNALIGNED, view), path, n=k,
                                 temperature=p.temperature, top_p=p.top_p, max_new_tokens=p.max_new_tokens,
                                 greedy=False, seed=view.seed, prompt=view.prompt, batch_size=p.batch_size,
                                 stop=view.model.stop)
        run.log(f"eval: samples on {set_name}: {k} per question for self-consistency "
                f"({stats.generated} generated, {stats.skipped} already done)")
        if stats.failed:  # as the probe: not done, and a re-run asks again for the failed ones only
            raise KnowboundError(f"eval: samples on {set_name}: {stats.failed} samples failed; re-run to retry them")

    return Output(f"eval/samples/{set_name}", (path,), work, reads=SAMPLE_READS + server_reads(run), uses=SAMPLE_USES,
                  after=(f"questions/{set_name}",), identity={"model": run.model_id}, resumable=True)


def outputs(run: RunDir) -> list[Output]:
    """A threshold fit (where the baseline has one) and one output per eval set, per baseline."""
    outs = []
    for b in run_baselines(run):
        if b.name in FITTED:
            outs.append(_fit_output(run, b))
        outs += [_set_output(run, b, s) for s in run.cfg.data.eval]
    return outs


# --- scores: higher means "more likely right", refuse below the fitted threshold -----------------

def _person_exposure(meta) -> float:
    return float(meta.get("person_exposure", meta.get("exposure", 0)))


def _train_scores(run: RunDir, view: ConfigView, baseline: str) -> tuple[list[float], list[str], list]:
    """(scores, unaligned greedy labels, groups: the person, else the question) of every probed
    training question with a greedy label."""
    from knowbound.grading.agreement import consistency
    from knowbound.loop.label import read_knowledge

    items = [i for i in read_knowledge(run.dir, run.questions("train")) if i.knowledge.greedy_label]
    if baseline == "exposure-rule":
        scores = [_person_exposure(i.question.meta) for i in items]
    elif baseline == "max-probability":
        from knowbound.io import read_jsonl
        from knowbound.loop.probe import sample_paths

        greedy = {r["question_id"]: r.get("logprob") for r in read_jsonl(sample_paths(run.dir, ())[0])
                  if r["sample_index"] == 0}
        items = [i for i in items if greedy.get(i.question.id) is not None]
        scores = [float(greedy[i.question.id]) for i in items]
    else:
        k = consistency_k(view)
        scores = [consistency(i.knowledge.greedy or "", i.knowledge.samples[:k], i.question.question) or 0.0
                  for i in items]
    return (scores, [i.knowledge.greedy_label for i in items],
            [i.question.group for i in items])


SCORES = {"exposure-rule": "person exposure", "max-probability": "log-probability of the greedy answer",
          "self-consistency": "share of samples agreeing with the greedy answer"}
FITTED = ("exposure-rule", "max-probability", "self-consistency")


def _fit_output(run: RunDir, b: Baseline) -> Output:
    from knowbound.loop.eval import FIT, fit_path

    path = fit_path(run, b.name)
    reads_budget = budget_reads(run.cfg)

    def work(view: ConfigView) -> None:
        from knowbound.baselines import fit_threshold
        from knowbound.io import write_json

        scores, reference, groups = _train_scores(run, view, b.name)
        fit = fit_threshold(scores, reference, max_accuracy_drop=view.eval.max_accuracy_drop,
                            budget_confidence=budget_confidence(view, reads_budget), groups=groups)
        path.parent.mkdir(parents=True, exist_ok=True)
        score = SCORES[b.name]
        write_json(path, {**fit.to_dict(), "score": score, "fitted_on": "train"})
        run.log(f"eval: {b.name}: refuses below {score} {fit.threshold:.3f} "
                f"(fitted on train: honesty {fit.honesty:.3f}, refusals {fit.refusal_rate:.3f})")

    reads = reads_budget + (CONSISTENCY_READS if b.name == "self-consistency" else ())
    after = ("questions/train", "label") + (("probe",) if b.name == "max-probability" else ())
    return Output(f"eval/{b.name}/{FIT}", (path,), work, reads=reads, after=after, identity={"baseline": b.name})


def _set_output(run: RunDir, b: Baseline, set_name: str) -> Output:
    from knowbound.loop.eval import FIT

    key = f"eval/{b.name}/{set_name}"
    path = run.dir / "predictions" / b.name / f"{set_name}.jsonl"

    def work(view: ConfigView) -> None:
        from knowbound.baselines import withhold
        from knowbound.io import read_jsonl, write_jsonl

        rows = read_jsonl(run.dir / "predictions" / UNALIGNED / f"{set_name}.jsonl")
        score, refuse = _rule(run, view, b.name, set_name)
        refused = {r["id"] for r in rows if r.get("label") is not None and refuse(r)}
        for row in rows:
            s = score(row) if row.get("label") is not None else None
            row["p_refusal"] = None if s is None else _refusal_score(s)
            row["confidence"] = None
            row.pop("logprob", None)
        write_jsonl(path, withhold(rows, lambda r: r["id"] in refused, REFUSAL))

    after = (f"eval/{UNALIGNED}/{set_name}",)
    if b.name in FITTED:
        after += (f"eval/{b.name}/{FIT}",)
    if b.needs == "samples":
        after += (f"eval/samples/{set_name}",)
    reads = CONSISTENCY_READS if b.name == "self-consistency" else ()
    return Output(key, (path,), work, reads=reads, after=after, identity={"baseline": b.name})


def _refusal_score(score: float) -> float:
    """A score where higher means "more likely right", as a refusal score in [0, 1]."""
    return 1.0 / (1.0 + score) if score >= 0 else 1.0


def _rule(run: RunDir, view: ConfigView, name: str, set_name: str
          ) -> tuple[Callable[[dict], float | None], Callable[[dict], bool]]:
    """(score of a row, whether the baseline refuses it) for one baseline on one set."""
    if name == "always-abstain":
        return (lambda row: 0.0), (lambda row: True)
    if name == "oracle":
        return (lambda row: 1.0 if row["label"] == "correct" else 0.0), (lambda row: row["label"] != "correct")
    from knowbound.loop.eval import read_fit

    fit = read_fit(run, name)
    if name == "exposure-rule":
        score = lambda row: _person_exposure(row.get("meta") or {})  # noqa: E731
        return score, (lambda row: fit.refuses(score(row)))
    if name == "max-probability":
        logprob = lambda row: float(row.get("logprob") if row.get("logprob") is not None else -math.inf)  # noqa: E731
        return (lambda row: math.exp(logprob(row))), (lambda row: fit.refuses(logprob(row)))
    from knowbound.grading.agreement import consistency
    from knowbound.io import read_jsonl
    from knowbound.loop.label import group_samples

    samples = group_samples(read_jsonl(samples_path(run, set_name)))
    k = consistency_k(view)

    def agree(row: dict) -> float:
        by_index = samples.get(row["id"], {})
        texts = [s.text for i, s in sorted(by_index.items()) if s.finish_reason != "error"][:k]
        value = consistency(row["pred_text"], texts, row.get("question", ""))
        return 0.0 if value is None or math.isnan(value) else value

    return agree, (lambda row: fit.refuses(agree(row)))
