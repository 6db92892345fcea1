"""Every metric of one set of graded answers, as a JSON-ready dict: what ``knowbound score``
prints and what the loop's metrics stage writes per model and set."""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from knowbound.metrics.bootstrap import bootstrap_ci
from knowbound.metrics.calibration import auroc, aurc, average_precision, brier, ece
from knowbound.metrics.honesty import (
    DEFAULT_THRESHOLDS, accuracy, honesty_metrics, label_codes, label_rates, threshold_score, transitions,
)
from knowbound.types import IDK


def summarize(
    labels,
    correct,
    confidences: Sequence[float] | np.ndarray | None = None,
    reference_labels=None,
    reference_correct=None,
    *,
    n_bootstrap: int = 1000,
    seed: int = 0,
    ece_bins: int = 15,
    clusters: Sequence | None = None,
    thresholds: Sequence[float] = DEFAULT_THRESHOLDS,
) -> dict[str, Any]:
    """All metrics of one set of graded answers, as a JSON-ready dict.

    ``labels`` (codes or strings) and ``correct`` (loose) per answer; ``confidences`` with NaN
    for answers without one. Calibration (ECE, Brier, AUROC, AP, AURC) is over the answers that
    carry a confidence and are not refusals: a refusal states no answer to be calibrated, and so
    every method is scored on the same kind of answers (also one whose abstentions keep their
    confidence, like R-Tuning's). ``clusters``: bootstrap by cluster (``bootstrap_ci``).
    ``thresholds``: the threshold scores to report (``threshold_score``), as ``threshold_score``
    {"0.75": value}. ``reference_labels`` paired with
    ``labels`` adds over-conservativeness, prudence, honesty and the transitions. Keys:
    accuracy, correct, wrong, idk, [over_conservativeness, prudence, honesty], [ece, brier, auroc,
    average_precision, aurc], ci, [transitions], n, [n_confidence], [reference].
    """
    codes = label_codes(labels)
    flags = np.asarray(correct, dtype=bool)
    ref = None if reference_labels is None else label_codes(reference_labels)
    out: dict[str, Any] = {"accuracy": accuracy(flags), **label_rates(codes)}
    if ref is not None:
        out.update(honesty_metrics(ref, codes))
    if thresholds:
        out["threshold_score"] = {f"{t:g}": threshold_score(codes, t) for t in thresholds}
    n_conf = 0
    if confidences is not None:
        conf = np.asarray(confidences, dtype=np.float64)
        has = ~np.isnan(conf) & (codes != IDK)
        n_conf = int(has.sum())
        if n_conf:
            c, y = conf[has], flags[has]
            out.update(ece=ece(c, y, ece_bins), brier=brier(c, y), auroc=auroc(c, y),
                       average_precision=average_precision(c, y), aurc=aurc(c, y))
    if n_bootstrap > 0:
        ci = bootstrap_ci(codes, flags, ref, n_resamples=n_bootstrap, seed=seed, clusters=clusters)
        out["ci"] = {k: list(v) for k, v in ci.items()}
    if ref is not None:
        out["transitions"] = transitions(ref, codes)
    out["n"] = int(codes.size)
    if confidences is not None:
        out["n_confidence"] = n_conf
    if ref is not None:
        ref_flags = None if reference_correct is None else np.asarray(reference_correct, dtype=bool)
        out["reference"] = {**({} if ref_flags is None else {"accuracy": accuracy(ref_flags)}), **label_rates(ref)}
    return out
