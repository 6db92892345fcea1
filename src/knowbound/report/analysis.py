"""The numbers behind the figures and the example transcripts, from a loaded run.

Calibration numbers come from ``knowbound.metrics`` (ECE, risk-coverage, AURC); the only thing
computed here is the per-bin breakdown a reliability diagram draws, with the binning rule of
``knowbound.metrics.ece`` (which returns only the total).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from knowbound.metrics import aurc, ece, risk_coverage
from knowbound.report.data import REFERENCE_MODEL, RunData
from knowbound.report.document import Examples, Transcript, slug
from knowbound.types import LABELS
from knowbound.metrics.views import EXPOSURE_BUCKETS

# Exposures from here on share one point: few facts have each count, and all are well known.
EXPOSURE_GROUP_FROM = EXPOSURE_BUCKETS[-1][1]  # the start of the world's last bucket ("8+")
EXAMPLES_PER_CELL = 3


def transition_counts(metrics: dict) -> np.ndarray | None:
    """3x3 counts (rows: unaligned label, columns: aligned label) from ``metrics['transitions']``."""
    table = metrics.get("transitions")
    if not isinstance(table, dict):
        return None
    return np.array([[int((table.get(r) or {}).get(c) or 0) for c in LABELS] for r in LABELS])


@dataclass(frozen=True)
class HonestyPoint:
    model: str
    over_conservativeness: float
    prudence: float
    over_ci: tuple[float, float] | None
    prudence_ci: tuple[float, float] | None


def _interval(ci: dict, key: str) -> tuple[float, float] | None:
    value = ci.get(key)
    if isinstance(value, (list, tuple)) and len(value) == 2 and all(isinstance(x, (int, float)) for x in value):
        return float(value[0]), float(value[1])
    return None


def honesty_points(run: RunData, set_name: str) -> list[HonestyPoint]:
    """(over-conservativeness, prudence) of every model that has both on ``set_name``."""
    points = []
    for model in run.models:
        m = run.metric(model, set_name)
        oc, pr = m.get("over_conservativeness"), m.get("prudence")
        if isinstance(oc, (int, float)) and isinstance(pr, (int, float)) and not np.isnan([oc, pr]).any():
            ci = m.get("ci") if isinstance(m.get("ci"), dict) else {}
            points.append(HonestyPoint(model, float(oc), float(pr), _interval(ci, "over_conservativeness"),
                                       _interval(ci, "prudence")))
    return points


def confidence_rows(rows: list[dict]) -> tuple[np.ndarray, np.ndarray]:
    """(confidence, loosely correct) of the rows that state a confidence in [0, 1]."""
    kept = [r for r in rows if isinstance(r.get("confidence"), (int, float)) and not isinstance(r["confidence"], bool)
            and 0.0 <= r["confidence"] <= 1.0]
    return (np.array([float(r["confidence"]) for r in kept]),
            np.array([bool(r.get("correct")) for r in kept], dtype=bool))


@dataclass(frozen=True)
class Reliability:
    """Per-bin accuracy, mean confidence and count (NaN for empty bins), and the total ECE."""

    n_bins: int
    accuracy: np.ndarray
    confidence: np.ndarray
    counts: np.ndarray
    ece: float


def reliability(conf: np.ndarray, correct: np.ndarray, n_bins: int) -> Reliability:
    """Reliability-diagram bins: bin b = [b/B, (b+1)/B), the last also holds 1.0 (as ``metrics.ece``)."""
    bins = np.minimum((conf * n_bins).astype(np.int64), n_bins - 1)
    counts = np.bincount(bins, minlength=n_bins)
    with np.errstate(invalid="ignore", divide="ignore"):
        acc = np.bincount(bins, weights=correct.astype(float), minlength=n_bins) / counts
        mean_conf = np.bincount(bins, weights=conf, minlength=n_bins) / counts
    return Reliability(n_bins, acc, mean_conf, counts, float(ece(conf, correct, n_bins) or 0.0))


@dataclass(frozen=True)
class RiskCurve:
    model: str
    coverage: np.ndarray
    risk: np.ndarray
    aurc: float


def risk_curve(model: str, conf: np.ndarray, correct: np.ndarray) -> RiskCurve:
    """Risk against coverage when answering only above a confidence threshold, and its AURC."""
    coverage, risk = risk_coverage(conf, correct)
    return RiskCurve(model, coverage, risk, float(aurc(conf, correct) or 0.0))


@dataclass(frozen=True)
class ExposureCurves:
    """Refusal rate per exposure bucket for each model, next to the unaligned model's error rate."""

    buckets: tuple[str, ...]
    counts: tuple[int, ...]  # questions per bucket (of the reference model, else the first model)
    refusal: dict[str, list[float | None]]
    unaligned_error: list[float | None] | None


