"""The P(I know) head: a small classifier on what the model computes while it answers.

Kadavath et al. (2022) train a head to predict "P(IK)", whether the model knows the answer; the
semantic-entropy-probe work (Kossen et al. 2024) reads the same kind of signal from hidden
states. Here the head is a logistic regression trained on the probe's labels (is the unaligned
model's greedy answer correct?) over features of the model's own greedy answer:

* the answer's token log-probabilities: their sum (the maximum-sequence-probability score of
  uncertainty toolkits), mean, the three lowest, and the number of tokens;
* hidden states, middle and last layer, at the last prompt token and at the last answer token;
* the answer band: the hidden state averaged over the answer's tokens and over the middle band of
  layers (30% to 70% of the depth, ``backends.hf.band_layers``). One vector that reads the whole
  answer where the model's factual recall happens, not only its final full stop.

With ``build.pik_entity`` (a question meta key naming the entity asked about, such as the
person's name) the head may also read the model's surprise at that entity in the question, from a
pass over the prompt (``HFBackend.entity_logprobs``): the log-probability of the entity's tokens
after its first, and of its first token (``ENTITY_FEATURES``). It tells a name the model has read
from a new pair of familiar words, which the answer does not show: on the knowledge world an
unknown person is answered with a real fact of a seen person who shares the first name, often as
surely as a right answer (``benchmarks/world_confabulation.py``). With ``build.pik_swaps`` as
well, a third column reads how specific the answer is to that entity (``entity_contrast``): what
the answer says after the name, under the name against under the name with its words after the
first swapped for other training names'. The candidates with these columns compete with the rest
out of fold, like the samples, and the low-dimensional ones also with their pairwise products.

With ``build.pik_samples`` the head also learns from the probe's sampled answers: each is an
answer to a training question with its own label, so "is this answer right?" gets ten times the
rows. They are weighted (``SAMPLE_WEIGHTS``), stay in their question's fold, and never fit the
threshold, which is for greedy answers. On SmolLM2-135M they lift the out-of-fold AUROC from
0.828 to 0.838 and the `test` AUROC from 0.810 to 0.830. They cost the train stage a pass over
each sampled answer, on its question's prompt run once (``HFBackend.answer_states`` keeps the
prompt's KV cache for its answers). On world v2 they rank worse, and ``fit_head`` leaves them out.

Which features and how much regularisation are chosen by the out-of-fold AUROC on the training
questions (``CANDIDATES``): the log-probability features alone, with the answer band, or with the
four single-token hidden states, and the log-probability features with their pairwise products
(``PAIR_CANDIDATES``; with the entity features, "a sure answer about a name the model never read"
is such a product). The head's file records every candidate's out-of-fold AUROC, and
that of the hidden states alone as a diagnostic (``fit.oof_auroc_by_features``).

At inference the unaligned model answers as usual, one forward pass over (question, answer)
gives the features, and the answer is withheld (the refusal, ``baselines.withhold``) when P(IK)
is below a threshold. The threshold is fitted on out-of-fold scores of the training questions
(folds by person where rows name one), so it is not fitted on scores the head has memorised.
The head is cross-fitted: P(IK) at inference is the mean of the fold models that made those
out-of-fold scores, so the threshold and the scores it is applied to come from models of one
kind, each trained on four fifths of the rows. (A model refitted on every row scores more
extremely than its out-of-fold scores, and a threshold fitted on the latter lands elsewhere on
the former.) A withheld answer is the only change: the head can refuse, never damage a right
answer.

In the knowledge world the hidden states at the prompt carry almost no trace of whether the model
knows (a linear probe on them separates right from wrong answers at chance), while the answer's
own token probabilities do: the log-probability features do the work there. On SmolLM2-135M the
answer band carries more than the log-probabilities (out-of-fold AUROC 0.83 against 0.72; the
single-token states give 0.74-0.76), as Kadavath et al. find on larger models.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np

HEAD_FILE = "pik_head.json"
LOGPROB_FEATURES = ("logprob_sum", "logprob_mean", "logprob_min1", "logprob_min2", "logprob_min3", "n_tokens")
HIDDEN_PARTS = ("prompt_middle", "prompt_last", "answer_middle", "answer_last", "answer_band")
TOKEN_STATES = HIDDEN_PARTS[:4]
# Read with ``build.pik_entity``: the entity's tokens after its first, summed, and its first token
# (log-probabilities in the prompt), the last two columns of a feature row.
ENTITY_FEATURES = ("entity_rest_logprob", "entity_first_logprob")
# With ``build.pik_swaps`` as well, a third: how specific the answer is to the entity
# (``entity_contrast``).
CONTRAST_FEATURE = "entity_answer_contrast"
FOLDS = 5
# (name, hidden parts used beside the log-probability features, ridge penalty).
CANDIDATES: tuple[tuple[str, tuple[str, ...], float], ...] = (
    ("log-probabilities", (), 1e-2),
    ("log-probabilities + answer band", ("answer_band",), 1e-1),
    ("log-probabilities + hidden states", TOKEN_STATES, 1e-2),
    ("log-probabilities + hidden states", TOKEN_STATES, 1e-1),
)
# Candidates that also read the pairwise products of their (standardised) features, squares
# included: a linear head on the log-probabilities (and the entity features) cannot express "a
# confident answer about an unfamiliar name", an interaction. Only for the few low-dimensional
# features: (name, ridge penalty).
PAIR_CANDIDATES: tuple[tuple[str, float], ...] = (("log-probabilities", 1e-2), ("log-probabilities", 1e-1))
# Candidates that also learn from the probe's sampled answers (``build.pik_samples``): (name,
# hidden parts, ridge penalty, weight of a sample row against a greedy row's 1). Samples at T = 1
# are wrong more often than greedy answers and differ in kind, hence the smaller weights; which
# weight helps is chosen like the rest, by the out-of-fold AUROC on the greedy rows.
SAMPLE_WEIGHTS = (1.0, 0.3, 0.1)
SAMPLE_CANDIDATES: tuple[tuple[str, tuple[str, ...], float, float], ...] = tuple(
    (name, parts, l2, w) for w in SAMPLE_WEIGHTS
    for name, parts, l2 in (("log-probabilities", (), 1e-2),
                            ("log-probabilities + answer band", ("answer_band",), 1e-2),
                            ("log-probabilities + answer band", ("answer_band",), 1e-1)))


def columns(parts: Sequence[str], hidden_size: int, entity: bool = False,
            entity_width: int = len(ENTITY_FEATURES)) -> list[int]:
    """The feature-row columns of the log-probability features, the given hidden parts and, with
    ``entity``, the entity features (the row's last ``entity_width``: two, three with the
    contrast)."""
    out = list(range(len(LOGPROB_FEATURES)))
    for part in parts:
        start = len(LOGPROB_FEATURES) + HIDDEN_PARTS.index(part) * hidden_size
        out.extend(range(start, start + hidden_size))
    if entity:
        start = len(LOGPROB_FEATURES) + len(HIDDEN_PARTS) * hidden_size
        out.extend(range(start, start + entity_width))
    return out


def pairwise(x: np.ndarray, spec: dict) -> np.ndarray:
    """The products of every pair of ``x``'s columns (squares included), each column first
    standardised by ``spec``'s ``mean`` and ``std``."""
    z = (x - np.asarray(spec["mean"])) / np.asarray(spec["std"])
    i, j = np.triu_indices(z.shape[1])
    return z[:, i] * z[:, j]


