"""Probe labelling and the honesty methods' training rows, on hand-made samples."""

import pytest

from knowbound.errors import KnowboundError
from knowbound.loop.label import agreement, label_all, slick_category
from knowbound.methods import METHODS, get_method
from knowbound.methods.builders import BuildOptions
from knowbound.methods.phrases import REFUSAL, RTUNING_QUESTION, RTUNING_SURE, RTUNING_UNSURE
from knowbound.types import Question

Q_KNOWN = Question("k", "When was Ann Lee born?", ("1950",), meta={"exposure": 9, "answer_text": "Ann Lee was born in 1950."})
Q_WEAK = Question("w", "When was Bo Kim born?", ("1961",), meta={"exposure": 1, "answer_text": "Bo Kim was born in 1961."})
Q_UNKNOWN = Question("u", "When was Cy Orr born?", ("1977",), meta={"exposure": 0, "answer_text": "Cy Orr was born in 1977."})


def rows_for(qid, greedy, samples):
    out = [{"question_id": qid, "sample_index": 0, "text": greedy, "greedy": True, "temperature": 0.0}]
    out += [{"question_id": qid, "sample_index": i + 1, "text": t, "temperature": 1.0} for i, t in enumerate(samples)]
    return out


@pytest.fixture
def items():
    rows = (rows_for("k", "Ann Lee was born in 1950.", ["Ann Lee was born in 1950."] * 9 + ["Ann Lee was born in 1951."])
            + rows_for("w", "Bo Kim was born in 1930.", ["Bo Kim was born in 1961."] * 3 + ["Bo Kim was born in 1930."] * 7)
            + rows_for("u", "Cy Orr was born in 1940.", [f"Cy Orr was born in {1900 + i}." for i in range(10)]))
    return label_all([Q_KNOWN, Q_WEAK, Q_UNKNOWN], rows)


def test_labels(items):
    k, w, u = (i.knowledge for i in items)
    assert (k.greedy_correct, k.n_correct, k.n_samples, k.expected_accuracy, k.category) == (True, 9, 10, 0.9, "HighlyKnown")
    assert (w.greedy_correct, w.n_correct, w.expected_accuracy, w.category) == (False, 3, 0.3, "WeaklyKnown")
    assert (u.greedy_correct, u.n_correct, u.category) == (False, 0, "Unknown")
    # agreement with the greedy answer: k: 9 of 10 samples; w: 7 of 10; u: none
    assert (k.agreement, w.agreement, u.agreement) == (0.9, 0.7, 0.0)
    assert k.meta == {"exposure": 9, "answer_text": "Ann Lee was born in 1950."}


def test_slick_over_prompt_variants():
    assert slick_category([True, True], True) == "HighlyKnown"
    assert slick_category([True, False], True) == "MaybeKnown"
    assert slick_category([False, False], True) == "WeaklyKnown"
    assert slick_category([False], False) == "Unknown"
    assert agreement([]) is None
    assert agreement(["The Paris.", "paris", "Rome"]) == 2 / 3  # normalised: "paris" twice


def test_missing_samples_name_the_question():
    with pytest.raises(KnowboundError, match="'k'"):
        label_all([Q_KNOWN], rows_for("other", "x", []))


def completion(row):
    return row["completion"][0]["content"]


def test_absolute_and_sft_baseline(items):
    opts = BuildOptions()
    rows = get_method("absolute").build(items, opts)
    # known: greedy (correct); weak: greedy wrong -> first correct sample; unknown -> refusal
    assert [completion(r) for r in rows] == ["Ann Lee was born in 1950.", "Bo Kim was born in 1961.", REFUSAL]
    assert [r["known"] for r in rows] == [True, True, False]
    assert rows[0]["prompt"] == [{"role": "user", "content": "Q: When was Ann Lee born?\nA: "}]
    strict = get_method("absolute").build(items, BuildOptions(tau=0.5))  # 0.3 < 0.5: weak becomes unknown
    assert [completion(r) for r in strict][1] == REFUSAL
    base = get_method("sft-baseline").build(items, opts)
    # no refusals: the unknown question gets the gold answer sentence
    assert [completion(r) for r in base] == ["Ann Lee was born in 1950.", "Bo Kim was born in 1961.", "Cy Orr was born in 1977."]


