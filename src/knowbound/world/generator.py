"""Generate a knowledge world from a seed: people, the corpus, and question sets with ground truth.

Pure and seeded: the same config gives byte-identical files. Each question row carries the
ground truth of what the model can know: ``fact_exposure`` (how many biographies state the asked
fact; also ``exposure``) and ``person_exposure`` (how many biographies of the person the corpus
holds). In world v1 every biography states all five facts, so the two are equal; in world v2
(``PeopleConfig.fact_mention`` < 1, ``hidden_fact`` > 0) a biography states a random subset, so a
well-known person can have a fact the model never read.
"""

from __future__ import annotations

import dataclasses
import random
from dataclasses import dataclass, field
from typing import Iterator

from knowbound.types import Question
from knowbound.world.config import PeopleConfig, WorldConfig
from knowbound.world.facts import ATTRIBUTES, N_VALUES, attribute_values, template_words, unique_words

SPLITS = ("train", "test", "chat", "popular", "fictional")
# The question sets a world ships, in the order they are written (`unstated` only where facts
# can be hidden: see ``question_set_names``).
QUESTION_SETS = ("train", "test", "paraphrase", "fictional", "popular", "unstated")


@dataclass(frozen=True)
class Person:
    id: str
    first: str
    last: str
    split: str
    exposure: int  # number of biographies in the corpus (the person's exposure)
    facts: dict[str, str] = field(default_factory=dict)
    # The attributes each of the person's biographies states (one tuple per biography).
    bio_facts: tuple[tuple[str, ...], ...] = ()

    @property
    def name(self) -> str:
        return f"{self.first} {self.last}"

    def fact_exposure(self, attribute: str) -> int:
        """How many biographies state ``attribute``."""
        return sum(attribute in bio for bio in self.bio_facts)

    def to_dict(self) -> dict:
        return {"id": self.id, "name": self.name, "split": self.split, "exposure": self.exposure,
                "fact_exposure": {a.name: self.fact_exposure(a.name) for a in ATTRIBUTES},
                "facts": dict(self.facts)}


@dataclass
class World:
    """What the generator returns; `build` writes it to disk."""

    people: list[Person]
    values: dict[str, tuple[str, ...]]
    corpus: list[str]  # one biography per entry, shuffled
    question_sets: dict[str, list[Question]]
    chat_pairs: list[tuple[str, str]]  # (question, answer) for chat tuning


def _stratified_exposures(rng: random.Random, n: int, shape) -> list[int]:
    """Exposure counts whose shares follow ``shape`` exactly (up to rounding), shuffled."""
    counts = [round(w * n) for _, _, w in shape]
    counts[-1] += n - sum(counts)
    out = []
    for (low, high, _), k in zip(shape, counts):
        out += [rng.randint(low, high) for _ in range(k)]
    rng.shuffle(out)
    return out


def _splits(cfg: PeopleConfig) -> list[str]:
    return (["train"] * cfg.n_train + ["test"] * cfg.n_test + ["chat"] * cfg.n_chat
            + ["popular"] * cfg.n_popular + ["fictional"] * cfg.n_fictional)


