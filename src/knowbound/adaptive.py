"""Adaptive probing: draw a question's M samples in rounds and stop once its label is settled.

The probe spends M = 10 samples at T = 1 on every question, but the label that ABSOLUTE, DPO and
the P(IK) head train on -- known or unknown at ``tau`` -- is often settled after the greedy
answer and a sample or two. Here the greedy answer comes first, then rounds of ``round_size``
samples, and a question leaves the plan once every label it needs can no longer change or is
settled with a user-set ``confidence``:

* **Labels needed.** With k correct of the M samples, a question is *known by samples* when
  k/M >= tau, i.e. k >= ``known_threshold(M, tau)`` (1 for the paper's tau = 0.1, M = 10); under
  the official rule a correct greedy answer makes it known whatever k is. Its SliCK category
  needs "k >= 1" only when the greedy answer is not correct (HighlyKnown otherwise). So a
  question needs a verdict on "k >= t" for each t of ``needed_thresholds`` -- none at all for a
  correct greedy answer under the official rule.
* **Settled for certain.** After n samples with c correct, the full plan's k lies in
  [c, c + M - n]: "k >= t" is certain once c >= t (one correct sample decides known-by-samples at
  tau = 0.1) and certainly false once c + M - n < t (for t = 1: only after all M samples).
* **Settled with confidence.** "Unknown" needs evidence that no (or too few) of the remaining
  samples would be correct, and no bound on p alone gives it within M = 10: ten wrong samples
  exclude p >= 0.1 with only 65% confidence (0.9^10 = 0.35), whatever prior is put on one question.
  What the label *is*, though, is a statement about those M samples, so the rule asks the
  question that decides agreement with the full-M label: the posterior-predictive probability
  that k >= t, given c of n and the distribution of p among the questions of the same greedy
  outcome. That distribution is fitted to every question's drawn samples (empirical Bayes: a
  discrete distribution on a grid of p, by EM; the stopping rule depends only on what was seen,
  so the drawn samples' binomial likelihood is still the right one to fit). A verdict is taken
  when that probability is >= ``confidence`` or <= 1 - ``confidence`` and it agrees with the label
  the drawn samples give (so the label stage, unchanged, reproduces it).

What the run keeps: ``samples/train.jsonl`` holds the drawn rows only (index 0, then 1..n), and
they are the full plan's own first rows: sample i of a question is the i-th of its random stream
(``SamplingParams.first_index``), so the adaptive rows are exactly those a full probe writes for
the same keys. ``knowledge.jsonl`` records ``n_samples`` = n drawn and ``expected_accuracy`` =
c / n, the estimate of k / M from the drawn samples. That is all ABSOLUTE, DPO and P(IK) use.
The CONFIDENCE methods (which bin k = round(10 * c / n)), MULTISAMPLE (which trains on the samples
themselves) and the self-consistency baseline (fitted on the samples) see fewer, and for stopped
questions differently chosen, samples: keep ``probe.adaptive`` off for them.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np

from knowbound.backends.base import Backend
from knowbound.errors import KnowboundError
from knowbound.io import existing_rows
from knowbound.sampling import compact, sample_questions
from knowbound.types import Question

# The grid of p on which the distribution of per-question accuracy is fitted.
GRID = np.linspace(0.0, 1.0, 41)
# Pseudo-questions spread evenly over the grid: keeps every p possible, so a small or one-sided
# sample of questions cannot make the fitted distribution (and the stopping rule) overconfident.
PSEUDO_QUESTIONS = 2.0
EM_ITERATIONS = 300

# How a question's probe ended (AdaptiveStats.ended).
NO_SAMPLES = "greedy"  # a correct greedy answer settled everything (official rule)
CERTAIN = "certain"  # every label settled for certain before M samples
CONFIDENT = "confident"  # some label settled by the confidence rule
ALL_M = "all"  # drew all M samples


def known_threshold(m: int, tau: float) -> int:
    """The least k with k / m >= tau (the label stage's test), or m + 1 when none reaches it."""
    return next((k for k in range(m + 1) if k / m >= tau), m + 1)


def needed_thresholds(greedy_correct: bool | None, m: int, tau: float, known_rule: str) -> tuple[int, ...]:
    """The thresholds t for which the labels need to know whether k >= t (k: correct of m samples).

    The known/unknown label needs ``known_threshold`` unless a correct greedy answer decides it
    (official rule); SliCK needs t = 1 unless the greedy answer is correct (HighlyKnown).
    """
    out = set()
    if not (greedy_correct and known_rule == "official"):
        out.add(known_threshold(m, tau))
    if not greedy_correct:
        out.add(1)
    return tuple(sorted(out))


@dataclass(frozen=True)
class Prior:
    """A distribution of per-question accuracy p: ``weights`` on the points ``grid``."""

    grid: np.ndarray = field(default_factory=lambda: GRID)
    weights: np.ndarray = field(default_factory=lambda: np.full(len(GRID), 1 / len(GRID)))


def fit_prior(counts: Sequence[tuple[int, int]], grid: np.ndarray = GRID,
              pseudo: float = PSEUDO_QUESTIONS, iterations: int = EM_ITERATIONS) -> Prior:
    """The distribution of p that best explains ``counts`` ((correct, drawn) per question), by EM
    on ``grid`` with ``pseudo`` questions spread evenly over it (uniform when there is no data)."""
    weights = np.full(len(grid), 1 / len(grid))
    if not counts:
        return Prior(grid, weights)
    c = np.array([k for k, _ in counts], dtype=float)[:, None]
    n = np.array([n for _, n in counts], dtype=float)[:, None]
    with np.errstate(divide="ignore", invalid="ignore"):
        loglik = c * np.log(grid) + (n - c) * np.log1p(-grid)  # 0 * log 0 -> nan below
    loglik = np.where(np.isnan(loglik), 0.0, loglik)
    lik = np.exp(loglik - loglik.max(axis=1, keepdims=True))
    for _ in range(iterations):
        post = lik * weights
        post /= post.sum(axis=1, keepdims=True)
        weights = (post.sum(axis=0) + pseudo / len(grid)) / (len(counts) + pseudo)
    return Prior(grid, weights)


def p_at_least(prior: Prior, correct: int, drawn: int, m: int, t: int) -> float:
    """P(k >= t | ``correct`` of the first ``drawn`` samples): k counts all ``m`` samples, the
    remaining ones drawn from the posterior of p under ``prior`` (nan if the prior rules the data out)."""
    need, rest = t - correct, m - drawn
    if need <= 0:
        return 1.0
    if need > rest:
        return 0.0
    g = prior.grid
    with np.errstate(divide="ignore", invalid="ignore"):
        post = prior.weights * np.where(g > 0, g, 1.0) ** correct * np.where(g < 1, 1 - g, 1.0) ** (drawn - correct)
    post = np.where((g == 0) & (correct > 0) | (g == 1) & (drawn > correct), 0.0, post)
    if post.sum() == 0:
        return math.nan  # the prior rules out what was seen: no verdict
    post = post / post.sum()
    tail = sum(math.comb(rest, j) * g ** j * (1 - g) ** (rest - j) for j in range(need, rest + 1))
    return float(np.dot(post, tail))


def drawn_label(correct: int, drawn: int, t: int, m: int, tau: float) -> bool:
    """What the drawn samples alone say about "k >= t", read as the label stage reads them:
    c / n >= tau for the known threshold, at least t correct otherwise."""
    if t == known_threshold(m, tau):
        return drawn > 0 and correct / drawn >= tau
    return correct >= t


def settled(correct: int, drawn: int, needed: Sequence[int], m: int, tau: float, prior: Prior,
            confidence: float) -> str | None:
    """How the labels of a question with ``correct`` of ``drawn`` samples are settled: ``CERTAIN``,
    ``CONFIDENT`` (at least one by the confidence rule), ``ALL_M`` (all m drawn), or None (draw more)."""
    if drawn >= m:
        return ALL_M
    how = NO_SAMPLES if not needed else CERTAIN
    for t in needed:
        if correct >= t or correct + m - drawn < t:
            continue
        if drawn == 0:
            return None
        q = p_at_least(prior, correct, drawn, m, t)
        verdict = True if q >= confidence else False if q <= 1 - confidence else None
        if verdict is None or verdict != drawn_label(correct, drawn, t, m, tau):
            return None
        how = CONFIDENT
    return how


def rounds(m: int, round_size: int) -> list[tuple[int, int]]:
    """The sampling rounds after the greedy answer: (first sample index, samples) covering 1..m."""
    if round_size < 1:
        raise KnowboundError(f"probe.round_size must be at least 1, got {round_size}")
    return [(first, min(round_size, m - first + 1)) for first in range(1, m + 1, round_size)]


@dataclass(frozen=True)
class AdaptiveStats:
    """What an adaptive probe did: sampled answers drawn against the full plan's, how questions
    ended (``ended``: NO_SAMPLES / CERTAIN / CONFIDENT / ALL_M counts), and the sampler's counts."""

    questions: int
    drawn: int  # sampled answers (index >= 1) in the file for these questions
    full: int  # m per question
    ended: dict[str, int]
    generated: int
    skipped: int
    failed: int
    seconds: float

    @property
    def saving(self) -> float:
        """How many times fewer samples than the full plan."""
        return self.full / self.drawn if self.drawn else math.inf

    @property
    def rate(self) -> float:
        """Answers generated per second."""
        return self.generated / self.seconds if self.seconds > 0 else 0.0


class _Outcomes:
    """Graded rows of a sample file (cached across rounds): per question, the greedy answer's
    correctness (None when failed) and the correctness of its successful sampled answers."""

    def __init__(self, questions: Sequence[Question], mode: str):
        self.questions, self.mode = questions, mode
        self.by_id = {q.id: q for q in questions}
        self.cache: dict[tuple[str, int, str], bool] = {}

    def read(self, path: Path, before: int) -> dict[str, tuple[bool | None, list[bool]]]:
        """Outcomes from rows with sample index < ``before``, in sample order."""
        from knowbound.grading import grade

        rows: dict[str, dict[int, bool]] = {q.id: {} for q in self.questions}
        for row in existing_rows(path):
            qid, index = str(row["question_id"]), int(row["sample_index"])
            if qid not in rows or index >= before or row.get("finish_reason") == "error":
                continue
            key = (qid, index, row["text"])
            if key not in self.cache:
                self.cache[key] = grade(row["text"], self.by_id[qid], self.mode).label == "correct"
            rows[qid][index] = self.cache[key]
        return {qid: (got.get(0), [got[i] for i in sorted(got) if i > 0]) for qid, got in rows.items()}


def plan_status(outcomes: dict[str, tuple[bool | None, list[bool]]], m: int, tau: float, known_rule: str,
                confidence: float) -> dict[str, str | None]:
    """Per question, how it is settled (``settled``) given its outcomes, with one prior fitted per
    greedy outcome (correct / not) on every question's drawn samples."""
    groups: dict[bool, list[tuple[int, int]]] = {True: [], False: []}
    for greedy, samples in outcomes.values():
        groups[bool(greedy)].append((sum(samples), len(samples)))
    priors = {g: fit_prior(counts) for g, counts in groups.items()}
    return {qid: settled(sum(samples), len(samples), needed_thresholds(greedy, m, tau, known_rule), m, tau,
                         priors[bool(greedy)], confidence)
            for qid, (greedy, samples) in outcomes.items()}


def sample_adaptive(
    questions: Sequence[Question],
    backend: Backend,
    out_path: str | Path,
    *,
    mode: str = "default",
    m: int = 10,
    tau: float = 0.1,
    known_rule: str = "official",
    round_size: int = 2,
    confidence: float = 0.98,
    temperature: float = 1.0,
    top_p: float = 1.0,
    max_new_tokens: int = 64,
    seed: int = 0,
    prompt: str = "typical",
    stop: tuple[str, ...] = (),
    batch_size: int = 100,
    progress: bool = True,
) -> AdaptiveStats:
    """The greedy answer to every question, then rounds of ``round_size`` samples to the questions
    whose labels are not settled yet (see the module docstring); rows go to ``out_path`` exactly as
    ``sample_questions`` writes them, and a re-run resumes (each round's open questions are
    recomputed from the rows of the rounds before it, so they come out the same)."""
    if not 0.5 < confidence < 1:
        raise KnowboundError(f"probe.confidence must be in (0.5, 1), got {confidence}")
    if m < 1:
        raise KnowboundError(f"adaptive probing needs probe.m >= 1, got {m}")
    started = time.perf_counter()
    out_path = Path(out_path)
    common = dict(temperature=temperature, top_p=top_p, max_new_tokens=max_new_tokens, seed=seed, prompt=prompt,
                  stop=stop, batch_size=batch_size, progress=progress)
    calls = [sample_questions(questions, backend, out_path, n=0, greedy=True, **common)]
    graded = _Outcomes(questions, mode)
    for first, count in rounds(m, round_size):
        status = plan_status(graded.read(out_path, first), m, tau, known_rule, confidence)
        todo = [q for q in questions if status[q.id] is None]
        if not todo:
            break
        calls.append(sample_questions(todo, backend, out_path, n=count, greedy=False, first=first, **common))
    compact(out_path, questions)
    outcomes = graded.read(out_path, m + 1)
    ended: dict[str, int] = {NO_SAMPLES: 0, CERTAIN: 0, CONFIDENT: 0, ALL_M: 0}
    for how in plan_status(outcomes, m, tau, known_rule, confidence).values():
        ended[how or ALL_M] += 1  # None: sampled answers failed; the next run retries them
    drawn = sum(1 for row in existing_rows(out_path) if int(row["sample_index"]) > 0
                and str(row["question_id"]) in graded.by_id)
    return AdaptiveStats(questions=len(questions), drawn=drawn, full=m * len(questions), ended=ended,
                         generated=sum(c.generated for c in calls), skipped=sum(c.skipped for c in calls),
                         failed=sum(c.failed for c in calls), seconds=time.perf_counter() - started)
