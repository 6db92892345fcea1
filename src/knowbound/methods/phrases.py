"""The fixed sentences honesty methods train a model to say.

The refusal and the confidence phrases are the paper's (Yang et al. 2023, official repository
``train/process_training_data.py``; their constants live in ``knowbound.grading``, which must
recognise them). The R-Tuning phrases are from Zhang et al. (2024), "R-Tuning: Instructing Large
Language Models to Say 'I Don't Know'" (the padding template).
"""

from __future__ import annotations

from knowbound.grading.confidence import CONFIDENCE_NUM_TEMPLATES, CONFIDENCE_VERB_PREFIXES
from knowbound.grading.refusal import REFUSAL
RTUNING_QUESTION = "Are you sure you accurately answered the question based on your internal knowledge?"
RTUNING_SURE = "I am sure."
RTUNING_UNSURE = "I am unsure."

# Every phrase a method can put in a completion (the knowledge world's tokenizer must cover them).
ALL_PHRASES: tuple[str, ...] = (
    REFUSAL,
    *CONFIDENCE_VERB_PREFIXES,
    *(CONFIDENCE_NUM_TEMPLATES[0].format(10 * k) for k in range(1, 6)),
    *(CONFIDENCE_NUM_TEMPLATES[1].format(10 * k) for k in range(6, 11)),
    RTUNING_QUESTION,
    RTUNING_SURE,
    RTUNING_UNSURE,
)
