"""The label stage: grade the probe's answers and estimate what the model knows per question.

Each question gets an expected accuracy (the share of correct samples), a SliCK category
(Gekhman et al. 2024) and a label-free estimate, how much the samples agree with the
greedy answer (the mean overlap of their content words, ``knowbound.grading.agreement.support``;
the majority share among the samples themselves when the greedy answer failed), usable when a set
has no gold answers. On SmolLM2-135M's GeoNames training questions it predicts the greedy
answer's correctness at AUROC 0.778, against 0.723 for the share of samples agreeing with the
greedy answer and 0.68 for agreement among the samples alone. ``knowledge.jsonl`` keeps the graded
answers too, for the build stage; ``probe.json`` summarises the categories. After an adaptive
probe (``knowbound.adaptive``) a question has the samples drawn for it: ``n_samples`` counts them
(0 when a correct greedy answer settled it) and the expected accuracy is their share correct.
"""

from __future__ import annotations

from collections import Counter

from knowbound.grading.agreement import agreement, support
from pathlib import Path
from typing import Iterable, Sequence

from knowbound.errors import KnowboundError
from knowbound.io import read_jsonl, write_json, write_jsonl
from knowbound.loop.probe import sample_paths
from knowbound.loop.rundir import ConfigView, Output, RunDir, StageResult
from knowbound.types import (
    CATEGORIES, HIGHLY_KNOWN, MAYBE_KNOWN, UNKNOWN, WEAKLY_KNOWN, KnowledgeEstimate, ProbeItem, Question, Sample,
)

NAME = "label"
READS = ("grading", "probe.prompt_variants")


def slick_category(greedy_correct: Sequence[bool], any_sample_correct: bool) -> str:
    """SliCK: greedy always correct -> HighlyKnown; sometimes -> MaybeKnown; never but some
    sample correct -> WeaklyKnown; nothing correct -> Unknown."""
    if greedy_correct and all(greedy_correct):
        return HIGHLY_KNOWN
    if any(greedy_correct):
        return MAYBE_KNOWN
    return WEAKLY_KNOWN if any_sample_correct else UNKNOWN


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
    from knowbound.grading import grade

    greedy = samples.get(0)
    greedy_grade = None if greedy is None or greedy.finish_reason == "error" else grade(greedy.text, question, mode)
    sampled = [samples[i] for i in sorted(samples) if i > 0 and samples[i].finish_reason != "error"]
    grades = [grade(s.text, question, mode) for s in sampled]
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
        agreement=(support(greedy.text, [s.text for s in sampled], question.question) if greedy_grade is not None
                   else agreement([s.text for s in sampled], question.question)),
        meta=dict(question.meta),
        greedy=None if greedy_grade is None else greedy.text,
        greedy_label=None if greedy_grade is None else greedy_grade.label,
        samples=tuple(s.text for s in sampled),
        sample_labels=tuple(g.label for g in grades),
    )
    return ProbeItem(question, estimate)


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


def probe_summary(items: Sequence[ProbeItem]) -> dict:
    """Counts per category; how well the samples' agreement and expected accuracy predict the greedy
    answer's correctness (AUROC); and, for the knowledge world (``meta.exposure``), how well the
    expected accuracy separates seen from never-seen facts. The AUROCs are over the questions with
    samples (``n_sampled``, present when an adaptive probe left some without)."""
    from knowbound.metrics import auroc

    cats = Counter(i.knowledge.category for i in items)
    out: dict = {"n": len(items), "categories": {c: cats.get(c, 0) for c in CATEGORIES},
                 "greedy_accuracy": sum(bool(i.knowledge.greedy_correct) for i in items) / max(1, len(items)),
                 "mean_expected_accuracy": sum(i.knowledge.expected_accuracy for i in items) / max(1, len(items))}
    # How well the label-free agreement of the samples (no gold answer needed) and the expected
    # accuracy predict whether the greedy answer is right. Over the questions with samples: after
    # an adaptive probe a correct greedy answer can settle a question with none.
    if any(i.knowledge.n_samples == 0 for i in items):
        items = [i for i in items if i.knowledge.n_samples > 0]
        out["n_sampled"] = len(items)
    greedy_right = [bool(i.knowledge.greedy_correct) for i in items]
    agree = [i.knowledge.agreement if i.knowledge.agreement is not None else 0.0 for i in items]
    out["auroc_agreement_greedy"] = auroc(agree, greedy_right) if items else None
    out["auroc_expected_accuracy_greedy"] = auroc([i.knowledge.expected_accuracy for i in items],
                                                  greedy_right) if items else None
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


def read_knowledge(run_dir: Path, questions: Sequence[Question]) -> list[ProbeItem]:
    """The probe items of a labelled run (``knowledge.jsonl`` with its questions), in question order."""
    by_id = {r["question_id"]: KnowledgeEstimate.from_dict(r) for r in read_jsonl(run_dir / "knowledge.jsonl")}
    missing = [q.id for q in questions if q.id not in by_id]
    if missing:
        raise KnowboundError(f"knowledge.jsonl has no row for question '{missing[0]}': run the label stage again")
    return [ProbeItem(q, by_id[q.id]) for q in questions]


def outputs(run: RunDir) -> list[Output]:
    """One output: knowledge.jsonl with probe.json."""
    knowledge, summary_path = run.dir / "knowledge.jsonl", run.dir / "probe.json"

    def work(view: ConfigView) -> None:
        samples, variants = sample_paths(run.dir, view.probe.prompt_variants)
        items = label_all(run.questions("train"), read_jsonl(samples), view.grading,
                          [read_jsonl(p) for p in variants])
        write_jsonl(knowledge, (i.knowledge.to_dict() for i in items))
        summary = probe_summary(items)
        write_json(summary_path, summary)
        run.log("label: " + ", ".join(f"{k} {v}" for k, v in summary["categories"].items())
                + (f"; AUROC of expected accuracy, seen vs never seen: {summary['auroc_expected_accuracy_seen']:.3f}"
                   if summary.get("auroc_expected_accuracy_seen") is not None else ""))

    return [Output("label", (knowledge, summary_path), work, reads=READS, after=("questions/train", "probe"))]


def run(rundir: RunDir) -> StageResult:
    """Label the probe's answers."""
    return rundir.run_stage(NAME, outputs(rundir))
