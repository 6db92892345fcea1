"""The vocabulary of the knowledge world: names, attribute values and sentence templates.

People follow the bioS data of "Physics of Language Models, Part 3.1" (Allen-Zhu and Li, 2023):
invented people with a few single-word attributes, each written from several templates with the
full name in every sentence. Knowledge augmentation (many templates, permuted sentence order) is
what makes a fact extractable by a question later.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

# Syllables for invented words. Names, places and companies draw from different endings so that
# no value can be confused with a name word.
ONSETS = ("b", "d", "f", "g", "h", "k", "l", "m", "n", "p", "r", "s", "t", "v", "z",
          "br", "dr", "gr", "kr", "pr", "tr", "st", "sk", "th", "sh", "ch", "fl", "gl", "pl", "sl")
VOWELS = ("a", "e", "i", "o", "u", "ai", "au", "ei", "ou", "ia", "io", "ae")
CODAS = ("", "", "", "n", "r", "l", "s", "m", "th", "nd", "rk", "st")
PLACE_ENDINGS = ("ford", "mere", "vale", "holm", "stead", "burg", "port", "haven", "moor", "ness")
UNIVERSITY_ENDINGS = ("ridge", "field", "wood", "gate", "crest", "bury", "ley", "worth")
COMPANY_ENDINGS = ("tek", "corp", "ix", "ora", "lux", "gen", "dyne", "soft", "works", "logic")

FIELDS = (
    "physics", "chemistry", "biology", "geology", "astronomy", "mathematics", "statistics",
    "economics", "sociology", "psychology", "linguistics", "philosophy", "history", "archaeology",
    "anthropology", "architecture", "law", "medicine", "nursing", "pharmacy", "dentistry",
    "engineering", "robotics", "agriculture", "forestry", "oceanography", "meteorology",
    "journalism", "music", "painting", "sculpture", "theatre", "literature", "poetry",
    "photography", "dance", "design", "accounting", "finance", "marketing", "management",
    "education", "theology", "genetics", "ecology", "zoology", "botany", "neuroscience",
    "cryptography", "logistics",
)


@dataclass(frozen=True)
class Attribute:
    """One kind of fact: its values, the biography templates, the answer template, questions."""

    name: str
    bio_templates: tuple[str, ...]  # "{name}" and "{value}"
    answer_template: str  # how the chat model answers: a biography sentence
    question_templates: tuple[str, ...]  # used in chat tuning, probing, honesty data and `test`
    paraphrase_templates: tuple[str, ...]  # never used in tuning: the `paraphrase` set


ATTRIBUTES: tuple[Attribute, ...] = (
    Attribute(
        "birth_year",
        ("{name} was born in {value}.", "{name} came into this world in {value}.",
         "The birth year of {name} is {value}."),
        "{name} was born in {value}.",
        ("In what year was {name} born?", "When was {name} born?"),
        ("What is the birth year of {name}?", "Which year did {name} come into this world?"),
    ),
    Attribute(
        "birth_city",
        ("{name} is a native of {value}.", "{name} spent the early years in {value}.",
         "{name} was raised in the town of {value}."),
        "{name} is a native of {value}.",
        ("Which city is {name} from?", "Where does {name} come from?"),
        ("What is the hometown of {name}?", "In which town did {name} spend the early years?"),
    ),
    Attribute(
        "university",
        ("{name} studied at {value} University.", "{name} graduated from {value} University.",
         "{name} received an education at {value} University."),
        "{name} studied at {value} University.",
        ("Which university did {name} attend?", "Where did {name} study?"),
        ("From which university did {name} graduate?", "Where was {name} educated?"),
    ),
    Attribute(
        "field",
        ("{name} majored in {value}.", "{name} focused on {value} during college.",
         "{name} completed a degree in {value}."),
        "{name} majored in {value}.",
        ("What did {name} major in?", "What was the major of {name}?"),
        ("Which subject did {name} focus on during college?", "In what field did {name} complete a degree?"),
    ),
    Attribute(
        "employer",
        ("{name} worked for {value}.", "{name} was employed by {value}.",
         "{name} had a career at {value}."),
        "{name} worked for {value}.",
        ("Which company did {name} work for?", "Who employed {name}?"),
        ("At which company did {name} have a career?", "Which firm was {name} employed by?"),
    ),
)

N_VALUES = {"birth_year": 80, "birth_city": 60, "university": 60, "field": len(FIELDS), "employer": 70}


def invented_word(rng: random.Random, syllables: int, ending: str = "") -> str:
    """A pronounceable invented word, capitalised."""
    parts = [rng.choice(ONSETS) + rng.choice(VOWELS) + rng.choice(CODAS) for _ in range(syllables)]
    return ("".join(parts) + ending).capitalize()


def unique_words(rng: random.Random, n: int, taken: set[str], syllables: tuple[int, ...],
                 endings: tuple[str, ...] = ("",)) -> list[str]:
    """``n`` invented words, none in ``taken`` (which is updated)."""
    out: list[str] = []
    while len(out) < n:
        word = invented_word(rng, rng.choice(syllables), rng.choice(endings))
        if word in taken or len(word) < 4:
            continue
        taken.add(word)
        out.append(word)
    return out


def attribute_values(rng: random.Random, taken: set[str]) -> dict[str, tuple[str, ...]]:
    """The finite value set of every attribute."""
    return {
        "birth_year": tuple(str(1900 + i) for i in range(N_VALUES["birth_year"])),
        "birth_city": tuple(unique_words(rng, N_VALUES["birth_city"], taken, (1, 2), PLACE_ENDINGS)),
        "university": tuple(unique_words(rng, N_VALUES["university"], taken, (1, 2), UNIVERSITY_ENDINGS)),
        "field": FIELDS,
        "employer": tuple(unique_words(rng, N_VALUES["employer"], taken, (1, 2), COMPANY_ENDINGS)),
    }


def template_words() -> list[str]:
    """Every fixed text of the world's templates (for the tokenizer's vocabulary)."""
    texts = []
    for a in ATTRIBUTES:
        texts += list(a.bio_templates) + [a.answer_template]
        texts += list(a.question_templates) + list(a.paraphrase_templates)
    return [t.replace("{name}", "").replace("{value}", "") for t in texts]
