"""Whether sampled answers say the same thing: the label-free agreement of a question's samples.

Whole sentences of a chat model rarely match word for word ("The city of Istanbul is located in
Turkey." against "Istanbul is in Turkey."), so two answers are compared on what they *answer*:
their content words, that is the normalised words (``normalize_answer``) that are neither in the
question nor function words. Two answers agree when one's content words are mostly contained in
the other's (mutual containment, at least ``CONTAINMENT``), which also lets "Paris" agree with
"Paris, France". An answer with no content words agrees only with another such answer.

The agreement of a set of answers is the share of them that agree with the best-supported one
(the answer most others agree with), as in the self-consistency literature's majority vote.
"""

from __future__ import annotations

from typing import Sequence

from knowbound.grading.normalize import normalize_answer

# Share of the smaller answer's content words the other must contain.
CONTAINMENT = 0.5
# Function words and the verbs answers are phrased with; never part of what an answer says.
FUNCTION_WORDS = frozenset("""
is are was were be been being am it its this that these those there here he she they his her their
of in on at to from by for with as and or but not no yes so than then also very
located situated found known called named officially official currently
which what who whom whose where when how why
i im my me you your we our think believe sure answer question correct
""".split())


def content_words(text: str, question: str = "") -> frozenset[str]:
    """The words of ``text`` that say something the question does not (module docstring)."""
    asked = set(normalize_answer(question).split()) if question else set()
    return frozenset(w for w in normalize_answer(text).split() if w not in asked and w not in FUNCTION_WORDS)


def overlap(a: frozenset[str], b: frozenset[str]) -> float:
    """How much two answers' content words agree: the share of the smaller set's words that the
    other contains (1.0 when both are empty, 0.0 when only one is)."""
    if not a or not b:
        return float(not a and not b)
    return len(a & b) / min(len(a), len(b))


def same_answer(a: frozenset[str], b: frozenset[str]) -> bool:
    """Whether two answers' content words agree (mutual containment)."""
    return overlap(a, b) >= CONTAINMENT


def agreement(texts: Sequence[str], question: str = "") -> float | None:
    """Share of ``texts`` agreeing with the best-supported one; None if there are none."""
    if not texts:
        return None
    words = [content_words(t, question) for t in texts]
    best = max(sum(same_answer(w, other) for other in words) for w in words)
    return best / len(texts)


def consistency(reference: str, texts: Sequence[str], question: str = "") -> float | None:
    """Share of ``texts`` that agree with ``reference`` (the greedy answer); None without texts."""
    if not texts:
        return None
    ref = content_words(reference, question)
    return sum(same_answer(ref, content_words(t, question)) for t in texts) / len(texts)


def support(reference: str, texts: Sequence[str], question: str = "") -> float | None:
    """Mean ``overlap`` of ``texts`` with ``reference``: ``consistency`` without its threshold, so a
    sample that repeats half of the greedy answer's content words ("Saint Helena pound" against
    "Saint Helena dollar") counts half, not all or nothing. None without texts.

    The label stage's label-free agreement. On SmolLM2-135M's 539 GeoNames training questions it
    predicts the greedy answer's correctness at AUROC 0.778 against ``consistency``'s 0.723, and
    on the held-out eval sets with 5 samples (test 0.718 against 0.705, ood 0.705 against 0.644,
    popular 0.800 against 0.769)."""
    if not texts:
        return None
    ref = content_words(reference, question)
    return sum(overlap(ref, content_words(t, question)) for t in texts) / len(texts)
