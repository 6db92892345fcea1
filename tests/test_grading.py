import pytest

from knowbound.grading import (
    CONFIDENCE_NUM_TEMPLATES,
    CONFIDENCE_VERB_PREFIXES,
    extract_choice,
    extract_confidence,
    find_refusal,
    grade,
    grade_batch,
    has_match,
    is_refusal,
    normalize_aliases,
    normalize_answer,
    paper_is_idk,
)
from knowbound.testing.reference_rules import plain_normalize
from knowbound.types import Question


# --- normalisation and matching --------------------------------------------------------------------


@pytest.mark.parametrize(
    "text, expected",
    [
        ("The Beatles", "beatles"),
        ("  An apple_a day ", "apple day"),
        ("‘Rock’ ´n´ `roll`", "rock n roll"),
        ("U.S.A.", "u s"),  # "a" left alone after the dots is an article and goes
        ("Theatre", "theatre"),  # articles only as whole words
        ("", ""),
    ],
)
def test_normalize_answer_examples(text, expected):
    assert normalize_answer(text) == expected


def test_normalize_answer_equals_official_on_tricky_strings():
    import random

    rng = random.Random(0)
    alphabet = list("abcdefthe ANTHE_-'’‘´`.,!?\"()éİıß\t\n") + ["the ", " an ", "a_", "The"]
    for _ in range(5000):
        s = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 25)))
        assert normalize_answer(s) == plain_normalize(s), repr(s)


def test_has_match_default_is_word_bounded_paper_is_substring():
    assert has_match("It is in Stuttgart.", ["art"], "paper") is True  # "art" inside "stuttgart"
    assert has_match("It is in Stuttgart.", ["art"]) is False
    assert has_match("I think it's Paris, France.", ["Paris"]) is True
    # "The" normalises to "", which the official rule finds in every answer.
    assert has_match("Nothing here", ["The"], "paper") is True
    assert has_match("Nothing here", ["The"]) is False
    with pytest.raises(ValueError, match="unknown scoring mode"):
        has_match("x", ["x"], "strict")


# --- multiple choice ------------------------------------------------------------------------------

CHOICES = ["Paris", "London", "Berlin", "Madrid"]


@pytest.mark.parametrize(
    "text, expected",
    [
        ("The capital is Berlin.", 2),  # exactly one option's text
        ("Paris or London", None),  # two option texts, no letter
        ("B) is my answer", 1),  # letter with ')'
        ("I pick C.", 2),  # letter with '.'
        ("The answer is D", 3),  # final letter
        ("Either A) or B)", None),  # two letters
        ("I think E) fits", None),  # no option E among four
        ("paris.", 0),  # case-insensitive option text
    ],
)
def test_extract_choice_official_rule(text, expected):
    assert extract_choice(text, CHOICES) == expected


def test_extract_choice_more_than_four_options():
    six = ["1", "2", "3", "4", "5", "6"]
    assert extract_choice("F) six", [o * 3 for o in six]) == 5


# --- refusals -------------------------------------------------------------------------------------

REFUSALS = [
    "I don't know.",
    "I do not know.",
    "I'm not sure.",
    "I am not sure.",
    "I am unsure.",
    "I cannot answer that question.",
    "I can't answer that.",
    "I have no information about this person.",
    "Sorry, I don't have that information.",
    "I apologize, but I'm not able to provide an answer to the question.",
    "I'm sorry, but I cannot help with that.",
    "I am unable to determine who that is.",
    "There is no information available about this.",
    "I'm not aware of any such person.",
    "I'm not familiar with that book.",
    "Honestly, I have no idea.",
    "No idea.",
    "I’m not certain who wrote it.",
    "I couldn't find any information on that.",
    "I'm afraid I don't know.",
    "That is beyond my knowledge.",
    "I don't have enough information to answer that.",
    "I DON'T KNOW",
    "I don't know, but you could check Wikipedia.",
    "Unfortunately, I do not know the answer.",
]

ANSWERS = [
    "Paris.",
    "Sorry Seems to Be the Hardest Word is by Elton John.",
    "Unknown Pleasures",
    "I Don't Know How to Love Him",
    "The author is unknown.",
    "There is no known cure; treatment is supportive.",
    "As far as I know, it is Paris.",
    "Can't Buy Me Love was released in 1964.",
    "I'm not sure, but I think it's Paris.",
    "I think it's Paris, though I'm not completely sure.",
    "Paris, but I'm not certain.",
    "I don't know for sure, but my best guess is Paris.",
    "I'm not sure. But I think it is Paris.",
    *(prefix + "Paris." for prefix in CONFIDENCE_VERB_PREFIXES),
    CONFIDENCE_NUM_TEMPLATES[0].format(30) + " Paris.",
    CONFIDENCE_NUM_TEMPLATES[1].format(80) + " Paris.",
]


