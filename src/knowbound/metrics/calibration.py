"""Calibration of a per-answer confidence in [0, 1] against correctness.

Every function takes ``conf`` (confidences) and ``correct`` (0/1 or bool) of equal length and
returns a float, or None where the number is undefined (no rows, or only one class for the
ranking metrics) -- None rather than NaN so that results go into JSON as ``null``.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

ArrayLike = Sequence[float] | np.ndarray


def _as_arrays(conf: ArrayLike, correct: ArrayLike, *, unit: bool = True) -> tuple[np.ndarray, np.ndarray]:
    c = np.asarray(conf, dtype=np.float64)
    y = np.asarray(correct, dtype=np.float64)
    if c.shape != y.shape or c.ndim != 1:
        raise ValueError(f"conf and correct must be 1-D and of one length ({c.shape} vs {y.shape})")
    if np.isnan(c).any():
        raise ValueError("conf contains NaN; drop the rows without a confidence first")
    if unit and c.size and (c.min() < 0.0 or c.max() > 1.0):
        raise ValueError("confidences must lie in [0, 1]")
    return c, y


def ece(conf: ArrayLike, correct: ArrayLike, n_bins: int = 15) -> float | None:
    """Expected calibration error with ``n_bins`` equal-width bins.

    ECE = sum_b (n_b / n) * |acc_b - conf_b|, where bin b = [b/B, (b+1)/B) (the last bin also
    holds 1.0), acc_b is the fraction correct and conf_b the mean confidence of its rows.
    """
    c, y = _as_arrays(conf, correct)
    if not c.size:
        return None
    bins = np.minimum((c * n_bins).astype(np.int64), n_bins - 1)
    sum_conf = np.bincount(bins, weights=c, minlength=n_bins)
    sum_acc = np.bincount(bins, weights=y, minlength=n_bins)
    # sum_b n_b/n * |acc_b - conf_b| = sum_b |sum_acc_b - sum_conf_b| / n
    return float(np.abs(sum_acc - sum_conf).sum() / c.size)


def brier(conf: ArrayLike, correct: ArrayLike) -> float | None:
    """Brier score: mean of (conf - correct)^2."""
    c, y = _as_arrays(conf, correct)
    return float(np.mean((c - y) ** 2)) if c.size else None


def _average_ranks(x: np.ndarray) -> np.ndarray:
    """1-based ranks with ties sharing their average rank."""
    order = np.argsort(x, kind="mergesort")
    xs = x[order]
    first = np.r_[True, xs[1:] != xs[:-1]]
    starts = np.flatnonzero(first)
    ends = np.r_[starts[1:], x.size]
    group_rank = (starts + ends + 1) / 2.0  # mean of start+1 .. end
    ranks = np.empty(x.size)
    ranks[order] = group_rank[np.cumsum(first) - 1]
    return ranks


def auroc(conf: ArrayLike, correct: ArrayLike) -> float | None:
    """Area under the ROC curve of confidence as a detector of correct answers.

    Mann-Whitney form: (R_pos - n_pos (n_pos + 1) / 2) / (n_pos n_neg), R_pos the sum of the
    (tie-averaged) ranks of the correct answers: the probability that a random correct answer
    has higher confidence than a random wrong one, ties counting one half. None with one class.
    """
    c, y = _as_arrays(conf, correct, unit=False)
    pos = y > 0.5
    n_pos = int(pos.sum())
    n_neg = c.size - n_pos
    if n_pos == 0 or n_neg == 0:
        return None
    r_pos = _average_ranks(c)[pos].sum()
    return float((r_pos - n_pos * (n_pos + 1) / 2.0) / (n_pos * n_neg))


def stratified_auroc(scores: ArrayLike, positive: ArrayLike, strata: Sequence) -> float | None:
    """AUROC over pairs matched on a stratum: the probability that, within one stratum, a random
    positive scores higher than a random negative (ties one half), pooled over strata.

    = sum_s U_s / sum_s n_pos,s n_neg,s, with U_s the Mann-Whitney count of stratum s. A stratum
    with one class contributes no pair. Used for the refusal AUROC within one exposure, where a
    plain AUROC over mixed exposures would mostly measure the exposure. None without any pair.
    """
    c, y = _as_arrays(scores, positive, unit=False)
    keys = list(strata)
    if len(keys) != c.size:
        raise ValueError(f"strata has {len(keys)} entries for {c.size} scores")
    u_sum = pairs = 0.0
    for key in dict.fromkeys(keys):
        idx = np.fromiter((i for i, k in enumerate(keys) if k == key), dtype=np.int64)
        pos = y[idx] > 0.5
        n_pos = int(pos.sum())
        n_neg = idx.size - n_pos
        if n_pos and n_neg:
            r_pos = _average_ranks(c[idx])[pos].sum()
            u_sum += r_pos - n_pos * (n_pos + 1) / 2.0
            pairs += n_pos * n_neg
    return float(u_sum / pairs) if pairs else None


def _threshold_counts(c: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(kept, correct kept) at each distinct confidence threshold, highest threshold first."""
    order = np.argsort(-c, kind="mergesort")
    cs, ys = c[order], y[order]
    last_of_group = np.r_[np.flatnonzero(cs[1:] != cs[:-1]), cs.size - 1]
    kept = last_of_group + 1
    return kept, np.cumsum(ys)[last_of_group]


def average_precision(conf: ArrayLike, correct: ArrayLike) -> float | None:
    """Average precision of ranking answers by confidence (descending) to find correct ones.

    AP = sum_k (R_k - R_{k-1}) P_k over the distinct thresholds k (R recall, P precision of the
    answers with confidence >= threshold); without ties this is the mean, over correct answers,
    of the precision at their rank. Same value as scikit-learn's ``average_precision_score``.
    None when no answer is correct.
    """
    c, y = _as_arrays(conf, correct, unit=False)
    if not c.size or y.sum() == 0:
        return None
    kept, tp = _threshold_counts(c, y)
    precision = tp / kept
    recall = tp / tp[-1]
    return float(np.sum(np.diff(np.r_[0.0, recall]) * precision))


def risk_coverage(conf: ArrayLike, correct: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    """Selective answering: keep answers with confidence >= t, for each distinct t, highest first.

    Returns ``(coverage, risk)``: coverage = kept / n, risk = wrong among kept / kept. Tied
    confidences are kept or dropped together, so the curve does not depend on row order.
    """
    c, y = _as_arrays(conf, correct, unit=False)
    if not c.size:
        return np.zeros(0), np.zeros(0)
    kept, tp = _threshold_counts(c, y)
    return kept / c.size, (kept - tp) / kept


def aurc(conf: ArrayLike, correct: ArrayLike) -> float | None:
    """Area under the risk-coverage curve (lower is better).

    AURC = sum_k (cov_k - cov_{k-1}) * risk_k with cov_0 = 0; without ties this is the mean over
    k = 1..n of the risk of the k most confident answers (Geifman et al. 2019).
    """
    coverage, risk = risk_coverage(conf, correct)
    if not coverage.size:
        return None
    return float(np.sum(np.diff(np.r_[0.0, coverage]) * risk))