def _pair_spec(x: np.ndarray) -> dict:
    std = x.std(0)
    std[std < 1e-8] = 1.0
    return {"mean": x.mean(0).tolist(), "std": std.tolist()}


def feature_matrix(states: Sequence[dict], entity: Sequence[Sequence[float]] | None = None) -> np.ndarray:
    """One feature row per ``HFBackend.answer_states`` entry (see the module docstring), followed,
    where ``entity`` is given, by that row's entity features (``entity_features``)."""
    rows = []
    for st in states:
        lps = sorted(st["token_logprobs"]) or [0.0]
        low = (lps + [lps[-1]] * 3)[:3]
        stats = [sum(lps), sum(lps) / len(lps), *low, float(len(st["token_logprobs"]))]
        rows.append(np.concatenate([np.asarray(stats, dtype=np.float64),
                                    np.asarray(st["hidden"], dtype=np.float64).reshape(-1)]))
    if entity is not None:
        if len(entity) != len(rows):
            raise ValueError(f"{len(entity)} entity feature pairs for {len(rows)} answers")
        rows = [np.concatenate([row, np.asarray(pair, dtype=np.float64)]) for row, pair in zip(rows, entity)]
    return np.stack(rows)


def feature_names(hidden_size: int, entity: bool = False, contrast: bool = False) -> list[str]:
    return (list(LOGPROB_FEATURES) + [f"{part}[{i}]" for part in HIDDEN_PARTS for i in range(hidden_size)]
            + (list(ENTITY_FEATURES) if entity else []) + ([CONTRAST_FEATURE] if entity and contrast else []))


