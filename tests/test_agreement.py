"""The label-free agreement compares what answers say, not their wording."""

from knowbound.grading.agreement import agreement, consistency, content_words, overlap, same_answer, support

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


def test_support_counts_partial_agreement_where_consistency_counts_all_or_nothing():
    q = "What is the currency of Saint Helena?"
    pound = content_words("The currency of Saint Helena is the Saint Helena pound.", q)
    assert pound == {"pound"}  # the question's words say nothing
    assert overlap(content_words("Saint Helena pound sterling", q), content_words("pound", q)) == 1.0
    assert overlap(content_words("Pound sterling.", q), content_words("Falkland pound.", q)) == 0.5
    assert overlap(frozenset(), frozenset()) == 1.0 and overlap(pound, frozenset()) == 0.0
    samples = ["It is the pound.", "Pound sterling.", "The euro.", "Falkland pound sterling."]
    greedy = "Falkland pound."
    # Containment of the smaller answer: "pound" is all in "Falkland pound" (1.0), "pound sterling"
    # half (0.5), "euro" not at all. consistency counts every sample at >= 0.5 as agreeing (3 of 4).
    assert consistency(greedy, samples, q) == 3 / 4
    assert support(greedy, samples, q) == (1.0 + 0.5 + 0.0 + 1.0) / 4
    assert support(greedy, [], q) is None
