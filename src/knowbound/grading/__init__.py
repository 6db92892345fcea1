"""Grading answers: normalisation and matching, multiple-choice extraction, refusal ("I don't
know") detection and stated confidence. Pure functions; see each module for its rule's source."""

from knowbound.grading.choice import extract_choice, letter_pattern
from knowbound.grading.confidence import (
    CONFIDENCE_NUM_TEMPLATES,
    CONFIDENCE_VERB_PREFIXES,
    CONFIDENCE_VERB_VALUES,
    extract_confidence,
    confidence_prefix_end,
    normalize_apostrophes,
)
from knowbound.grading.grader import CORRECT, IDK, WRONG, grade, grade_batch, grade_parts
from knowbound.grading.match import MODES, check_mode, has_match, matched_alias
from knowbound.grading.normalize import normalize_aliases, normalize_answer
from knowbound.grading.refusal import (
    PAPER_IDK_EXPRESSIONS,
    PAPER_IDK_RESPONSE,
    REFUSAL,
    find_refusal,
    is_refusal,
    paper_is_idk,
)

__all__ = [
    "CONFIDENCE_NUM_TEMPLATES",
    "CONFIDENCE_VERB_PREFIXES",
    "CONFIDENCE_VERB_VALUES",
    "CORRECT",
    "IDK",
    "MODES",
    "PAPER_IDK_EXPRESSIONS",
    "PAPER_IDK_RESPONSE",
    "REFUSAL",
    "WRONG",
    "check_mode",
    "extract_choice",
    "extract_confidence",
    "find_refusal",
    "grade",
    "grade_batch",
    "grade_parts",
    "has_match",
    "is_refusal",
    "letter_pattern",
    "matched_alias",
    "normalize_aliases",
    "normalize_answer",
    "paper_is_idk",
    "confidence_prefix_end",
    "normalize_apostrophes",
]
