"""Does an answer contain a gold alias? Exact match, has-match and token F1 over aliases.

Two has-match rules, both on normalised strings (see ``normalize.py``):

* ``paper``: the official rule, ``any(g in pred for g in golds)`` -- plain substring containment.
  An alias "art" then matches "Stuttgart" and an alias that normalises to "" (e.g. "The") matches
  every answer; kept as is so paper-mode numbers reproduce the published code.
* ``default``: containment at word boundaries (``" g " in " pred "``; normalised strings are
  single-space separated words, so this is exactly word-sequence containment) and empty aliases
  are ignored.
"""

from __future__ import annotations

from collections import Counter
from typing import Iterable, Sequence

from knowbound.grading.normalize import normalize_aliases, normalize_answer

MODES: tuple[str, ...] = ("default", "paper")


def check_mode(mode: str) -> str:
    """Return ``mode`` if it is a known scoring mode, else raise ``ValueError``."""
    if mode not in MODES:
        raise ValueError(f"unknown scoring mode {mode!r} (known: {', '.join(MODES)})")
    return mode


def matched_alias(pred_norm: str, golds_norm: Sequence[str], mode: str = "default") -> str | None:
    """The first normalised gold alias found in the normalised prediction, or None.

    Both arguments must already be normalised; the scorer normalises each gold list once.
    """
    if mode == "paper":
        for g in golds_norm:
            if g in pred_norm:
                return g
        return None
    padded = f" {pred_norm} "
    for g in golds_norm:
        if g and f" {g} " in padded:
            return g
    return None


def has_match(pred: str, answers: Iterable[str], mode: str = "default") -> bool:
    """True when a gold alias occurs in the answer (after normalisation; see module docstring)."""
    return matched_alias(normalize_answer(pred), normalize_aliases(answers), check_mode(mode)) is not None


def exact_match(pred: str, answers: Iterable[str]) -> bool:
    """True when the normalised answer equals a normalised, non-empty gold alias."""
    pred_norm = normalize_answer(pred)
    return any(g and g == pred_norm for g in normalize_aliases(answers))


def token_f1(pred: str, answers: Iterable[str]) -> float:
    """SQuAD-style token F1 between the normalised answer and the best gold alias (0 if none).

    For one alias: with c common tokens (multiset), precision = c/|pred|, recall = c/|gold|,
    F1 = 2PR/(P+R).
    """
    pred_tokens = normalize_answer(pred).split()
    best = 0.0
    for gold in normalize_aliases(answers):
        gold_tokens = gold.split()
        common = sum((Counter(pred_tokens) & Counter(gold_tokens)).values())
        if common == 0:
            continue
        precision = common / len(pred_tokens)
        recall = common / len(gold_tokens)
        best = max(best, 2 * precision * recall / (precision + recall))
    return best