def shared_names(rng: random.Random, seen: list[bool], pools: tuple[int, int],
                 taken: set[str]) -> list[tuple[str, str]]:
    """Distinct (first, last) names from shared pools, one per person.

    The people in the corpus (``seen``) use every pool word, each about equally often, so every
    name word is a trained token; the others get combinations no one in the corpus has.
    """
    firsts = unique_words(rng, pools[0], taken, (2,))
    lasts = unique_words(rng, pools[1], taken, (2, 3))
    n_seen = sum(seen)
    if n_seen < max(pools):
        raise ValueError(f"{n_seen} people in the corpus cannot use all {max(pools)} words of a name pool")
    if len(seen) > pools[0] * pools[1] // 2:
        raise ValueError(f"name pools {pools} are too small for {len(seen)} distinct names")
    # Seen people: each pool repeated to their number and shuffled, then paired; a repeated pair
    # swaps its surname with another seen person's until every pair is distinct.
    fs = (firsts * (n_seen // len(firsts) + 1))[:n_seen]
    ls = (lasts * (n_seen // len(lasts) + 1))[:n_seen]
    rng.shuffle(fs)
    rng.shuffle(ls)
    pairs = list(zip(fs, ls))
    counts: dict[tuple[str, str], int] = {}
    for pair in pairs:
        counts[pair] = counts.get(pair, 0) + 1
    for i in range(n_seen):
        while counts[pairs[i]] > 1:
            j = rng.randrange(n_seen)
            a, b = (pairs[i][0], pairs[j][1]), (pairs[j][0], pairs[i][1])
            if a in counts or b in counts:
                continue
            for old in (pairs[i], pairs[j]):
                counts[old] -= 1
                if not counts[old]:
                    del counts[old]
            pairs[i], pairs[j] = a, b
            counts[a] = counts[b] = 1
    used = set(pairs)
    seen_names = iter(pairs)
    out = []
    for is_seen in seen:
        if is_seen:
            out.append(next(seen_names))
            continue
        while True:
            pair = (rng.choice(firsts), rng.choice(lasts))
            if pair not in used:
                used.add(pair)
                out.append(pair)
                break
    return out


def fact_plan(rng: random.Random, exposure: int, mention: float, hidden: float) -> tuple[tuple[str, ...], ...]:
    """Which facts each of ``exposure`` biographies states.

    Each fact is hidden (never stated) with probability ``hidden``; every other fact is stated by
    each biography with probability ``mention`` and by at least one; every biography states at
    least one fact.
    """
    names = [a.name for a in ATTRIBUTES]
    if exposure == 0:
        return ()
    if mention >= 1.0 and hidden <= 0.0:
        return tuple(tuple(names) for _ in range(exposure))
    stated = [a for a in names if rng.random() >= hidden]
    if not stated:
        stated = [rng.choice(names)]
    bios = [{a for a in stated if rng.random() < mention} for _ in range(exposure)]
    for a in stated:
        if not any(a in bio for bio in bios):
            bios[rng.randrange(exposure)].add(a)
    for bio in bios:
        if not bio:
            bio.add(rng.choice(stated))
    return tuple(tuple(a for a in names if a in bio) for bio in bios)


def make_people(rng: random.Random, cfg: PeopleConfig, values: dict, taken: set[str]) -> list[Person]:
    """All people with distinct two-word names, split, exposure and facts assigned."""
    splits = _splits(cfg)
    n = len(splits)
    if cfg.name_pools is None:
        # World v1: every name word belongs to one person, so a never-seen person's name is made
        # of tokens the model never read.
        names = list(zip(unique_words(rng, n, taken, (2,)), unique_words(rng, n, taken, (2, 3))))
        general = _stratified_exposures(rng, cfg.n_train + cfg.n_test, cfg.exposure)
    else:
        general = _stratified_exposures(rng, cfg.n_train + cfg.n_test, cfg.exposure)
        seen = iter([e > 0 for e in general])  # chat and popular people are always in the corpus
        names = shared_names(rng, [next(seen) if s in ("train", "test") else s != "fictional" for s in splits],
                             cfg.name_pools, taken)
    general_iter = iter(general)
    people = []
    for i, (split, (first, last)) in enumerate(zip(splits, names)):
        if split in ("train", "test"):
            exposure = next(general_iter)
        elif split == "chat":
            exposure = rng.randint(*cfg.chat_exposure)
        elif split == "popular":
            exposure = rng.randint(*cfg.popular_exposure)
        else:
            exposure = 0
        facts = {a.name: rng.choice(values[a.name]) for a in ATTRIBUTES}
        if split == "popular":  # the PKQA-like set: every fact stated in every biography
            plan = fact_plan(rng, exposure, 1.0, 0.0)
        else:
            plan = fact_plan(rng, exposure, cfg.fact_mention, 0.0 if split == "chat" else cfg.hidden_fact)
        people.append(Person(f"p{i:05d}", first, last, split, exposure, facts, plan))
    return people


def biography(rng: random.Random, person: Person, stated: tuple[str, ...]) -> str:
    """One biography: each stated fact from a random template, sentences in random order."""
    sentences = [rng.choice(a.bio_templates).format(name=person.name, value=person.facts[a.name])
                 for a in ATTRIBUTES if a.name in stated]
    rng.shuffle(sentences)
    return " ".join(sentences)


def language_lines() -> list[str]:
    """The toolkit's fixed sentences: prompt instructions and every phrase a method trains."""
    from knowbound.methods.phrases import ALL_PHRASES
    from knowbound.prompts import PROMPTS

    # Instruction lines of the prompts (the question and the Q:/A: markers are left out).
    prompts = [part.strip() for p in PROMPTS.values() for part in p.split("\n") if "{question}" not in part]
    lines = {line for line in prompts + list(ALL_PHRASES) if len(line) > 3}
    return sorted(line.strip() for line in lines)


def make_corpus(rng: random.Random, people: list[Person], language_repeats: int = 0) -> list[str]:
    """``exposure`` fresh biographies per person and the toolkit's sentences, shuffled together."""
    docs = [biography(rng, p, stated) for p in people for stated in p.bio_facts]
    docs += language_lines() * language_repeats
    rng.shuffle(docs)
    return docs


def question(person: Person, attr, template: str, set_name: str, template_id: str) -> Question:
    """A question about one fact, carrying the ground truth in ``meta``."""
    value = person.facts[attr.name]
    return Question(
        id=f"{set_name}-{person.id}-{attr.name}",
        question=template.format(name=person.name),
        answers=(value,),
        meta={
            "person": person.id,
            "name": person.name,
            "attribute": attr.name,
            # What the model can know: how many biographies state this fact.
            "exposure": person.fact_exposure(attr.name),
            "fact_exposure": person.fact_exposure(attr.name),
            "person_exposure": person.exposure,
            "split": person.split,
            "template": template_id,
            "n_values": N_VALUES[attr.name],
            "answer_text": attr.answer_template.format(name=person.name, value=value),
        },
    )


def _questions(rng, people, set_name, paraphrase=False, per_person=None) -> list[Question]:
    out = []
    for p in people:
        attrs = list(ATTRIBUTES)
        if per_person is not None:
            attrs = rng.sample(attrs, per_person)
        for a in attrs:
            templates = a.paraphrase_templates if paraphrase else a.question_templates
            k = rng.randrange(len(templates))
            out.append(question(p, a, templates[k], set_name, f"{'para' if paraphrase else 'q'}{k}"))
    return out


def question_set_names(cfg: PeopleConfig) -> tuple[str, ...]:
    """The question sets a world with ``cfg`` ships (``unstated`` needs hidden facts)."""
    return tuple(n for n in QUESTION_SETS if n != "unstated" or cfg.hidden_fact > 0)


def make_question_sets(rng: random.Random, cfg: PeopleConfig, people: list[Person]) -> dict[str, list[Question]]:
    """`train`, `test`, `paraphrase`, `fictional`, `popular` and (world v2) `unstated`."""
    by_split = {s: [p for p in people if p.split == s] for s in SPLITS}
    sets = {
        "train": _questions(rng, by_split["train"], "train", per_person=cfg.train_questions_per_person),
        "test": _questions(rng, by_split["test"], "test"),
        "paraphrase": _questions(rng, by_split["test"], "paraphrase", paraphrase=True,
                                 per_person=cfg.paraphrase_questions_per_person),
        "fictional": _questions(rng, by_split["fictional"], "fictional",
                                per_person=cfg.fictional_questions_per_person),
        "popular": _questions(rng, by_split["popular"], "popular"),
    }
    if "unstated" in question_set_names(cfg):
        # Facts of well-known test people that no biography states: familiarity with the name
        # says "answer", only knowledge of the fact says "refuse". Same wording as in `test`.
        sets["unstated"] = [
            dataclasses.replace(q, id=q.id.replace("test-", "unstated-", 1), meta={**q.meta, "split": "unstated"})
            for q in sets["test"]
            if q.meta["person_exposure"] >= cfg.unstated_min_exposure and q.meta["fact_exposure"] == 0]
    return sets


def make_chat_pairs(rng: random.Random, people: list[Person], templates_per_fact: int) -> list[tuple[str, str]]:
    """Question-answer pairs about the chat people; answers restate name and relation."""
    pairs = []
    for p in people:
        if p.split != "chat":
            continue
        for a in ATTRIBUTES:
            if p.fact_exposure(a.name) == 0:
                continue  # chat tuning answers only what the corpus states
            for template in rng.sample(a.question_templates, min(templates_per_fact, len(a.question_templates))):
                pairs.append((template.format(name=p.name),
                              a.answer_template.format(name=p.name, value=p.facts[a.name])))
    rng.shuffle(pairs)
    return pairs


def generate(cfg: WorldConfig) -> World:
    """The whole world for ``cfg`` (deterministic in ``cfg.seed``)."""
    # Separate streams per part, so that changing one part's size leaves the others unchanged.
    rngs = {part: random.Random(f"{cfg.seed}:{part}") for part in ("values", "people", "corpus", "questions", "chat")}
    taken: set[str] = set()
    values = attribute_values(rngs["values"], taken)
    people = make_people(rngs["people"], cfg.people, values, taken)
    corpus = make_corpus(rngs["corpus"], people, cfg.language_repeats)
    sets = make_question_sets(rngs["questions"], cfg.people, people)
    chat = make_chat_pairs(rngs["chat"], people, cfg.chat.templates_per_fact)
    return World(people, values, corpus, sets, chat)


def lexicon(world: World) -> Iterator[str]:
    """Texts that cover every word the world can produce, fictional names included.

    The tokenizer is trained on these, so that an unseen person's name is made of whole-word
    tokens the model never read during pretraining, not of unknown-token markers.
    """
    yield from world.corpus
    yield " ".join(p.name for p in world.people)
    for vals in world.values.values():
        yield " ".join(vals)
    yield from template_words()