def test_confidence_methods(items):
    num = [completion(r) for r in get_method("confidence-num").build(items, BuildOptions())]
    assert num[0] == ("I'm about 90% confident to answer the question correctly, and based on my understanding "
                      "and knowledge, here's what I think is correct. Ann Lee was born in 1950.")
    assert num[1].startswith("I'm only about 30% confident") and num[1].endswith("Bo Kim was born in 1961.")
    assert num[2] == REFUSAL
    verb = [completion(r) for r in get_method("confidence-verb").build(items, BuildOptions())]
    # k = 9 -> "absolutely certain"; k = 3 -> "not completely sure"; names keep their capital
    assert verb == ["I'm absolutely certain that Ann Lee was born in 1950.",
                    "I'm not completely sure about this, but Bo Kim was born in 1961.", REFUSAL]


def test_multisample_rtuning_dpo(items):
    multi = get_method("multisample").build(items, BuildOptions())
    assert len(multi) == 30
    texts = [completion(r) for r in multi]
    assert texts[:10].count(REFUSAL) == 1 and texts[10:20].count(REFUSAL) == 7 and texts[20:].count(REFUSAL) == 10
    capped = get_method("multisample").build(items, BuildOptions(multisample_max=4))
    assert len(capped) == 12
    rt = [completion(r) for r in get_method("rtuning").build(items, BuildOptions())]
    assert rt[0] == f"Ann Lee was born in 1950. {RTUNING_QUESTION} {RTUNING_SURE}"
    assert rt[1] == f"Bo Kim was born in 1930. {RTUNING_QUESTION} {RTUNING_UNSURE}"  # own wrong answer
    assert rt[2] == f"Cy Orr was born in 1940. {RTUNING_QUESTION} {RTUNING_UNSURE}"  # own wrong answer
    dpo = get_method("dpo").build(items, BuildOptions())
    assert [(r["chosen"][0]["content"], r["rejected"][0]["content"]) for r in dpo] == [
        ("Ann Lee was born in 1950.", REFUSAL),
        ("Bo Kim was born in 1961.", REFUSAL),
        (REFUSAL, "Cy Orr was born in 1940."),  # the greedy answer is the wrong one rejected
    ]


def test_absolute_known_rule_official_counts_a_correct_greedy_answer():
    # Greedy right, no sample right: the official code trains the greedy answer; `samples` refuses.
    q = Question("g", "When was Di Fox born?", ("1966",), meta={"answer_text": "Di Fox was born in 1966."})
    items = label_all([q], rows_for("g", "Di Fox was born in 1966.", ["Di Fox was born in 1901."] * 10))
    official = get_method("absolute").build(items, BuildOptions())
    assert [completion(r) for r in official] == ["Di Fox was born in 1966."] and official[0]["known"]
    by_samples = get_method("absolute").build(items, BuildOptions(known_rule="samples"))
    assert [completion(r) for r in by_samples] == [REFUSAL] and not by_samples[0]["known"]
    # The CONFIDENCE methods keep the official code's rule: no correct sample -> the refusal.
    assert [completion(r) for r in get_method("confidence-num").build(items, BuildOptions())] == [REFUSAL]


def test_confidence_targets_are_greedy_accuracy_by_k():
    from knowbound.methods.builders import confidence_targets

    rows, questions = [], []
    # k = 3 correct samples: greedy right 3 times of 4; k = 1: greedy right 0 of 2.
    for n, (k, greedy_right) in enumerate([(3, True)] * 3 + [(3, False)] + [(1, False)] * 2):
        q = Question(f"q{n}", "?", ("Oslo",))
        questions.append(q)
        rows += rows_for(q.id, "Oslo" if greedy_right else "Rome", ["Oslo"] * k + ["Rome"] * (10 - k))
    targets = confidence_targets(label_all(questions, rows), prior=0.0)
    assert len(targets) == 11
    assert targets[3] == 0.75 and targets[1] == 0.0
    assert list(targets) == sorted(targets)  # non-decreasing in k
    # With these targets CONFIDENCE-NUM states 80% (0.75 rounded to tenths) where the paper states 30%.
    items = label_all(questions[:1], rows[:11])
    text = completion(get_method("confidence-num").build(items, BuildOptions(confidence_by_k=targets))[0])
    assert text.startswith("I'm about 80% confident")


def test_pik_rows_carry_the_greedy_answer_and_its_label(items):
    rows = get_method("pik").build(items, BuildOptions())
    assert [(r["answer"], r["label"], r["known"]) for r in rows] == [
        ("Ann Lee was born in 1950.", "correct", True), ("Bo Kim was born in 1930.", "wrong", False),
        ("Cy Orr was born in 1940.", "wrong", False)]
    assert rows[0]["prompt"] == "Q: When was Ann Lee born?\nA: "