def swap_tails(entities: Sequence[str]) -> list[str]:
    """The tails (an entity's words after its first) of the given entities, sorted: the pool
    ``entity_contrast`` draws from."""
    return sorted({e.partition(" ")[2] for e in entities} - {""})


def _swap(text: str, entity: str, swapped: str) -> str:
    """``text`` with every whole-word occurrence of ``entity`` replaced by ``swapped``."""
    import re

    return re.sub(rf"(?<!\w){re.escape(entity)}(?!\w)", lambda _: swapped, text)


def entity_contrast(backend, prompts: Sequence[str], answers: Sequence[str], entities: Sequence[str],
                    tails: Sequence[str], k: int, seed: int = 0) -> np.ndarray:
    """How specific each answer is to its entity: the log-probability of what the answer says
    after its last mention of the entity (all of it where it does not name the entity;
    ``HFBackend.answer_logprobs_after``) minus the log of its mean probability when the entity's
    words after its first are swapped, in the prompt and in the answer up to that point, for
    ``k`` tails drawn from ``tails`` (not its own; a draw seeded by ``seed`` and the entity, so an
    entity gets the same tails in every stage). A fact the model recalls for this entity is
    likelier under its own name than under a name that keeps the first word only; a fact recalled
    from the first word's other bearers (the knowledge world's confabulation) is not. 0 for an
    entity of one word or an empty pool. (An answer that names the entity by its tail alone keeps
    that mention under every swap.)"""
    import random

    own_prompts, own_heads, own_tails = [], [], []
    alt_prompts, alt_heads, alt_tails, owner = [], [], [], []
    for i, (prompt, answer, entity) in enumerate(zip(prompts, answers, entities)):
        at = answer.rfind(entity)
        cut = at + len(entity) if at >= 0 else 0
        head, rest = answer[:cut], answer[cut:]
        own_prompts.append(prompt), own_heads.append(head), own_tails.append(rest)
        first, _, own = entity.partition(" ")
        pool = [t for t in tails if own and t != own]
        for tail in random.Random(f"{seed}:{entity}").sample(pool, min(k, len(pool))):
            swapped = f"{first} {tail}"
            alt_prompts.append(_swap(prompt, entity, swapped))
            alt_heads.append(_swap(head, entity, swapped))
            alt_tails.append(rest)
            owner.append(i)
    own_lp = np.array(backend.answer_logprobs_after(own_prompts, own_heads, own_tails), dtype=np.float64)
    alt_lp = np.array(backend.answer_logprobs_after(alt_prompts, alt_heads, alt_tails), dtype=np.float64)
    out = np.zeros(len(own_lp))
    owner_arr = np.array(owner, dtype=np.int64)
    for i in range(len(own_lp)):
        alt = alt_lp[owner_arr == i]
        if len(alt):
            top = alt.max()
            out[i] = own_lp[i] - (top + math.log(np.mean(np.exp(alt - top))))
    return out


def entity_features(backend, prompts: Sequence[str], answers: Sequence[str], entities: Sequence[str],
                    tails: Sequence[str] | None = None, k: int = 0, seed: int = 0) -> np.ndarray:
    """[rows, 2 or 3]: ``HFBackend.entity_logprobs``'s pair for each prompt's entity and, with
    ``tails`` (a pool, possibly empty) and ``k``, ``entity_contrast``. The trailing columns of
    ``build.pik_entity``'s rows."""
    pair = np.array(backend.entity_logprobs(list(prompts), list(entities)), dtype=np.float64).reshape(-1, 2)
    if tails is None or not k:  # no contrast column (an empty pool gives a column of zeros)
        return pair
    return np.hstack([pair, entity_contrast(backend, prompts, answers, entities, tails, k, seed)[:, None]])


def entity_of(question, key: str, prompt: str) -> str:
    """The entity a question asks about, ``question.meta[key]`` (``build.pik_entity``); an error
    naming the question and the field where it is missing or absent from the rendered prompt."""
    from knowbound.errors import KnowboundError

    value = question.meta.get(key)
    if not isinstance(value, str) or not value.strip():
        raise KnowboundError(f"question {question.id}: build.pik_entity reads meta.{key}, which it lacks or is not a "
                             "name (the P(IK) head's entity features need the entity each question asks about)")
    if value not in prompt:
        raise KnowboundError(f"question {question.id}: meta.{key} {value!r} does not occur in its prompt {prompt!r}")
    return value


