"""The metrics stage: ``metrics.json``, ``{model: {set: {metric: value}}}``, every model scored
against the unaligned model's labels on the same set (``knowbound.metrics.scorecard``)."""

from __future__ import annotations

import math
from typing import Sequence

from knowbound.loop.eval import eval_models
from knowbound.loop.rundir import ConfigView, Output, RunDir, StageResult
from knowbound.types import UNALIGNED

NAME = "metrics"
READS = ("eval.bootstrap", "eval.ece_bins", "seed")


def set_metrics(rows: Sequence[dict], reference_rows: Sequence[dict], *, n_bootstrap: int = 1000,
                seed: int = 0, ece_bins: int = 15) -> dict:
    """Every metric of one model on one set (prediction rows), against the reference (unaligned)
    model's rows: the scorecard, plus ``refusal_rate``, ``failed`` and, where every answer has a
    ``p_refusal`` and a ground-truth exposure, ``refusal_auroc``."""
    from knowbound.metrics import auroc
    from knowbound.metrics.scorecard import summarize

    ref_by_id = {r["id"]: r for r in reference_rows}
    graded = [r for r in rows if r.get("label") is not None and ref_by_id.get(r["id"], {}).get("label") is not None]
    conf = [math.nan if r.get("confidence") is None else float(r["confidence"]) for r in graded]
    has_conf = any(not math.isnan(c) for c in conf)
    out = summarize([r["label"] for r in graded], [bool(r["correct"]) for r in graded], conf if has_conf else None,
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


def outputs(run: RunDir) -> list[Output]:
    """One output: metrics.json, from every eval output."""
    path = run.dir / "metrics.json"
    models = [UNALIGNED] + list(run.cfg.methods)
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

    after = tuple(f"eval/{model}/{s}" for model, _ in eval_models(run) for s in sets)
    return [Output("metrics", (path,), work, reads=READS, after=after)]


def run(rundir: RunDir) -> StageResult:
    """Score every model on every eval set."""
    return rundir.run_stage(NAME, outputs(rundir))
