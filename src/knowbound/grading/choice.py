"""Multiple-choice answers: which option did the model pick?

The rule of the official MMLU evaluation (Alignment-for-Honesty, ``evaluation/mmlu_evaluation.py``),
generalised from four options to any number up to 26:

1. lower-case the answer and each option (options also stripped of '.'); if exactly one option's
   text occurs in the answer, that option;
2. otherwise look for option letters in the original answer with ``\\b[A-D]\\)|\\b[A-D]\\.|\\b[A-D]$``
   ("B)", "B.", or a final "B"); exactly one hit -> that letter;
3. otherwise no choice (None). The official code then asks ChatGPT; an LLM judge can do that here.
"""

from __future__ import annotations

import re
import string
from functools import lru_cache
from typing import Sequence

LETTERS = string.ascii_uppercase


@lru_cache(maxsize=32)
def letter_pattern(n_options: int) -> re.Pattern[str]:
    """The official letter regex with ``A-D`` widened to the first ``n_options`` letters."""
    if not 1 <= n_options <= len(LETTERS):
        raise ValueError(f"between 1 and {len(LETTERS)} options are supported, got {n_options}")
    span = f"A-{LETTERS[n_options - 1]}"
    return re.compile(rf"\b[{span}]\)|\b[{span}]\.|\b[{span}]$")


def extract_choice(text: str, choices: Sequence[str]) -> int | None:
    """The 0-based index of the option the answer picks, or None when it picks none or several."""
    low = text.lower()
    hits = [i for i, option in enumerate(choices) if option.lower().strip(".") in low]
    if len(hits) == 1:
        return hits[0]
    letters = letter_pattern(len(choices)).findall(text)
    if len(letters) == 1:
        return ord(letters[0][0]) - ord("A")
    return None


def choice_letter(index: int | None) -> str | None:
    """'A' for 0, 'B' for 1, ...; None stays None."""
    return None if index is None else LETTERS[index]
