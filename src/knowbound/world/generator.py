"""Generate a knowledge world from a seed: people, the corpus, and question sets with ground truth.

Pure and seeded: the same config gives byte-identical files. Each question row carries the
fact's exposure (how many biographies of that person the corpus holds), which is the ground
truth of what the model can know.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Iterator

from knowbound.types import Question
from knowbound.world.config import PeopleConfig, WorldConfig
from knowbound.world.facts import ATTRIBUTES, N_VALUES, attribute_values, template_words, unique_words

SPLITS = ("train", "test", "chat", "popular", "fictional")
# The question sets a world ships, in the order they are written.
QUESTION_SETS = ("train", "test", "paraphrase", "fictional", "popular")


@dataclass(frozen=True)
class Person:
    id: str
    first: str
    last: str
    split: str
    exposure: int  # number of biographies in the corpus
    facts: dict[str, str] = field(default_factory=dict)

    @property
    def name(self) -> str:
        return f"{self.first} {self.last}"

    def to_dict(self) -> dict:
        return {"id": self.id, "name": self.name, "split": self.split,
                "exposure": self.exposure, "facts": dict(self.facts)}


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


def make_people(rng: random.Random, cfg: PeopleConfig, values: dict, taken: set[str]) -> list[Person]:
    """All people with unique two-word names, split and exposure assigned."""
    splits = (["train"] * cfg.n_train + ["test"] * cfg.n_test + ["chat"] * cfg.n_chat
              + ["popular"] * cfg.n_popular + ["fictional"] * cfg.n_fictional)
    n = len(splits)
    # Every name word belongs to one person: shared name words let a small model learn shortcuts
    # from a single word instead of the person.
    firsts = unique_words(rng, n, taken, (2,))
    lasts = unique_words(rng, n, taken, (2, 3))
    general = iter(_stratified_exposures(rng, cfg.n_train + cfg.n_test, cfg.exposure))
    people = []
    for i, split in enumerate(splits):
        if split in ("train", "test"):
            exposure = next(general)
        elif split == "chat":
            exposure = rng.randint(*cfg.chat_exposure)
        elif split == "popular":
            exposure = rng.randint(*cfg.popular_exposure)
        else:
            exposure = 0
        facts = {a.name: rng.choice(values[a.name]) for a in ATTRIBUTES}
        people.append(Person(f"p{i:05d}", firsts[i], lasts[i], split, exposure, facts))
    return people


def biography(rng: random.Random, person: Person) -> str:
    """One biography: every fact from a random template, sentences in random order."""
    sentences = [rng.choice(a.bio_templates).format(name=person.name, value=person.facts[a.name])
                 for a in ATTRIBUTES]
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
    docs = [biography(rng, p) for p in people for _ in range(p.exposure)]
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
            "exposure": person.exposure,
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


def make_question_sets(rng: random.Random, cfg: PeopleConfig, people: list[Person]) -> dict[str, list[Question]]:
    """`train`, `test`, `paraphrase`, `fictional` and `popular` question sets."""
    by_split = {s: [p for p in people if p.split == s] for s in SPLITS}
    return {
        "train": _questions(rng, by_split["train"], "train", per_person=cfg.train_questions_per_person),
        "test": _questions(rng, by_split["test"], "test"),
        "paraphrase": _questions(rng, by_split["test"], "paraphrase", paraphrase=True,
                                 per_person=cfg.paraphrase_questions_per_person),
        "fictional": _questions(rng, by_split["fictional"], "fictional",
                                per_person=cfg.fictional_questions_per_person),
        "popular": _questions(rng, by_split["popular"], "popular"),
    }


def make_chat_pairs(rng: random.Random, people: list[Person], templates_per_fact: int) -> list[tuple[str, str]]:
    """Question-answer pairs about the chat people; answers restate name and relation."""
    pairs = []
    for p in people:
        if p.split != "chat":
            continue
        for a in ATTRIBUTES:
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