def test_default_detector_catches_refusals_the_paper_misses():
    assert len(REFUSALS) >= 15
    assert [t for t in REFUSALS if not is_refusal(t)] == []
    # The paper's keyword list catches only three of them: "I apologize, but I'm not able ...",
    # "I'm not aware of ..." and "I'm not familiar with ...".
    assert [t for t in REFUSALS if paper_is_idk("", t)] == [
        "I apologize, but I'm not able to provide an answer to the question.",
        "I'm not aware of any such person.",
        "I'm not familiar with that book.",
    ]


def test_default_detector_never_labels_a_plain_or_hedged_answer_idk():
    assert len(ANSWERS) >= 15
    assert [t for t in ANSWERS if is_refusal(t)] == []


def test_refusal_phrase_in_the_question_is_ignored():
    q = "Who sang 'I don't know how to love him' in the 1971 recording?"
    assert find_refusal("Yvonne Elliman sang I don't know how to love him.", q) is None
    assert find_refusal("I don't know.", "Who wrote it?") == "I don't know"


def test_paper_is_idk_is_the_official_rule():
    assert paper_is_idk("Q?", "I apologize, but I'm not able to provide an answer to the question.")
    assert paper_is_idk("Q?", "I APOLOGIZE for the delay: Paris.")  # bare 'i apologize' counts
    assert not paper_is_idk("Q?", "I don't know.")  # not in the official list
    # an expression that also occurs in the question is ignored ...
    assert not paper_is_idk("Why does it not make sense?", "It does not make sense to me.")
    # ... but the full idk response counts even when the question contains it
    idk = "I apologize, but I'm not able to provide an answer to the question"
    assert paper_is_idk(idk, idk)


# --- confidence -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text, expected",
    [
        (CONFIDENCE_NUM_TEMPLATES[1].format(70) + " Paris.", 0.7),
        (CONFIDENCE_NUM_TEMPLATES[0].format(30) + " Paris.", 0.3),
        ("I’m really not sure about this, but Paris.", 0.15),
        ("I'm not completely sure about this, but Paris.", 0.35),
        ("I don't have strong feelings either way, but Paris.", 0.55),
        ("I'm fairly confident that it is Paris.", 0.75),
        ("I'm absolutely certain that it is Paris.", 0.95),
        ("Confidence: 85%", 0.85),
        ("Paris.", None),
        ("I'm about 150% confident", None),  # not a probability
        ("Prices rose 30% in Paris.", None),
    ],
)
def test_extract_confidence(text, expected):
    got = extract_confidence(text)
    assert got == (None if expected is None else pytest.approx(expected))


# --- grade ----------------------------------------------------------------------------------------

Q = Question(id="q1", question="What is the capital of France?", answers=("Paris", "City of Light"))
MC = Question(id="q2", question="Capital of Germany?", kind="choice", choices=tuple(CHOICES), answer_index=2)


def test_grade_labels_open_question():
    assert grade("Paris.", Q).label == "correct"
    assert grade("Lyon.", Q).label == "wrong"
    g = grade("I don't know.", Q)
    assert (g.label, g.correct, g.refusal) == ("idk", False, True)


def test_refusal_containing_gold_is_idk_but_loosely_correct_in_paper_mode():
    text = "I apologize, but I'm not able to provide an answer to the question. Maybe Paris?"
    for mode in ("paper", "default"):
        g = grade(text, Q, mode)
        assert (g.label, g.correct, g.refusal) == ("idk", True, True)


def test_hedged_answer_is_correct_with_confidence():
    g = grade("I'm fairly confident that it is Paris.", Q)
    assert (g.label, g.correct, g.confidence, g.extracted) == ("correct", True, 0.75, "paris")


def test_grade_choice_question_by_extracted_index():
    assert grade("C) Berlin", MC).label == "correct"
    g = grade("A", MC)
    assert (g.label, g.extracted) == ("wrong", "A")
    assert grade("Berlin or Madrid", MC).label == "wrong"  # two options, no letter: no choice


def test_grade_modes_differ_on_unlisted_refusal():
    assert grade("I have no idea.", Q, "paper").label == "wrong"
    assert grade("I have no idea.", Q, "default").label == "idk"


def test_grade_batch_matches_grade():
    texts = ["Paris.", "Lyon.", "I'm not sure.", "C)"]
    qs = [Q, Q, Q, MC]
    labels, correct = grade_batch(
        texts, [q.question for q in qs], [normalize_aliases(q.answers) for q in qs],
        [q.choices for q in qs], [q.answer_index for q in qs],
    )
    assert labels == [0, 1, 2, 0]
    assert correct == [True, False, False, True]
    assert [grade(t, q).label for t, q in zip(texts, qs)] == ["correct", "wrong", "idk", "correct"]
