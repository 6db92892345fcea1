"""Answer normalisation: the TriviaQA rule the paper's evaluation uses.

``normalize_answer`` reproduces, character for character, the function of the official
Alignment-for-Honesty evaluation (``evaluation/triviaqa_nonambigqa_evaluation.py``, itself taken
from the TriviaQA evaluation script): replace underscores, lower-case, turn punctuation (ASCII plus
the curly quotes ‘ ’ ´ `) into spaces, drop the articles a/an/the, collapse whitespace.

It is several times faster than the original (the scorer normalises millions of answers): plain
ASCII text -- almost every answer -- goes through a byte translation table and a token filter;
anything else takes the literal route. Both give the official output; the tests check it.
"""

from __future__ import annotations

import re
import string
from typing import Iterable

# The official ``handle_punc`` exclusion set: ASCII punctuation plus four quote marks.
PUNCTUATION: str = string.punctuation + "‘’´`"
ARTICLES: frozenset[str] = frozenset({"a", "an", "the"})
# The official ``remove_articles`` pattern (``\b`` is Unicode-aware on str, as in the original).
ARTICLES_RE = re.compile(r"\b(a|an|the)\b")

_PUNCT_TO_SPACE = str.maketrans({ch: " " for ch in PUNCTUATION})
_ASCII_PUNCT_TO_SPACE = bytes.maketrans(string.punctuation.encode(), b" " * len(string.punctuation))
# ASCII characters that are neither word characters nor whitespace once punctuation is gone; they
# would put ``\b`` inside a token, so text holding one takes the literal route.
_ASCII_ODD = bytes(c for c in range(128) if not chr(c).isspace() and not re.match(r"\w", chr(c))
                   and chr(c) not in string.punctuation)


def normalize_answer(text: str) -> str:
    """TriviaQA normalisation: lower case, punctuation -> space, no articles, single spaces.

    Identical output to the official ``normalize_answer`` for every input string.
    """
    if text.isascii():
        raw = text.lower().encode("ascii").translate(_ASCII_PUNCT_TO_SPACE)
        if len(raw.translate(None, _ASCII_ODD)) == len(raw):
            # Now every whitespace-separated token is made of [a-z0-9] only, so ``\b(a|an|the)\b``
            # matches exactly the tokens equal to an article.
            return " ".join([t for t in raw.decode("ascii").split() if t not in ARTICLES])
    # The underscore is ASCII punctuation, so the official replace_underscore step is covered by
    # the table; lower-casing never produces a punctuation mark, so doing it first is safe.
    text = ARTICLES_RE.sub(" ", text.lower().translate(_PUNCT_TO_SPACE))
    return " ".join(text.split())


def normalize_aliases(answers: Iterable[str]) -> tuple[str, ...]:
    """Each gold alias normalised, order kept (duplicates kept: they change nothing)."""
    return tuple(normalize_answer(a) for a in answers)


def tokens(text: str) -> list[str]:
    """The normalised answer split into words (for token F1)."""
    return normalize_answer(text).split()
