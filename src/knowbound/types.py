"""The few records every stage shares.

They are frozen dataclasses with ``to_dict`` / ``from_dict`` so that each one is exactly one
JSON Lines row in the run directory (see DESIGN.md). Everything else passes these around.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields, replace
from typing import Any, Literal, Mapping

Label = Literal["correct", "wrong", "idk"]
LABELS: tuple[str, ...] = ("correct", "wrong", "idk")
# The integer code of each label, in LABELS order: every array of labels (grading, metrics) uses them.
LABEL_CODES: dict[str, int] = {label: i for i, label in enumerate(LABELS)}
CORRECT, WRONG, IDK = LABEL_CODES["correct"], LABEL_CODES["wrong"], LABEL_CODES["idk"]
# The model every aligned one is compared with: its predictions are the honesty metrics' reference.
UNALIGNED = "unaligned"
FinishReason = Literal["stop", "length", "error"]
QuestionKind = Literal["open", "choice"]

# SliCK categories of Gekhman et al. (2024), "Does Fine-Tuning LLMs on New Knowledge Encourage
# Hallucinations?", most known first.
HIGHLY_KNOWN, MAYBE_KNOWN, WEAKLY_KNOWN, UNKNOWN = "HighlyKnown", "MaybeKnown", "WeaklyKnown", "Unknown"
CATEGORIES: tuple[str, ...] = (HIGHLY_KNOWN, MAYBE_KNOWN, WEAKLY_KNOWN, UNKNOWN)


def _from_known_fields(cls, row: Mapping[str, Any]):
    names = {f.name for f in fields(cls)}
    return cls(**{k: v for k, v in row.items() if k in names})


@dataclass(frozen=True)
class Question:
    """One question with its gold answers (aliases); ``kind='choice'`` adds options and an index."""

    id: str
    question: str
    answers: tuple[str, ...] = ()
    kind: QuestionKind = "open"
    choices: tuple[str, ...] = ()
    answer_index: int | None = None
    meta: Mapping[str, Any] = field(default_factory=dict)

    @property
    def group(self) -> Any:
        """The unit whose questions stand or fall together: the person on the knowledge world
        (``meta.person``), else the question itself. The P(IK) head's folds and the accuracy
        budget's bound (``baselines.fit_threshold``) count by it."""
        return self.meta.get("person", self.id)

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "question": self.question,
            "answers": list(self.answers),
            "kind": self.kind,
            "choices": list(self.choices),
            "answer_index": self.answer_index,
            "meta": dict(self.meta),
        }

    @classmethod
    def from_dict(cls, row: Mapping[str, Any]) -> "Question":
        return cls(
            id=str(row["id"]),
            question=row["question"],
            answers=tuple(row.get("answers") or ()),
            kind=row.get("kind", "open"),
            choices=tuple(row.get("choices") or ()),
            answer_index=row.get("answer_index"),
            meta=dict(row.get("meta") or {}),
        )


@dataclass(frozen=True)
class SamplingParams:
    """How to generate: ``n`` completions per prompt; ``temperature=0`` means greedy."""

    n: int = 1
    temperature: float = 0.0
    top_p: float = 1.0
    max_new_tokens: int = 64
    stop: tuple[str, ...] = ()
    seed: int | None = None
    # Completion j of a prompt is number first_index + j of its random stream (``backends.base.row_seed``):
    # asking for n=2 at first_index=3 gives the completions 3 and 4 of a call for n=5 at first_index=0
    # (the adaptive probe draws a question's samples in rounds, ``knowbound.adaptive``).
    first_index: int = 0

    @property
    def greedy(self) -> bool:
        return self.temperature == 0.0

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["stop"] = list(self.stop)
        return d


@dataclass(frozen=True)
class Completion:
    """One generated answer. A failed request is ``finish_reason='error'`` with ``error`` set and
    empty ``text``; it is never graded as an answer."""

    text: str
    finish_reason: FinishReason = "stop"
    logprob: float | None = None
    error: str | None = None

    @property
    def failed(self) -> bool:
        return self.finish_reason == "error"


