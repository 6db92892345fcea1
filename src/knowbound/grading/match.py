"""Does an answer contain a gold alias? The has-match rules over normalised aliases.

Two has-match rules, both on normalised strings (see ``normalize.py``):

* ``paper``: the official rule, ``any(g in pred for g in golds)`` -- plain substring containment.
  An alias "art" then matches "Stuttgart" and an alias that normalises to "" (e.g. "The") matches
  every answer; kept as is so paper-mode numbers reproduce the published code.
* ``default``: containment at word boundaries (``" g " in " pred "``; normalised strings are
  single-space separated words, so this is exactly word-sequence containment) and empty aliases
  are ignored.
"""

from __future__ import annotations

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