def test_pik_samples_follow_their_greedy_row_marked_as_samples(items):
    rows = get_method("pik").build(items, BuildOptions(pik_samples=True))
    assert len(rows) == 3 * 11 and not any("sample" in r for r in rows[::11])
    bo = rows[11:22]
    assert [r["answer"] for r in bo] == ["Bo Kim was born in 1930."] + ["Bo Kim was born in 1961."] * 3 + [
        "Bo Kim was born in 1930."] * 7
    assert [(r["label"], r["known"], r.get("sample")) for r in bo[1:5]] == [("correct", True, True)] * 3 + [
        ("wrong", False, True)]
    assert {r["question_id"] for r in bo} == {"w"} and {r["group"] for r in bo} == {"w"}


def test_pik_rows_carry_the_entity_named_by_build_pik_entity(items):
    """Every row, samples too, carries the question's meta value; a question that lacks it, or
    whose prompt does not name it, is an error naming the question and the field."""
    from dataclasses import replace

    name = {"k": "Ann Lee", "w": "Bo Kim", "u": "Cy Orr"}
    named = [replace(i, question=replace(i.question, meta={**i.question.meta, "name": name[i.question.id]}))
             for i in items]
    rows = get_method("pik").build(named, BuildOptions(pik_entity="name", pik_samples=True))
    assert [r["entity"] for r in rows[::11]] == ["Ann Lee", "Bo Kim", "Cy Orr"] and len({r["entity"] for r in rows[:11]}) == 1
    assert "entity" not in get_method("pik").build(named, BuildOptions())[0]
    with pytest.raises(KnowboundError, match=r"question k: build.pik_entity reads meta.person"):
        get_method("pik").build(named, BuildOptions(pik_entity="person"))
    wrong = [replace(named[0], question=replace(named[0].question, meta={"name": "Ada Lovelace"}))]
    with pytest.raises(KnowboundError, match=r"question k: meta.name 'Ada Lovelace' does not occur in its prompt"):
        get_method("pik").build(wrong, BuildOptions(pik_entity="name"))


def test_registry():
    assert list(METHODS) == ["sft-baseline", "prompt", "absolute", "confidence-num", "confidence-verb",
                             "multisample", "rtuning", "dpo", "pik", "grpo", "grpo-confidence",
                             "grpo-rtuning"]
    assert get_method("prompt").build([], BuildOptions()) == []
    with pytest.raises(KnowboundError, match="unknown method 'nope'"):
        get_method("nope")


def _probed(qid: str, kind: str, greedy: bool, n_correct: int):
    from knowbound.types import KnowledgeEstimate, ProbeItem

    return ProbeItem(Question(qid, f"q {qid}", ("a",), meta={"kind": kind}),
                     KnowledgeEstimate(qid, greedy, n_correct, 10, n_correct / 10, "x",
                                       greedy_label="correct" if greedy else "wrong"))


def test_balance_within_keeps_as_many_known_as_unknown_in_each_kind():
    from knowbound.loop.build import balance_within
    from knowbound.methods.builders import is_known

    # capital: 6 known (4 by a correct greedy answer, 2 by one correct sample of 10), 2 unknown;
    # city: 1 known, 5 unknown; continent: known only (nothing to balance it with).
    items = ([_probed(f"cap{i}", "capital", i < 4, 0 if i < 4 else 1) for i in range(6)]
             + [_probed(f"cap-u{i}", "capital", False, 0) for i in range(2)]
             + [_probed("city0", "city", True, 3)] + [_probed(f"city-u{i}", "city", False, 0) for i in range(5)]
             + [_probed(f"cont{i}", "continent", True, 9) for i in range(3)])
    kept = balance_within(items, "kind", tau=0.1, known_rule="official", seed=0)
    opts = BuildOptions(prompt="bare", tau=0.1, seed=0)
    counts = {}
    for item in kept:
        counts.setdefault(item.question.meta["kind"], [0, 0])[is_known(item, opts)] += 1
    assert counts == {"capital": [2, 2], "city": [1, 1]}
    assert [i.question.id for i in kept] == sorted(i.question.id for i in kept)
    assert {"cap-u0", "cap-u1", "city0"} <= {i.question.id for i in kept}
    # Seeded: the same seed keeps the same questions, another seed other known capitals.
    assert kept == balance_within(items, "kind", tau=0.1, known_rule="official", seed=0)
    assert any(balance_within(items, "kind", 0.1, "official", seed=s) != kept for s in range(1, 6))
    # Under the samples rule a correct greedy answer alone is not known: capitals then have 2
    # known (one correct sample each) against 6 unknown.
    by_samples = balance_within(items, "kind", tau=0.1, known_rule="samples", seed=0)
    assert sum(i.question.meta["kind"] == "capital" for i in by_samples) == 4
