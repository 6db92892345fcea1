"""The knowledge world: determinism and ground truth (fast: generation only, plus one tiny build)."""

import json
from collections import Counter
from dataclasses import replace

import pytest

from knowbound.world.build import build_world, world_dir, write_world_files
from knowbound.world.config import PeopleConfig, preset
from knowbound.world.evaluate import by_exposure, exposure_bucket
from knowbound.world.facts import ATTRIBUTES, N_VALUES
from knowbound.world.generator import QUESTION_SETS, generate, language_lines


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
    files = ["corpus.txt", "people.jsonl", "chat_pairs.jsonl"] + [f"questions/{s}.jsonl" for s in QUESTION_SETS]
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
    assert [exposure_bucket(e) for e in (0, 1, 2, 3, 7, 8, 40)] == ["0", "1-2", "1-2", "3-7", "3-7", "8+", "8+"]
    assert by_exposure([0, 0, 1, 9], [1, 0, 1, 1]) == {"0": 0.5, "1-2": 1.0, "3-7": None, "8+": 1.0}


@pytest.mark.model
def test_micro_world_builds_loads_like_a_hub_model_and_is_cached(tmp_path):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    cfg = preset("micro")
    logs = []
    paths = build_world(cfg, tmp_path, log=logs.append)
    info = json.loads(paths.info.read_text())
    assert set(info["evaluation"]["accuracy_by_exposure"]) == {"0", "1-2", "3-7", "8+"}
    assert info["evaluation"]["refusal_rate"] == 0.0  # the unaligned model never refuses: chat tuning has no refusals
    model = AutoModelForCausalLM.from_pretrained(paths.chat_model)
    tok = AutoTokenizer.from_pretrained(paths.chat_model)
    assert model.config.model_type == "llama" and tok.chat_template
    corpus_line = (paths.root / "corpus.txt").read_text().splitlines()[0]
    assert tok.decode(tok(corpus_line, add_special_tokens=False)["input_ids"]) == corpus_line
    logs.clear()
    again = build_world(cfg, tmp_path, log=logs.append)
    assert again.root == paths.root and logs == [f"world {paths.root.name} is cached at {paths.root}"]
