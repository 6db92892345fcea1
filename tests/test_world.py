"""The knowledge world: determinism and ground truth (fast: generation only, plus one tiny build)."""

import json
from collections import Counter
from dataclasses import replace

import pytest

from knowbound.metrics.views import by_exposure, exposure_bucket
from knowbound.world.build import build_world, world_dir, write_world_files
from knowbound.world.config import PeopleConfig, preset
from knowbound.world.facts import ATTRIBUTES, N_VALUES
from knowbound.world.generator import generate, language_lines, question_set_names


def small_cfg(seed=0):
    cfg = preset("micro", seed=seed)
    return replace(cfg, people=replace(cfg.people, n_train=80, n_test=40, n_chat=10, n_popular=8, n_fictional=12))


def mentions(corpus, name):
    return sum(doc.startswith(name) or f" {name} " in f" {doc} " for doc in corpus)


def test_same_seed_gives_byte_identical_files(tmp_path):
    cfg = small_cfg()
    a, b = world_dir(cfg, tmp_path / "a"), world_dir(cfg, tmp_path / "b")
    write_world_files(cfg, a)
    write_world_files(cfg, b)
    files = ["corpus.txt", "people.jsonl", "chat_pairs.jsonl"] + [f"questions/{s}.jsonl"
                                                                  for s in question_set_names(cfg.people)]
    for name in files:
        assert (a.root / name).read_bytes() == (b.root / name).read_bytes(), name
    other = world_dir(small_cfg(seed=1), tmp_path / "c")
    write_world_files(small_cfg(seed=1), other)
    assert (other.root / "corpus.txt").read_bytes() != (a.root / "corpus.txt").read_bytes()


def test_exposure_counts_match_the_corpus():
    world = generate(small_cfg())
    for person in world.people:
        # Every biography names the person in each of its sentences; count biographies.
        n_docs = sum(1 for doc in world.corpus if person.name in doc)
        assert n_docs == person.exposure, person
    shape = Counter(min(p.exposure, 3) for p in world.people if p.split in ("train", "test"))
    n = sum(shape.values())
    assert shape[0] == round(0.2 * n)  # the fifth that never appears, exactly


def test_fictional_people_never_occur_and_popular_facts_are_well_known():
    world = generate(small_cfg())
    names = {p.id: p.name for p in world.people}
    corpus = "\n".join(world.corpus)
    fictional = world.question_sets["fictional"]
    assert fictional and all(q.meta["exposure"] == 0 for q in fictional)
    for q in fictional:
        first, last = names[q.meta["person"]].split()
        assert first not in corpus and last not in corpus
    popular = world.question_sets["popular"]
    assert popular and min(q.meta["exposure"] for q in popular) >= PeopleConfig().popular_exposure[0]


def test_questions_carry_ground_truth_and_templates_split():
    world = generate(small_cfg())
    people = {p.id: p for p in world.people}
    attrs = {a.name: a for a in ATTRIBUTES}
    for set_name, questions in world.question_sets.items():
        assert len({q.id for q in questions}) == len(questions)
        for q in questions:
            person = people[q.meta["person"]]
            attr = attrs[q.meta["attribute"]]
            assert q.answers == (person.facts[attr.name],)
            assert q.meta["exposure"] == person.exposure
            assert q.meta["n_values"] == N_VALUES[attr.name]
            templates = attr.paraphrase_templates if set_name == "paraphrase" else attr.question_templates
            assert q.question in {t.format(name=person.name) for t in templates}
    # Chat tuning never uses paraphrase templates nor the people of the other sets.
    chat_people = [p for p in world.people if p.split == "chat"]
    tuning_questions = {t.format(name=p.name) for p in chat_people for a in ATTRIBUTES for t in a.question_templates}
    for question, answer in world.chat_pairs:
        assert question in tuning_questions
        assert any(answer.startswith(p.name) for p in chat_people)
    assert world.question_sets["train"] and len(world.question_sets["train"]) == 2 * 80  # 2 per person


def test_corpus_holds_the_toolkit_sentences():
    world = generate(small_cfg())
    lines = language_lines()
    assert "I apologize, but I'm not able to provide an answer to the question." in lines
    for line in lines:
        assert world.corpus.count(line) == small_cfg().language_repeats


def test_exposure_buckets():
    assert [exposure_bucket(e) for e in (0, 1, 2, 3, 7, 8, 40)] == ["0", "1", "2", "3-7", "3-7", "8+", "8+"]
    assert by_exposure([0, 0, 1, 9], [1, 0, 1, 1]) == {"0": 0.5, "1": 1.0, "2": None, "3-7": None, "8+": 1.0}


def v2_cfg(seed=0):
    cfg = preset("v2", seed=seed)
    return replace(cfg, people=replace(cfg.people, n_train=160, n_test=80, n_chat=20, n_popular=10, n_fictional=30,
                                       name_pools=(30, 32)))


