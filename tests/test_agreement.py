"""The label-free agreement compares what answers say, not their wording."""

from knowbound.grading.agreement import agreement, consistency, content_words, same_answer

Q = "In which country is the city of Istanbul?"


def test_content_words_drop_the_question_and_function_words():
    assert content_words("The city of Istanbul is located in Turkey.", Q) == {"turkey"}
    assert content_words("Istanbul is in Turkey.", Q) == {"turkey"}
    assert content_words("It is in Greece, near Athens.", Q) == {"greece", "near", "athens"}


def test_answers_agree_on_what_they_answer():
    turkey = content_words("Istanbul is in Turkey.", Q)
    assert same_answer(turkey, content_words("The city of Istanbul is located in Turkey.", Q))
    assert same_answer(turkey, content_words("Turkey, in Europe and Asia.", Q))  # contains the answer
    assert not same_answer(turkey, content_words("Istanbul is in Greece.", Q))
    assert not same_answer(turkey, content_words("Istanbul.", Q))  # says nothing beyond the question
    assert same_answer(frozenset(), frozenset())


def test_agreement_and_consistency_of_real_wordings():
    samples = ["The city of Istanbul is located in Turkey.", "Istanbul is in Turkey.", "Turkey.",
               "Istanbul is in Greece.", "It is the capital of Bulgaria."]
    assert agreement(samples, Q) == 3 / 5
    assert consistency("Istanbul is in Turkey.", samples, Q) == 3 / 5
    assert consistency("Istanbul is in Greece.", samples, Q) == 1 / 5
    assert agreement([], Q) is None and consistency("x", [], Q) is None
    # Exact-match agreement would see five different answers here.
    assert len({s.lower() for s in samples}) == 5