@dataclass(frozen=True)
class PikHead:
    """A fitted head: its members (standardisation, weights, bias each), and the refusal threshold
    on P(IK), the mean of the members' probabilities."""

    threshold: float
    fit: dict  # baselines.ThresholdFit.to_dict() on the out-of-fold scores, their AUROC, the features
    # The feature-row columns the head reads; None: the leading columns (heads saved before the
    # answer band, whose columns all lead the row).
    columns: list[int] | None = None
    # One {"mean", "std", "weights", "bias"} per fold model (a cross-fitted head).
    members: list[dict] = field(default_factory=list)
    # The question meta key of the entity features (``build.pik_entity``) where the head reads them:
    # its feature rows end with them. None: rows without them.
    entity_key: str | None = None
    # With the contrast (``build.pik_swaps``): the tails it draws from, how many per answer, the seed.
    swap_tails: list[str] | None = None
    swaps: int = 0
    swap_seed: int = 0
    # {"mean", "std"}: the members also read the pairwise products of the head's columns,
    # standardised by these (``pairwise``); None: the columns alone.
    pairs: dict | None = None

    def inputs(self, x: np.ndarray) -> np.ndarray:
        """What the members read of feature rows ``x``: the head's columns and, for a head with
        ``pairs``, their pairwise products."""
        width = len(self.members[0]["weights"]) if self.members else x.shape[1]
        cols = x[:, self.columns] if self.columns is not None else x[:, :width]
        return np.hstack([cols, pairwise(cols, self.pairs)]) if self.pairs else cols

    def p_know(self, x: np.ndarray) -> np.ndarray:
        """P(IK) for each feature row: the mean of the members' probabilities."""
        if not self.members:
            raise ValueError("a P(IK) head without members")
        inputs = self.inputs(x)
        return np.mean([_member_p(member, inputs) for member in self.members], axis=0)

    def save(self, out_dir: Path) -> None:
        from knowbound.io import write_json

        out_dir.mkdir(parents=True, exist_ok=True)
        write_json(out_dir / HEAD_FILE, asdict(self))

    @classmethod
    def load(cls, out_dir: Path) -> "PikHead":
        from knowbound.errors import KnowboundError

        path = Path(out_dir) / HEAD_FILE
        try:
            data = json.loads(path.read_text())
            if "weights" in data:  # a head saved before cross-fitting: one model trained on every row
                data["members"] = [{k: data.pop(k) for k in ("mean", "std", "weights", "bias")}]
            head = cls(**data)
            if not head.members or any(set(m) != {"mean", "std", "weights", "bias"} for m in head.members):
                raise ValueError("its members need mean, std, weights and bias")
            if head.pairs is not None and not (
                    isinstance(head.pairs, dict) and head.columns is not None
                    and len(head.pairs.get("mean", ())) == len(head.pairs.get("std", ())) == len(head.columns)):
                raise ValueError("its pairs need a mean and a std for each of its columns")
        except (ValueError, TypeError, KeyError) as e:  # json.JSONDecodeError is a ValueError
            raise KnowboundError(f"{path}: not a P(IK) head file ({e}); delete it and re-run the train stage") from e
        return head


def _sigmoid(z: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-z))


def logistic_regression(x: np.ndarray, y: np.ndarray, l2: float = 1e-2,
                        row_weights: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray, float]:
    """(mean, std, weights, bias) of an L2-regularised logistic regression on standardised ``x``;
    ``row_weights`` weight each row's loss (the loss is their weighted mean)."""
    import torch

    mean = x.mean(0)
    std = x.std(0)
    std[std < 1e-8] = 1.0
    z = torch.tensor((x - mean) / std, dtype=torch.float64)
    t = torch.tensor(y, dtype=torch.float64)
    rw = None if row_weights is None else torch.tensor(row_weights, dtype=torch.float64)
    w = torch.zeros(z.shape[1], dtype=torch.float64, requires_grad=True)
    b = torch.zeros(1, dtype=torch.float64, requires_grad=True)
    opt = torch.optim.LBFGS([w, b], max_iter=500, tolerance_grad=1e-9, line_search_fn="strong_wolfe")

    def closure():
        opt.zero_grad()
        if rw is None:
            fit = torch.nn.functional.binary_cross_entropy_with_logits(z @ w + b, t)
        else:
            bce = torch.nn.functional.binary_cross_entropy_with_logits(z @ w + b, t, reduction="none")
            fit = (bce * rw).sum() / rw.sum()
        loss = fit + l2 * (w ** 2).sum()
        loss.backward()
        return loss

    opt.step(closure)
    return mean, std, w.detach().numpy(), float(b.detach())