def test_v2_wide_is_v2s_world_with_a_larger_model():
    wide = preset("v2-wide", seed=3)
    small = v2_cfg(seed=3)
    assert (wide.model.hidden_size, wide.model.num_hidden_layers, wide.pretrain.lr) == (256, 6, 2e-3)
    assert (wide.people, wide.pretrain.epochs, wide.chat) == (preset("v2", seed=3).people, 16, preset("v2").chat)
    assert wide.hash() != preset("v2", seed=3).hash()
    # The same people, corpus and questions for the same seed: only the model differs.
    a, b = generate(replace(wide, people=small.people)), generate(small)
    assert a.corpus == b.corpus
    assert [(p.name, p.facts, p.exposure) for p in a.people] == [(p.name, p.facts, p.exposure) for p in b.people]


def test_v2_names_are_new_combinations_of_seen_words():
    world = generate(v2_cfg())
    corpus_words = {w.strip(".") for doc in world.corpus for w in doc.split()}
    names = [p.name for p in world.people]
    assert len(set(names)) == len(names)  # every person has a name of their own
    seen = {p.name for p in world.people if p.exposure > 0}
    firsts = {p.first for p in world.people}
    lasts = {p.last for p in world.people}
    assert (len(firsts), len(lasts)) == (30, 32)  # the pools, each word shared by many people
    for p in world.people:
        assert p.first in corpus_words and p.last in corpus_words, p.name  # no name token is new
        if p.exposure == 0:
            assert p.name not in seen and mentions(world.corpus, p.name) == 0
    fictional = [p for p in world.people if p.split == "fictional"]
    assert fictional and all(mentions(world.corpus, p.name) == 0 for p in fictional)


def test_v2_fact_exposure_counts_the_biographies_that_state_the_fact():
    world = generate(v2_cfg())
    attrs = {a.name: a for a in ATTRIBUTES}
    hidden = 0
    for p in world.people:
        docs = [d for d in world.corpus if f" {p.name} " in f" {d} "]
        assert len(docs) == p.exposure, p
        for a in ATTRIBUTES:
            stating = sum(any(t.format(name=p.name, value=p.facts[a.name]) in d for t in attrs[a.name].bio_templates)
                          for d in docs)
            assert stating == p.fact_exposure(a.name), (p.name, a.name)
            hidden += p.exposure > 0 and p.fact_exposure(a.name) == 0
    assert hidden > 0  # some facts of people in the corpus are never stated
    popular = [p for p in world.people if p.split == "popular"]
    assert all(p.fact_exposure(a.name) == p.exposure for p in popular for a in ATTRIBUTES)


def test_v2_question_rows_carry_person_and_fact_exposure_and_unstated_set():
    cfg = v2_cfg()
    world = generate(cfg)
    people = {p.id: p for p in world.people}
    for q in world.question_sets["test"]:
        person = people[q.meta["person"]]
        assert q.meta["person_exposure"] == person.exposure
        assert q.meta["fact_exposure"] == q.meta["exposure"] == person.fact_exposure(q.meta["attribute"])
    unstated = world.question_sets["unstated"]
    test = {q.question: q for q in world.question_sets["test"]}
    expected = [q for q in world.question_sets["test"]
                if q.meta["person_exposure"] >= cfg.people.unstated_min_exposure and q.meta["fact_exposure"] == 0]
    assert unstated and len(unstated) == len(expected)
    for q in unstated:
        assert q.id.startswith("unstated-") and test[q.question].answers == q.answers
    # Chat tuning answers only facts the corpus states.
    stated = {(p.name, a.name) for p in world.people for a in ATTRIBUTES if p.fact_exposure(a.name) > 0}
    for question, answer in world.chat_pairs:
        person = next(p for p in world.people if answer.startswith(p.name + " "))
        attr = next(a for a in ATTRIBUTES if answer == a.answer_template.format(name=person.name, value=person.facts[a.name]))
        assert (person.name, attr.name) in stated


def test_v1_world_is_unchanged_by_the_v2_options():
    # The tiny preset keeps world v1: a name word per person, every biography states every fact.
    world = generate(small_cfg())
    assert all(p.fact_exposure(a.name) == p.exposure for p in world.people for a in ATTRIBUTES)
    assert "unstated" not in world.question_sets
    firsts = [p.first for p in world.people]
    assert len(set(firsts)) == len(firsts)


@pytest.mark.model
def test_micro_world_builds_loads_like_a_hub_model_and_is_cached(tmp_path):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    cfg = preset("micro")
    logs = []
    paths = build_world(cfg, tmp_path, log=logs.append)
    info = json.loads(paths.info.read_text())
    assert set(info["evaluation"]["accuracy_by_exposure"]) == {"0", "1", "2", "3-7", "8+"}
    assert info["evaluation"]["refusal_rate"] == 0.0  # the unaligned model never refuses: chat tuning has no refusals
    model = AutoModelForCausalLM.from_pretrained(paths.chat_model)
    tok = AutoTokenizer.from_pretrained(paths.chat_model)
    assert model.config.model_type == "llama" and tok.chat_template
    corpus_line = (paths.root / "corpus.txt").read_text().splitlines()[0]
    assert tok.decode(tok(corpus_line, add_special_tokens=False)["input_ids"]) == corpus_line
    logs.clear()
    again = build_world(cfg, tmp_path, log=logs.append)
    assert again.root == paths.root and logs == [f"world {paths.root.name} is cached at {paths.root}"]
