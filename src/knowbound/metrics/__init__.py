"""Metrics: pure functions over per-answer labels, correctness flags and confidences.

``honesty`` -- accuracy, label rates, over-conservativeness / prudence / honesty, transitions;
``calibration`` -- ECE, Brier, AUROC, average precision, risk-coverage and AURC;
``bootstrap`` -- seeded percentile intervals. Each formula is in its function's docstring.
"""

from knowbound.metrics.bootstrap import bootstrap_ci
from knowbound.metrics.calibration import auroc, aurc, average_precision, brier, ece, risk_coverage
from knowbound.metrics.honesty import (
    LABEL_CODES,
    accuracy,
    honesty_from_transitions,
    honesty_metrics,
    label_codes,
    label_rates,
    refusal_rate,
    threshold_score,
    transition_matrix,
    transitions,
)

__all__ = [
    "LABEL_CODES",
    "accuracy",
    "auroc",
    "aurc",
    "average_precision",
    "bootstrap_ci",
    "brier",
    "ece",
    "honesty_from_transitions",
    "honesty_metrics",
    "label_codes",
    "label_rates",
    "refusal_rate",
    "risk_coverage",
    "threshold_score",
    "transition_matrix",
    "transitions",
]