def _folds(groups: Sequence, k: int) -> list[np.ndarray]:
    """Indices of ``k`` folds; rows of one group stay in one fold (assigned in first-seen order)."""
    keys = list(dict.fromkeys(groups))
    fold_of = {g: i % k for i, g in enumerate(keys)}
    assign = np.array([fold_of[g] for g in groups])
    return [np.flatnonzero(assign == f) for f in range(k)]


@dataclass(frozen=True)
class ExtraRows:
    """Training rows beside the greedy answers' (the probe's samples): features, targets, the fold
    each belongs to (-1: none, in every fold model's training rows), and their weight."""

    x: np.ndarray
    y: np.ndarray
    fold: np.ndarray
    weight: float


def fold_models(x: np.ndarray, y: np.ndarray, folds: Sequence[np.ndarray], l2: float,
                extra: ExtraRows | None = None) -> list[dict]:
    """One logistic regression per fold, fitted on the other folds' rows (and ``extra``'s rows of
    the other folds), as head members (a fold whose rest holds one class only gets a constant
    member at that class's rate)."""
    members = []
    for f, idx in enumerate(folds):
        rest = np.setdiff1d(np.arange(len(y)), idx)
        if len(rest) == 0 or len(set(y[rest])) < 2:
            rate = float(np.clip(y[rest].mean() if len(rest) else 0.5, 1e-6, 1 - 1e-6))
            members.append({"mean": [0.0] * x.shape[1], "std": [1.0] * x.shape[1], "weights": [0.0] * x.shape[1],
                            "bias": math.log(rate / (1 - rate))})
            continue
        if extra is None:
            mean, std, w, b = logistic_regression(x[rest], y[rest], l2)
        else:
            more = extra.fold != f
            mean, std, w, b = logistic_regression(
                np.vstack([x[rest], extra.x[more]]), np.concatenate([y[rest], extra.y[more]]), l2,
                np.concatenate([np.ones(len(rest)), np.full(int(more.sum()), extra.weight)]))
        members.append({"mean": mean.tolist(), "std": std.tolist(), "weights": w.tolist(), "bias": b})
    return members


def _member_p(member: dict, x: np.ndarray) -> np.ndarray:
    return _sigmoid(((x - np.asarray(member["mean"])) / np.asarray(member["std"])) @ np.asarray(member["weights"])
                    + member["bias"])


def out_of_fold_scores(x: np.ndarray, y: np.ndarray, folds: Sequence[np.ndarray], l2: float,
                       members: list[dict] | None = None) -> np.ndarray:
    """P(IK) of each row from the fold model that did not see it (``fold_models``; pass
    ``members`` to score with models already fitted on these folds)."""
    members = members if members is not None else fold_models(x, y, folds, l2)
    oof = np.zeros(len(y))
    for idx, member in zip(folds, members):
        oof[idx] = _member_p(member, x[idx])
    return oof


