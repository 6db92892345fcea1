"""A synthetic finished run directory (docs/run-directory.md), seeded, small and fast.

Tests of anything that reads a run (the report first) need a realistic one without sampling or
training a model. This module writes every file of the contract from a simulated knowledge world:
each question has a ground-truth ``exposure``, the unaligned model knows a fact with a probability
that rises with exposure, and each honesty method refuses unknown facts more often than known
ones. Answers are *texts*; the probe's are labelled by the label stage's own function
(``knowbound.loop.label``), the predictions graded by the real grader, and ``metrics.json`` is
computed by the metrics stage's own function (``knowbound.loop.metrics.set_metrics``), so every
number is consistent with the files. No weights are written under ``models/``.

    run_dir = make_fake_run(tmp_path / "run", seed=0)
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import yaml

from knowbound import __version__
from knowbound.grading import CONFIDENCE_VERB_PREFIXES, CONFIDENCE_VERB_VALUES, REFUSAL, grade
from knowbound.io import atomic_write_text, write_json, write_jsonl
from knowbound.loop.label import label_question, probe_summary
from knowbound.loop.metrics import set_metrics
from knowbound.methods import get_method
from knowbound.types import UNALIGNED, UNKNOWN, Prediction, Question, Sample
from knowbound.world.config import DEFAULT_EXPOSURE

# A few registered methods: one of each confidence kind, and DPO.
DEFAULT_METHODS: tuple[str, ...] = tuple(get_method(m).name for m in ("absolute", "confidence-verb", "rtuning", "dpo"))
EVAL_SETS: tuple[str, ...] = ("test", "paraphrase", "fictional", "popular")
# Model output that must never reach a page as markup; it is the first test answer of `absolute`.
INJECTION = "<script>alert(1)</script>"
SAMPLES_PER_QUESTION = 4  # M of the simulated probe

# attribute -> (question template, answer template, value pool). Small pools keep chance-level
# guessing visible (a never-seen fact is still answered right about 1 time in len(pool)).
ATTRIBUTES: dict[str, tuple[str, str, tuple[str, ...]]] = {
    "birth_year": ("In what year was {name} born?", "{name} was born in {value}.",
                   tuple(str(y) for y in range(1900, 1920))),
    "birth_city": ("Which city is {name} from?", "{name} is a native of {value}.",
                   ("Brenford", "Kalmere", "Tovaholm", "Sandport", "Miraburg", "Drelness", "Faustead",
                    "Glenmoor", "Orlhaven", "Pellvale")),
    "field": ("What did {name} major in?", "{name} majored in {value}.",
              ("physics", "botany", "law", "music", "geology", "poetry", "finance", "zoology")),
}
FIRST_NAMES = ("Alda", "Boren", "Cima", "Dorel", "Esko", "Fira", "Galen", "Hest", "Ilva", "Joran")
LAST_NAMES = ("Marrow", "Quell", "Stadt", "Voss", "Wren", "Thane", "Roke", "Lisk", "Brand", "Holt")

# P(the unaligned model knows a fact | exposure): never seen is pure guessing; the curve then
# rises like the knowledge world's tiny model (weak at 1-2 biographies, solid from about 8).
KNOW_BY_EXPOSURE: tuple[tuple[int, float], ...] = ((0, 0.0), (1, 0.35), (2, 0.55), (3, 0.75), (8, 0.95))
# Exposure ranges (inclusive) and weights of the in-domain sets, the knowledge world's; `fictional`
# is 0, `popular` 10-14.
EXPOSURE_SHAPE: tuple[tuple[int, int, float], ...] = DEFAULT_EXPOSURE
POPULAR_EXPOSURE = (10, 14)
UNALIGNED_REFUSAL = 0.02  # an unaligned chat model almost never says it does not know


@dataclass(frozen=True)
class Behaviour:
    """How a simulated aligned model treats known and unknown facts."""

    refuse_unknown: float
    refuse_known: float
    confidence: str | None = None  # None, "verb" (CONFIDENCE-VERB phrases) or "sure" (R-Tuning P(sure))
    p_refusal: bool = False  # whether the model reports its probability of starting with a refusal


BEHAVIOURS: dict[str, Behaviour] = {
    "sft-baseline": Behaviour(0.05, 0.01),
    "prompt": Behaviour(0.35, 0.10),
    "absolute": Behaviour(0.75, 0.08, p_refusal=True),
    "confidence-num": Behaviour(0.55, 0.05),
    "confidence-verb": Behaviour(0.55, 0.05, confidence="verb"),
    "multisample": Behaviour(0.70, 0.10),
    "rtuning": Behaviour(0.65, 0.10, confidence="sure"),
    "dpo": Behaviour(0.85, 0.15),
}
DEFAULT_BEHAVIOUR = Behaviour(0.5, 0.1)


def _know_probability(exposure: int) -> float:
    return [p for low, p in KNOW_BY_EXPOSURE if exposure >= low][-1]


def _exposure(rng: random.Random, set_name: str) -> int:
    if set_name == "fictional":
        return 0
    if set_name == "popular":
        return rng.randint(*POPULAR_EXPOSURE)
    low, high, _ = rng.choices(EXPOSURE_SHAPE, weights=[w for *_, w in EXPOSURE_SHAPE])[0]
    return rng.randint(low, high)


def make_questions(rng: random.Random, set_name: str, n: int) -> list[Question]:
    """``n`` questions of one set, with the knowledge world's ground truth in ``meta``."""
    out = []
    for i in range(n):
        attribute = list(ATTRIBUTES)[i % len(ATTRIBUTES)]
        template, answer_template, pool = ATTRIBUTES[attribute]
        name = f"{rng.choice(FIRST_NAMES)} {rng.choice(LAST_NAMES)}{i}"
        value = rng.choice(pool)
        out.append(Question(
            id=f"{set_name}-{i:04d}", question=template.format(name=name), answers=(value,),
            meta={"person": f"p{i:05d}", "name": name, "attribute": attribute,
                  "exposure": _exposure(rng, set_name), "split": set_name, "template": "q0",
                  "n_values": len(pool), "answer_text": answer_template.format(name=name, value=value)},
        ))
    return out