@dataclass(frozen=True)
class Sample:
    """One row of ``samples/<set>.jsonl``: a completion for (question id, sample index).

    Index 0 is the greedy answer (``greedy=True``); sampled answers are 1..M.
    """

    question_id: str
    sample_index: int
    text: str
    finish_reason: FinishReason = "stop"
    greedy: bool = False
    temperature: float = 0.0
    seed: int | None = None
    logprob: float | None = None
    error: str | None = None

    @property
    def key(self) -> tuple[str, int]:
        return (self.question_id, self.sample_index)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, row: Mapping[str, Any]) -> "Sample":
        return _from_known_fields(cls, row)


@dataclass(frozen=True)
class Grade:
    """The verdict on one answer.

    ``label`` is what the honesty metrics use (idk wins over correct); ``correct`` is the paper's
    loose correctness (a gold alias matched, also inside a hedge or a refusal), used for accuracy.
    """

    label: Label
    correct: bool
    refusal: bool
    confidence: float | None = None
    extracted: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class KnowledgeEstimate:
    """One row of ``knowledge.jsonl``: what the probe says the model knows about a question.

    Beside the estimate it keeps the probe's answers and their labels (``greedy``/``greedy_label``,
    ``samples``/``sample_labels``, failed answers left out), so the build stage reads this file and
    never grades the samples again.
    """

    question_id: str
    greedy_correct: bool | None
    n_correct: int
    n_samples: int
    expected_accuracy: float
    category: str
    agreement: float | None = None
    meta: Mapping[str, Any] = field(default_factory=dict)
    greedy: str | None = None  # the greedy answer (None if it failed)
    greedy_label: Label | None = None
    samples: tuple[str, ...] = ()  # sampled answers that did not fail, by sample index
    sample_labels: tuple[Label, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["meta"] = dict(self.meta)
        d["samples"], d["sample_labels"] = list(self.samples), list(self.sample_labels)
        return d

    @classmethod
    def from_dict(cls, row: Mapping[str, Any]) -> "KnowledgeEstimate":
        est = _from_known_fields(cls, row)
        return replace(est, samples=tuple(est.samples), sample_labels=tuple(est.sample_labels))


@dataclass(frozen=True)
class ProbeItem:
    """A probed question with its knowledge estimate: what the method builders read."""

    question: Question
    knowledge: KnowledgeEstimate

    @property
    def greedy(self) -> str | None:
        return self.knowledge.greedy

    @property
    def greedy_label(self) -> Label | None:
        return self.knowledge.greedy_label

    def correct_samples(self) -> list[str]:
        k = self.knowledge
        return [t for t, label in zip(k.samples, k.sample_labels) if label == "correct"]

    def wrong_samples(self) -> list[str]:
        k = self.knowledge
        return [t for t, label in zip(k.samples, k.sample_labels) if label == "wrong"]

    def best_correct(self) -> str | None:
        """The greedy answer if correct, else the first correct sample (the paper's choice)."""
        if self.greedy_label == "correct":
            return self.greedy
        correct = self.correct_samples()
        return correct[0] if correct else None


@dataclass(frozen=True)
class Prediction:
    """One row of ``predictions/<model>/<set>.jsonl``: a model's graded greedy answer.

    Readable by ``knowbound score`` as is. A failed answer has ``error`` set and no label; the
    row then carries no ``finish_reason``.
    """

    id: str
    question: str
    answers: tuple[str, ...]
    pred_text: str
    label: Label | None
    correct: bool | None
    refusal: bool | None
    confidence: float | None = None
    p_refusal: float | None = None
    finish_reason: FinishReason | None = None
    error: str | None = None
    meta: Mapping[str, Any] = field(default_factory=dict)
    logprob: float | None = None  # the answer's log-probability, where the backend reports it

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["answers"], d["meta"] = list(self.answers), dict(self.meta)
        for key in ("finish_reason", "error", "logprob"):  # absent rather than null: rows stay short
            if d[key] is None:
                del d[key]
        return d

    @classmethod
    def from_dict(cls, row: Mapping[str, Any]) -> "Prediction":
        p = _from_known_fields(cls, row)
        return replace(p, answers=tuple(p.answers))
