"""Estimate a model's knowledge boundary: probe (sample), grade, label.

The probe asks every question once greedily and M times at temperature 1 (the paper: M = 10).
Each question then gets an expected accuracy (the share of correct samples), a SliCK category
(Gekhman et al. 2024) and a label-free estimate — the agreement of the samples with their most
common answer — usable when a set has no gold answers.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Sequence

from knowbound.errors import KnowboundError
from knowbound.grading import grade, normalize_answer
from knowbound.types import Grade, KnowledgeEstimate, Question, Sample

# SliCK (Gekhman et al. 2024, "Does Fine-Tuning LLMs on New Knowledge Encourage Hallucinations?"):
# from greedy answers over several prompt variants and samples at T > 0.
HIGHLY_KNOWN, MAYBE_KNOWN, WEAKLY_KNOWN, UNKNOWN = "HighlyKnown", "MaybeKnown", "WeaklyKnown", "Unknown"


@dataclass(frozen=True)
class ProbeItem:
    """Everything the method builders need about one probed question."""

    question: Question
    knowledge: KnowledgeEstimate
    greedy: str | None  # greedy answer text (None if it failed)
    greedy_grade: Grade | None
    samples: tuple[str, ...]  # sampled answers that did not fail, by sample index
    sample_grades: tuple[Grade, ...]

    def correct_samples(self) -> list[str]:
        return [t for t, g in zip(self.samples, self.sample_grades) if g.label == "correct"]

    def wrong_samples(self) -> list[str]:
        return [t for t, g in zip(self.samples, self.sample_grades) if g.label == "wrong"]

    def best_correct(self) -> str | None:
        """The greedy answer if correct, else the first correct sample (the paper's choice)."""
        if self.greedy_grade is not None and self.greedy_grade.label == "correct":
            return self.greedy
        correct = self.correct_samples()
        return correct[0] if correct else None


def slick_category(greedy_correct: Sequence[bool], any_sample_correct: bool) -> str:
    """SliCK: greedy always correct -> HighlyKnown; sometimes -> MaybeKnown; never but some
    sample correct -> WeaklyKnown; nothing correct -> Unknown."""
    if greedy_correct and all(greedy_correct):
        return HIGHLY_KNOWN
    if any(greedy_correct):
        return MAYBE_KNOWN
    return WEAKLY_KNOWN if any_sample_correct else UNKNOWN


def agreement(texts: Sequence[str]) -> float | None:
    """Share of answers equal (after normalisation) to the most common one; None if no answers."""
    if not texts:
        return None
    counts = Counter(normalize_answer(t) for t in texts)
    return counts.most_common(1)[0][1] / len(texts)


def group_samples(rows: Iterable[dict]) -> dict[str, dict[int, Sample]]:
    """Sample rows by question id, then sample index."""
    out: dict[str, dict[int, Sample]] = {}
    for row in rows:
        s = Sample.from_dict(row)
        out.setdefault(s.question_id, {})[s.sample_index] = s
    return out


def label_question(question: Question, samples: dict[int, Sample], mode: str = "default",
                   extra_greedy: Sequence[Sample] = ()) -> ProbeItem:
    """Grade one question's samples and estimate what the model knows about it.

    ``extra_greedy`` are greedy answers under other prompt variants (SliCK's several prompts).
    """
    greedy = samples.get(0)
    greedy_grade = None if greedy is None or greedy.finish_reason == "error" else grade(greedy.text, question, mode)
    sampled = [samples[i] for i in sorted(samples) if i > 0 and samples[i].finish_reason != "error"]
    grades = tuple(grade(s.text, question, mode) for s in sampled)
    n_correct = sum(g.label == "correct" for g in grades)
    variants = [greedy_grade] + [grade(s.text, question, mode) for s in extra_greedy if s.finish_reason != "error"]
    greedy_flags = [g.label == "correct" for g in variants if g is not None]
    estimate = KnowledgeEstimate(
        question_id=question.id,
        greedy_correct=None if greedy_grade is None else greedy_grade.label == "correct",
        n_correct=n_correct,
        n_samples=len(grades),
        expected_accuracy=n_correct / len(grades) if grades else 0.0,
        category=slick_category(greedy_flags, n_correct > 0),
        agreement=agreement([s.text for s in sampled]),
        meta=dict(question.meta),
    )
    return ProbeItem(question, estimate, None if greedy_grade is None else greedy.text, greedy_grade,
                     tuple(s.text for s in sampled), grades)


def label_all(questions: Sequence[Question], sample_rows: Iterable[dict], mode: str = "default",
              variant_rows: Sequence[Iterable[dict]] = ()) -> list[ProbeItem]:
    """Label every question; a question without samples is an error naming it."""
    by_q = group_samples(sample_rows)
    variants = [group_samples(rows) for rows in variant_rows]
    items = []
    for q in questions:
        if q.id not in by_q:
            raise KnowboundError(f"no probe samples for question '{q.id}': run the probe first")
        extra = [v[q.id][0] for v in variants if q.id in v and 0 in v[q.id]]
        items.append(label_question(q, by_q[q.id], mode, extra))
    return items


def load_items(questions: Sequence[Question], samples_path: Path, mode: str = "default",
               variant_paths: Sequence[Path] = ()) -> list[ProbeItem]:
    """``label_all`` over sample files on disk."""
    from knowbound.io import read_jsonl

    return label_all(questions, read_jsonl(samples_path), mode, [read_jsonl(p) for p in variant_paths])


def probe_summary(items: Sequence[ProbeItem]) -> dict:
    """Counts per category and, for the knowledge world (``meta.exposure``), how well the probe's
    expected accuracy separates seen from never-seen facts (AUROC)."""
    from knowbound.metrics import auroc

    cats = Counter(i.knowledge.category for i in items)
    out: dict = {"n": len(items), "categories": {c: cats.get(c, 0) for c in
                                                 (HIGHLY_KNOWN, MAYBE_KNOWN, WEAKLY_KNOWN, UNKNOWN)},
                 "greedy_accuracy": sum(bool(i.knowledge.greedy_correct) for i in items) / max(1, len(items)),
                 "mean_expected_accuracy": sum(i.knowledge.expected_accuracy for i in items) / max(1, len(items))}
    exposures = [i.question.meta.get("exposure") for i in items]
    if items and all(isinstance(e, int) for e in exposures):
        seen = [e > 0 for e in exposures]
        out["auroc_expected_accuracy_seen"] = auroc([i.knowledge.expected_accuracy for i in items], seen)
        agree = [i.knowledge.agreement if i.knowledge.agreement is not None else 0.0 for i in items]
        out["auroc_agreement_seen"] = auroc(agree, seen)
        strong = [(i, e) for i, e in zip(items, exposures) if e == 0 or e >= 3]
        out["auroc_expected_accuracy_seen3"] = auroc([i.knowledge.expected_accuracy for i, _ in strong],
                                                     [e >= 3 for _, e in strong])
    return out