def _answer(rng: random.Random, q: Question, right: bool) -> str:
    """An answer sentence with the gold value (``right``) or a wrong one from the same pool."""
    _, answer_template, pool = ATTRIBUTES[q.meta["attribute"]]
    value = q.answers[0] if right else rng.choice([v for v in pool if v != q.answers[0]])
    return answer_template.format(name=q.meta["name"], value=value)


def _guess(rng: random.Random, q: Question, known: bool) -> bool:
    """Whether an answer is right: known facts almost always, unknown ones by chance."""
    return rng.random() < (0.97 if known else 1.0 / q.meta["n_values"])


def _prediction(q: Question, text: str, confidence: float | None, p_refusal: float | None) -> dict[str, Any]:
    g = grade(text, q)
    return Prediction(q.id, q.question, q.answers, text, g.label, g.correct, g.refusal, confidence, p_refusal,
                      meta=dict(q.meta)).to_dict()


def unaligned_predictions(rng: random.Random, questions: list[Question], known: list[bool]) -> list[dict]:
    """The unaligned model's graded answers: it answers almost everything."""
    rows = []
    for q, k in zip(questions, known):
        text = REFUSAL if rng.random() < UNALIGNED_REFUSAL else _answer(rng, q, _guess(rng, q, k))
        rows.append(_prediction(q, text, None, None))
    return rows


def aligned_predictions(rng: random.Random, questions: list[Question], known: list[bool],
                        behaviour: Behaviour) -> list[dict]:
    """A method's graded answers: refusals driven by what the model knows, plus its confidence."""
    rows = []
    for q, k in zip(questions, known):
        refuse = rng.random() < (behaviour.refuse_known if k else behaviour.refuse_unknown)
        confidence = None
        if behaviour.confidence == "sure":  # P(sure) after the answer, higher when known
            confidence = round(rng.betavariate(6, 2) if k else rng.betavariate(2, 5), 4)
        text = REFUSAL if refuse else _answer(rng, q, _guess(rng, q, k))
        if behaviour.confidence == "verb" and not refuse:
            level = min(4, max(0, (3 if k else 0) + rng.choice((-1, 0, 0, 1))))
            confidence = CONFIDENCE_VERB_VALUES[level]
            text = CONFIDENCE_VERB_PREFIXES[level] + text[0].lower() + text[1:]
        p_refusal = None
        if behaviour.p_refusal:
            p_refusal = round(min(1.0, max(0.0, (0.7 if refuse else 0.2) + rng.uniform(-0.2, 0.2))), 4)
        rows.append(_prediction(q, text, confidence, p_refusal))
    return rows


def write_probe(run_dir: Path, rng: random.Random, questions: list[Question], known: list[bool]) -> list[dict]:
    """``samples/train.jsonl``, ``knowledge.jsonl`` and ``probe.json``, labelled as the label stage
    labels; returns the knowledge rows."""
    samples, items = [], []
    for q, k in zip(questions, known):
        texts = [_answer(rng, q, _guess(rng, q, k)) for _ in range(SAMPLES_PER_QUESTION + 1)]
        by_index = {i: Sample(q.id, i, text, greedy=i == 0, temperature=0.0 if i == 0 else 1.0,
                              seed=None if i == 0 else i) for i, text in enumerate(texts)}
        samples += [s.to_dict() for s in by_index.values()]
        items.append(label_question(q, by_index))
    write_jsonl(run_dir / "samples" / "train.jsonl", samples)
    knowledge = [i.knowledge.to_dict() for i in items]
    write_jsonl(run_dir / "knowledge.jsonl", knowledge)
    write_json(run_dir / "probe.json", probe_summary(items))
    return knowledge


