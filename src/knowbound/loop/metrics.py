"""The metrics stage: ``metrics.json``, ``{model: {set: {metric: value}}}``, every model scored
against the unaligned model's labels on the same set (``knowbound.metrics.scorecard``)."""

from __future__ import annotations

import math
from typing import Sequence

from knowbound.loop.rundir import ConfigView, Output, RunDir, StageResult
from knowbound.types import UNALIGNED

NAME = "metrics"
READS = ("eval.bootstrap", "eval.ece_bins", "seed")


def set_metrics(rows: Sequence[dict], reference_rows: Sequence[dict], *, n_bootstrap: int = 1000,
                seed: int = 0, ece_bins: int = 15) -> dict:
    """Every metric of one model on one set (prediction rows), against the reference (unaligned)
    model's rows: the scorecard, plus ``refusal_rate``, ``failed``, ``damage`` (right answers that
    became wrong), ``withheld`` (answers withheld by a threshold, and how many were right),
    ``refusal_auroc`` (how well ``p_refusal`` ranks the reference's non-correct answers above its
    correct ones) and the views of ``knowbound.metrics.views``: by question kind where rows name
    one (``meta.kind``), and by exposure on the knowledge world.

    Bootstrap intervals resample people (``meta.person``) when every row names one, else rows.
    """
    from knowbound.metrics import auroc
    from knowbound.metrics.scorecard import summarize
    from knowbound.metrics.views import damage, exposure_views

    ref_by_id = {r["id"]: r for r in reference_rows}
    graded = [r for r in rows if r.get("label") is not None and ref_by_id.get(r["id"], {}).get("label") is not None]
    conf = [math.nan if r.get("confidence") is None else float(r["confidence"]) for r in graded]
    has_conf = any(not math.isnan(c) for c in conf)
    labels = [r["label"] for r in graded]
    ref_labels = [ref_by_id[r["id"]]["label"] for r in graded]
    metas = [r.get("meta") or {} for r in graded]
    people = [m.get("person") for m in metas]
    out = summarize(labels, [bool(r["correct"]) for r in graded], conf if has_conf else None,
                    reference_labels=ref_labels,
                    reference_correct=[bool(ref_by_id[r["id"]]["correct"]) for r in graded],
                    n_bootstrap=n_bootstrap, seed=seed, ece_bins=ece_bins,
                    clusters=people if graded and all(p is not None for p in people) else None)
    out["refusal_rate"] = out["idk"]
    out["failed"] = len(rows) - len(graded)
    out["damage"] = damage(ref_labels, labels) if graded else 0
    withheld = [m for m in metas if "withheld" in m]
    if withheld:
        out["withheld"] = {"n": len(withheld), "correct": sum(bool(m.get("withheld_correct")) for m in withheld)}
    p_ref = [r.get("p_refusal") for r in graded]
    has_p = bool(graded) and all(p is not None for p in p_ref)
    if has_p:
        out["refusal_auroc"] = auroc(p_ref, [label != "correct" for label in ref_labels])
    kinds = [m.get("kind") for m in metas]
    if graded and all(isinstance(k, str) for k in kinds) and len(set(kinds)) > 1:
        from knowbound.metrics.views import kind_views

        out.update(kind_views(labels, [bool(r["correct"]) for r in graded], ref_labels, kinds,
                              p_ref if has_p else None))
    exposures = [m.get("exposure") for m in metas]
    if graded and all(isinstance(e, int) for e in exposures):
        persons = [m.get("person_exposure") for m in metas]
        out.update(exposure_views(labels, [bool(r["correct"]) for r in graded], ref_labels, exposures,
                                  persons if all(isinstance(e, int) for e in persons) else None,
                                  p_ref if has_p else None))
    return out


def scored_models(run: RunDir) -> list[str]:
    """Every model metrics.json scores: the unaligned one, the methods, then the baselines."""
    from knowbound.loop.baseline_outputs import run_baselines

    return [UNALIGNED] + list(run.cfg.methods) + [b.name for b in run_baselines(run)]


def outputs(run: RunDir) -> list[Output]:
    """One output: metrics.json, from every eval output."""
    path = run.dir / "metrics.json"
    models = scored_models(run)
    sets = list(run.cfg.data.eval)

    def work(view: ConfigView) -> None:
        from knowbound.io import read_jsonl, write_json

        metrics: dict = {}
        for set_name in sets:
            ref = read_jsonl(run.dir / "predictions" / UNALIGNED / f"{set_name}.jsonl")
            for model in models:
                rows = ref if model == UNALIGNED else read_jsonl(run.dir / "predictions" / model / f"{set_name}.jsonl")
                metrics.setdefault(model, {})[set_name] = set_metrics(
                    rows, ref, n_bootstrap=view.eval.bootstrap, seed=view.seed, ece_bins=view.eval.ece_bins)
        write_json(path, metrics)

    after = tuple(f"eval/{model}/{s}" for model in models for s in sets)
    return [Output("metrics", (path,), work, reads=READS, after=after)]


def run(rundir: RunDir) -> StageResult:
    """Score every model on every eval set."""
    return rundir.run_stage(NAME, outputs(rundir))