def _bucket(exposure: int) -> int:
    return min(exposure, EXPOSURE_GROUP_FROM)


def _bucket_label(key: int, grouped: bool) -> str:
    return f"{key}+" if grouped and key == EXPOSURE_GROUP_FROM else str(key)


def _share(rows_by_bucket: dict[int, list[dict]], keys: list[int], test) -> list[float | None]:
    return [(sum(map(test, rows_by_bucket[k])) / len(rows_by_bucket[k])) if rows_by_bucket.get(k) else None
            for k in keys]


def exposure_curves(run: RunData, set_name: str) -> ExposureCurves | None:
    """Refusal rate by ground-truth exposure on ``set_name``; None when no row carries an exposure."""
    by_model: dict[str, dict[int, list[dict]]] = {}
    grouped = False
    for model in run.models:
        for row in run.rows(model, set_name):
            exposure = run.exposure(row, set_name)
            if exposure is not None:
                grouped |= exposure > EXPOSURE_GROUP_FROM
                by_model.setdefault(model, {}).setdefault(_bucket(exposure), []).append(row)
    if not by_model:
        return None
    keys = sorted({k for buckets in by_model.values() for k in buckets})
    base = by_model.get(REFERENCE_MODEL) or next(iter(by_model.values()))
    refusal = {m: _share(b, keys, lambda r: r.get("label") == "idk") for m, b in by_model.items()}
    error = None
    if REFERENCE_MODEL in by_model:
        error = _share(by_model[REFERENCE_MODEL], keys, lambda r: r.get("label") != "correct")
    return ExposureCurves(tuple(_bucket_label(k, grouped) for k in keys),
                          tuple(len(base.get(k, [])) for k in keys), refusal, error)


def _gold(row: dict) -> str:
    answers = row.get("answers")
    if isinstance(answers, list):
        return " | ".join(str(a) for a in answers)
    return "" if answers is None else str(answers)


def _confidence_text(row: dict) -> str:
    value = row.get("confidence")
    return f"{value:.2f}" if isinstance(value, (int, float)) and not isinstance(value, bool) else ""


def examples(run: RunData, method: str, set_name: str, per_cell: int = EXAMPLES_PER_CELL) -> list[Examples]:
    """For each non-empty cell (unaligned label -> ``method``'s label), the first ``per_cell``
    answers in the method's file order (deterministic), paired with the unaligned answer by id."""
    reference = {str(r.get("id")): r for r in run.rows(REFERENCE_MODEL, set_name)}
    cells: dict[tuple[str, str], list[tuple[dict, dict]]] = {}
    for row in run.rows(method, set_name):
        ref = reference.get(str(row.get("id")))
        if ref is not None and ref.get("label") in LABELS and row.get("label") in LABELS:
            cells.setdefault((ref["label"], row["label"]), []).append((ref, row))
    out = []
    for old in LABELS:
        for new in LABELS:
            pairs = cells.get((old, new), [])
            if not pairs:
                continue
            shown = tuple(
                Transcript(question=str(row.get("question", "")), gold=_gold(row),
                           unaligned=str(ref.get("pred_text", "")), aligned=str(row.get("pred_text", "")),
                           confidence=_confidence_text(row))
                for ref, row in pairs[:per_cell]
            )
            out.append(Examples(id=f"examples-{slug(method)}-{old}-{new}", title=f"{old} → {new}",
                                transcripts=shown, total=len(pairs)))
    return out