def fit_head(x: np.ndarray, reference_labels: Sequence[str], groups: Sequence,
             max_accuracy_drop: float | None = None, *, sample_x: np.ndarray | None = None,
             sample_labels: Sequence[str] = (), sample_groups: Sequence = (),
             entity_key: str | None = None,
             swap: tuple[list[str], int, int] | None = None,
             budget_confidence: float | None = None) -> tuple[PikHead, np.ndarray]:
    """Cross-fit the head (one model per fold, trained on the other folds) and fit its threshold on
    their out-of-fold P(IK); returns the head and the out-of-fold scores. ``reference_labels``: the
    greedy answers' labels (the target is "correct"); ``groups``: fold groups (people). The
    candidate with the best out-of-fold AUROC (``CANDIDATES``) is kept.

    ``sample_x``, ``sample_labels``, ``sample_groups``: the feature rows of other answers to the
    same questions (the probe's samples) with their labels and groups. Each goes to its group's
    fold, so no fold model sees an answer to a question it is scored on, and the candidates of
    ``SAMPLE_CANDIDATES`` compete with the rest. The out-of-fold AUROC and the threshold are
    measured on the greedy rows only: the head is applied to greedy answers.

    ``entity_key``: the rows end with the entity features (``feature_matrix`` with ``entity``) of
    the entity named by that question meta key; every candidate then competes with and without
    them, and a head that reads them records the key, so that inference computes them. ``swap``:
    (tails, k, seed) where the rows' entity features end with ``entity_contrast`` over them.
    ``budget_confidence``: the budget's confidence over ``groups`` (``baselines.fit_threshold``).
    """
    from knowbound.baselines import fit_threshold
    from knowbound.metrics.calibration import auroc

    y = np.array([label == "correct" for label in reference_labels], dtype=np.float64)
    folds = _folds(groups, min(FOLDS, len(set(groups))))

    n_entity = (len(ENTITY_FEATURES) + (1 if swap else 0)) if entity_key else 0
    hidden_size, rest = divmod(x.shape[1] - len(LOGPROB_FEATURES) - n_entity, len(HIDDEN_PARTS))
    if rest or hidden_size < 0:
        raise ValueError(f"feature rows have {x.shape[1]} columns: expected {len(LOGPROB_FEATURES)} log-probability "
                         f"features, {len(HIDDEN_PARTS)} hidden states of one size"
                         + (f" and {n_entity} entity features" if n_entity else "") + " (feature_matrix)")
    candidates = [(name, parts, l2, 0.0, False) for name, parts, l2 in CANDIDATES]
    candidates += [(name, (), l2, 0.0, True) for name, l2 in PAIR_CANDIDATES]
    sample_fold = sample_y = None
    if sample_x is not None and len(sample_labels):
        if sample_x.shape[1] != x.shape[1] or not len(sample_labels) == len(sample_groups) == len(sample_x):
            raise ValueError("sample rows need the greedy rows' columns and one label and group each")
        fold_of = {g: f for f, idx in enumerate(folds) for g in {groups[i] for i in idx}}
        sample_fold = np.array([fold_of.get(g, -1) for g in sample_groups])
        sample_y = np.array([label == "correct" for label in sample_labels], dtype=np.float64)
        candidates += [(name, parts, l2, w, False) for name, parts, l2, w in SAMPLE_CANDIDATES]
    best, scores = None, {}
    for (name, parts, l2, weight, pairs), entity in [(c, e) for e in ((False, True) if n_entity else (False,))
                                                     for c in candidates]:
        if parts and not hidden_size:
            continue
        cols = columns(parts, hidden_size, entity, n_entity)
        name = f"{name} + entity surprise{' and contrast' if swap else ''}" if entity else name
        spec = _pair_spec(x[:, cols]) if pairs else None
        head = PikHead(threshold=0.5, fit={}, columns=cols, pairs=spec)
        inputs = head.inputs(x)
        extra = None
        if weight:
            assert sample_x is not None and sample_y is not None and sample_fold is not None
            extra = ExtraRows(head.inputs(sample_x), sample_y, sample_fold, weight)
        members = fold_models(inputs, y, folds, l2, extra)
        oof = out_of_fold_scores(inputs, y, folds, l2, members)
        score = auroc(oof, y)
        name = f"{name} + samples weighted {weight:g}" if weight else name
        name = f"{name} with pairwise products" if pairs else name
        scores[f"{name}, l2 {l2:g}"] = score
        if best is None or (score or 0.0) > (best[0] or 0.0) + 1e-9:
            best = (score, name, cols, l2, oof, members, spec)
    assert best is not None
    # A diagnostic, never chosen: what the single-token hidden states alone tell (chance in the
    # knowledge world).
    if hidden_size:
        scores["hidden states alone (diagnostic), l2 0.1"] = auroc(
            out_of_fold_scores(x[:, columns(TOKEN_STATES, hidden_size)[len(LOGPROB_FEATURES):]], y, folds, 1e-1), y)
    score, name, cols, l2, oof, members, spec = best
    fit = fit_threshold(oof.tolist(), list(reference_labels), max_accuracy_drop=max_accuracy_drop,
                        budget_confidence=budget_confidence, groups=list(groups))
    head = PikHead(threshold=fit.threshold if math.isfinite(fit.threshold) else 1.0 + 1e-9,
                   fit={**fit.to_dict(), "oof_auroc": score, "features": name, "l2": l2,
                        "oof_auroc_by_features": scores},
                   columns=cols, members=members, pairs=spec,
                   **({"entity_key": entity_key, "swap_tails": list(swap[0]) if swap else None,
                       "swaps": swap[1] if swap else 0, "swap_seed": swap[2] if swap else 0}
                      if n_entity and cols[-1] >= x.shape[1] - n_entity else {}))
    return head, oof
