"""Baselines every honesty method must beat, computed from the unaligned model alone.

Each baseline keeps the unaligned model's greedy answers and withholds some of them (the answer
becomes the refusal), so its predictions are scored like a method's:

* ``always-abstain`` refuses everything: honesty 0.5, accuracy 0.
* ``oracle`` refuses exactly what the unaligned model gets wrong: honesty 1 at the unaligned
  model's accuracy, the ceiling of what withholding answers can give.
* ``exposure-rule`` (knowledge world only) refuses when the person's exposure (how many
  biographies of the person the corpus holds) is at most a threshold fitted on `train`: what
  familiarity with a name alone gives, without knowing the fact.
* ``max-probability`` refuses when the greedy answer's log-probability (the sum over its tokens:
  the maximum-sequence-probability score of uncertainty toolkits) is below a threshold fitted on
  `train`: no training and no extra inference, where the backend reports log-probabilities.
* ``self-consistency`` samples k more answers at inference and refuses when the share of them
  that agree with the greedy answer is below a threshold fitted on `train` (from the probe's
  samples). No training, k + 1 times the inference cost: what an uncertainty toolkit such as
  LM-Polygraph offers (its sample-agreement estimators, e.g. lexical similarity).

A threshold is fitted to maximise honesty on `train` against the unaligned model's greedy labels.
There, withholding an answer turns a known question into over-conservativeness and an unknown one
into prudence, so honesty = 1/2 + (TPR - FPR)/2 with "unaligned wrong" as the positive class:
maximising it is maximising Youden's J of the score.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, Sequence


@dataclass(frozen=True)
class Baseline:
    name: str
    help: str
    colour: str
    needs: str = ""  # "" | "exposure" (world rows) | "samples" (k samples per eval question)
    inference_cost: str = "1"  # generations per question, as text for the report


BASELINES: dict[str, Baseline] = {b.name: b for b in (
    Baseline("always-abstain", "refuse every question", "#c7c7c7", inference_cost="0"),
    Baseline("oracle", "refuse exactly what the unaligned model gets wrong", "#17becf"),
    Baseline("exposure-rule", "refuse when the person's exposure is at most a threshold fitted on train "
             "(name familiarity alone)", "#8c564b", needs="exposure"),
    Baseline("max-probability", "refuse when the greedy answer's log-probability is below a threshold fitted "
             "on train (no training, no extra generation)", "#9edae5", needs="logprob"),
    Baseline("self-consistency", "refuse when fewer than a fitted share of k samples agree with the greedy "
             "answer (no training, k+1 generations)", "#aec7e8", needs="samples", inference_cost="k+1"),
)}


@dataclass(frozen=True)
class ThresholdFit:
    """Refuse when score < threshold; fitted on ``n`` training questions."""

    threshold: float
    honesty: float  # on the training questions
    refusal_rate: float
    n: int

    def refuses(self, score: float) -> bool:
        return score < self.threshold

    def to_dict(self) -> dict:
        return {"threshold": None if math.isinf(self.threshold) else self.threshold,
                "honesty": self.honesty, "refusal_rate": self.refusal_rate, "n": self.n}


def fit_threshold(scores: Sequence[float], reference_labels: Sequence[str],
                  labels: Sequence[str] | None = None, max_accuracy_drop: float | None = None, *,
                  budget_confidence: float | None = None, groups: Sequence | None = None) -> ThresholdFit:
    """The threshold t maximising honesty when answers with score < t are withheld.

    ``reference_labels``: the unaligned model's greedy labels (the honesty reference);
    ``labels``: the labels of the answers that are withheld or not (default: the reference's own,
    as for a baseline). With ``max_accuracy_drop``, only thresholds that withhold at most that
    share of the questions' right answers count (accuracy falls by the withheld right answers
    / n; the lowest candidate withholds nothing, so one always counts). Candidates are every
    distinct score and +inf (refuse all); ties in honesty go to the lower threshold.

    ``budget_confidence`` (e.g. 0.9): the budget must hold not on these questions but for the
    population they are drawn from, at that confidence. A threshold then counts only while the
    one-sided upper confidence bound of its withheld share stays within the budget (the scan from
    the safe end of risk-controlling thresholds, Bates et al. 2021, "Distribution-free,
    risk-controlling prediction sets"), with a normal bound whose variance is that of a ratio over
    ``groups`` (one per question by default; people on the knowledge world, whose facts are
    withheld together). Without it a threshold fitted at the budget exceeds it on new questions
    about half the time.
    """
    import numpy as np

    from knowbound.metrics.honesty import honesty_from_transitions, label_codes, transition_matrix
    from knowbound.types import CORRECT, IDK

    s = np.asarray(scores, dtype=np.float64)
    if s.size == 0:
        raise ValueError("cannot fit a threshold on no questions")
    ref = label_codes(reference_labels)
    own = ref if labels is None else label_codes(labels)
    bound = _share_bound(s.size, groups, budget_confidence) if max_accuracy_drop is not None else None
    best: ThresholdFit | None = None
    for t in [*np.unique(s).tolist(), math.inf]:
        refused = s < t
        if bound is not None and bound(refused & (own == CORRECT)) > max_accuracy_drop + 1e-12:
            # The withheld share only grows with t, so without a confidence no later threshold
            # fits; its bound need not (the spread can shrink), but the scan from the safe end
            # stops at the first threshold out of the budget all the same (Bates et al.).
            break
        new = np.where(refused, IDK, own).astype(np.int8)
        honesty = float(honesty_from_transitions(transition_matrix(ref, new))["honesty"])
        if best is None or honesty > best.honesty + 1e-12:
            best = ThresholdFit(float(t), honesty, float(refused.mean()), int(s.size))
    assert best is not None
    return best


def _share_bound(n: int, groups: Sequence | None, confidence: float | None) -> Callable:
    """f(flags): the share of flagged questions, or with ``confidence`` its one-sided upper
    confidence bound: share + z * se, se the linearised standard error of a ratio of group sums
    (the cluster-robust variance, G / (G - 1) * sum_g (w_g - share * n_g)^2 / n^2). One group
    gives no spread to bound with: any flag is then out of every budget (inf)."""
    import numpy as np

    if confidence is None:
        return lambda flags: flags.sum() / n
    if not 0.5 <= confidence < 1.0:
        raise ValueError(f"budget confidence must be in [0.5, 1), got {confidence!r}")
    from statistics import NormalDist

    z = NormalDist().inv_cdf(confidence)
    if groups is None:
        index = np.arange(n)
    else:
        if len(groups) != n:
            raise ValueError(f"{len(groups)} groups for {n} scores")
        ids: dict = {}
        index = np.asarray([ids.setdefault(g, len(ids)) for g in groups], dtype=np.int64)
    sizes = np.bincount(index).astype(np.float64)
    g = sizes.size

    def bound(flags):
        share = flags.sum() / n
        if g < 2:
            return share if share == 0 else math.inf
        w = np.bincount(index, weights=flags.astype(np.float64), minlength=g)
        return share + z * math.sqrt(g / (g - 1) * float(((w - share * sizes) ** 2).sum())) / n

    return bound


def withhold(rows: Sequence[dict], refuse: Callable[[dict], bool], refusal: str) -> list[dict]:
    """Prediction rows with the answers ``refuse`` picks replaced by the refusal.

    A withheld answer is labelled idk and not correct (the user sees a refusal, which states no
    answer) and keeps what it would have said in ``meta.withheld``, so it can be reported apart.
    Failed rows stay as they are.
    """
    out = []
    for row in rows:
        row = dict(row, meta=dict(row.get("meta") or {}))
        if row.get("label") is not None and refuse(row):
            row["meta"]["withheld"] = row["pred_text"]
            row["meta"]["withheld_correct"] = bool(row.get("correct"))
            row.update(pred_text=refusal, label="idk", correct=False, refusal=True)
        out.append(row)
    return out