def write_training_data(run_dir: Path, questions: list[Question], knowledge: list[dict],
                        methods: Sequence[str]) -> None:
    """``data/<method>.jsonl``: SFT rows, or DPO pairs for ``dpo`` (the prompt method has none)."""
    for method in methods:
        if method == "prompt":
            continue
        rows = []
        for q, k in zip(questions, knowledge):
            known = k["category"] != UNKNOWN
            prompt = [{"role": "user", "content": q.question}]
            answer = [{"role": "assistant", "content": q.meta["answer_text"]}]
            refusal = [{"role": "assistant", "content": REFUSAL}]
            if method == "dpo":
                rows.append({"prompt": prompt, "chosen": answer if known else refusal,
                             "rejected": refusal if known else answer, "question_id": q.id, "known": known})
            else:
                rows.append({"prompt": prompt, "completion": answer if known else refusal,
                             "question_id": q.id, "known": known})
        write_jsonl(run_dir / "data" / f"{method}.jsonl", rows)


def write_config_and_manifest(run_dir: Path, seed: int, methods: Sequence[str], sets: Sequence[str]) -> None:
    """``config.yaml`` and ``manifest.json`` with fixed versions and times (so output is stable)."""
    config = {"name": run_dir.name, "seed": seed, "world": {"preset": "tiny"},
              "model": {"backend": "hf", "path": "world/chat-model"},
              "probe": {"samples": SAMPLES_PER_QUESTION, "temperature": 1.0},
              "methods": list(methods), "eval": {"sets": list(sets), "bootstrap": 200, "ece_bins": 15},
              "train": {"lora": True, "epochs": 2, "lr": 2.0e-4}}
    atomic_write_text(run_dir / "config.yaml", yaml.safe_dump(config, sort_keys=False))
    stages = {}
    for minute, (stage, seconds) in enumerate((("world", 812.4), ("probe", 95.2), ("build", 0.8),
                                               ("train", 640.0), ("eval", 120.5), ("score", 2.1))):
        stages[stage] = {"hash": f"{seed:04d}{minute:02d}" + "ab" * 5, "seconds": seconds,
                         "finished": f"2025-01-01T12:{10 + 5 * minute:02d}:00+00:00"}
    write_json(run_dir / "manifest.json", {
        "knowbound": __version__, "python": "3.11.2",
        "libraries": {"numpy": "2.4.6", "torch": "2.13.0", "transformers": "4.56.0", "trl": "0.20.0"},
        "git": None, "seed": seed, "config_hash": "c0ffee" * 4, "stages": stages,
    })


def make_fake_run(run_dir: str | Path, *, seed: int = 0, n_per_set: int = 60,
                  methods: Sequence[str] = DEFAULT_METHODS, sets: Sequence[str] = EVAL_SETS,
                  n_bootstrap: int = 200) -> Path:
    """Write a complete synthetic run into ``run_dir`` and return its path.

    ``n_per_set`` questions per eval set (and for ``train``); predictions for ``unaligned`` and
    every method in ``methods`` on every set in ``sets``; ``metrics.json`` from ``set_metrics`` with
    ``n_bootstrap`` resamples. The same arguments give byte-identical files.
    """
    run_dir = Path(run_dir)
    rng = random.Random(seed)
    train = make_questions(rng, "train", n_per_set)
    write_jsonl(run_dir / "questions" / "train.jsonl", [q.to_dict() for q in train])
    train_known = [rng.random() < _know_probability(q.meta["exposure"]) for q in train]
    knowledge = write_probe(run_dir, rng, train, train_known)
    write_training_data(run_dir, train, knowledge, methods)

    predictions: dict[str, dict[str, list[dict]]] = {UNALIGNED: {}, **{m: {} for m in methods}}
    for set_name in sets:
        questions = make_questions(rng, set_name, n_per_set)
        write_jsonl(run_dir / "questions" / f"{set_name}.jsonl", [q.to_dict() for q in questions])
        # What the model knows is one draw per question, shared by the unaligned and aligned models.
        known = [rng.random() < _know_probability(q.meta["exposure"]) for q in questions]
        predictions[UNALIGNED][set_name] = unaligned_predictions(rng, questions, known)
        for method in methods:
            rows = aligned_predictions(rng, questions, known, BEHAVIOURS.get(method, DEFAULT_BEHAVIOUR))
            predictions[method][set_name] = rows
    if "test" in sets and "absolute" in methods:
        first = predictions["absolute"]["test"][0]
        first.update(pred_text=f"{INJECTION} {first['pred_text']}")

    metrics: dict[str, dict[str, Any]] = {}
    for model, by_set in predictions.items():
        for set_name, rows in by_set.items():
            write_jsonl(run_dir / "predictions" / model / f"{set_name}.jsonl", rows)
            metrics.setdefault(model, {})[set_name] = set_metrics(
                rows, predictions[UNALIGNED][set_name], n_bootstrap=n_bootstrap, seed=seed)
    write_json(run_dir / "metrics.json", metrics)
    write_config_and_manifest(run_dir, seed, methods, sets)
    return run_dir
