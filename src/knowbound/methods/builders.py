"""One small builder per honesty method: probe items in, TRL-ready training rows out.

Builders follow the paper's official data code (``train/process_training_data.py``) unless a
comment says otherwise. Every row carries ``question_id`` and ``known`` beside the TRL fields, so
a data file can be audited; the trainer keeps only the TRL fields.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass
from typing import Sequence

from knowbound.grading.confidence import CONFIDENCE_NUM_TEMPLATES, CONFIDENCE_VERB_PREFIXES
from knowbound.methods.phrases import REFUSAL, RTUNING_QUESTION, RTUNING_SURE, RTUNING_UNSURE
from knowbound.prompts import render_prompt
from knowbound.types import ProbeItem, Question

# CONFIDENCE-VERB: upper bound of k (correct samples of 10) for each phrase, in order.
VERB_BIN_UPPER = (2, 4, 6, 8, 10)
# CONFIDENCE-NUM: "only about N%" up to this k, "about N%" above.
NUM_ONLY_ABOUT_MAX = 5
# GRPO: the least share of prompts about unknown questions; below it, unknown prompts are repeated.
# RL on known questions alone rewards answering everything and trains refusals away (TruthRL's
# ablation without unanswerable questions).
GRPO_MIN_UNKNOWN_SHARE = 0.3
# The paper lower-cases an answer's first letter after a confidence phrase ("... that the
# answer is"); we do it only for these sentence openers, never for names.
LOWERCASE_OPENERS = frozenset({"The", "A", "An", "It", "Its", "This", "That", "These", "Those", "There",
                               "He", "She", "They", "His", "Her", "Their", "In", "On", "At", "I", "My"})


@dataclass(frozen=True)
class BuildOptions:
    """Options shared by the builders."""

    prompt: str = "typical"  # prompt template name (knowbound.prompts)
    tau: float = 0.1  # known if expected accuracy >= tau (the paper: 1 of 10 samples correct)
    refusal: str = REFUSAL
    seed: int = 0
    multisample_max: int | None = None  # cap rows per question for multisample (None: all M)
    # official: a correct greedy answer also makes a question known (the official code's rule);
    # samples: only expected accuracy >= tau does.
    known_rule: str = "official"
    # CONFIDENCE targets by k (correct samples, 0..10): None states k/10 (the paper's); else the
    # probability to state for each k (``confidence_targets``: P(greedy correct | k)).
    confidence_by_k: tuple[float, ...] | None = None
    pik_samples: bool = False  # the P(IK) head's data also holds the probe's sampled answers
    pik_entity: str | None = None  # the question meta key whose entity the P(IK) head's rows carry


def messages(text: str, role: str) -> list[dict]:
    return [{"role": role, "content": text}]


def sft_row(item: ProbeItem, completion: str, opts: BuildOptions, known: bool) -> dict:
    return {"prompt": messages(render_prompt(opts.prompt, item.question), "user"),
            "completion": messages(completion, "assistant"),
            "question_id": item.question.id, "known": known}


def is_known(item: ProbeItem, opts: BuildOptions) -> bool:
    """The ABSOLUTE rule: expected accuracy of the samples at least tau, or (``known_rule`` official,
    the official code's) a correct greedy answer."""
    k = item.knowledge
    by_samples = k.n_samples > 0 and k.expected_accuracy >= opts.tau
    return by_samples or (opts.known_rule == "official" and k.greedy_label == "correct")


def confidence_targets(items: Sequence[ProbeItem], m: int = 10, prior: float = 1.0) -> tuple[float, ...]:
    """P(greedy answer correct | k of ``m`` samples correct), k = 0..m, measured on the probe.

    Eval scores a stated confidence against the greedy answer, which is right far more often than
    a sample at T = 1 (so k/m trains under-confidence). Each k's rate is shrunk toward the pooled
    rate with ``prior`` pseudo-counts and made non-decreasing in k (pool adjacent violators), so a
    rare k gets a sensible value.
    """
    counts = [[0, 0] for _ in range(m + 1)]  # [greedy correct, total] per k
    for i in items:
        kn = i.knowledge
        if kn.n_samples == 0 or kn.greedy_label is None:
            continue
        k = round(m * kn.expected_accuracy)
        counts[k][0] += kn.greedy_label == "correct"
        counts[k][1] += 1
    overall = sum(c for c, _ in counts) / max(1, sum(n for _, n in counts))
    rates, weights = [], []
    for k, (c, n) in enumerate(counts):
        # No question with this k: k/m stands in, with (almost) no weight against its neighbours.
        rates.append((c + prior * overall) / (n + prior) if n + prior > 0 else k / m)
        weights.append(max(n + prior, 1e-9))
    # Pool adjacent violators: the non-decreasing fit closest to the rates (weighted).
    blocks: list[list[float]] = []  # [value, weight, size]
    for r, w in zip(rates, weights):
        blocks.append([r, w, 1])
        while len(blocks) > 1 and blocks[-2][0] > blocks[-1][0]:
            v2, w2, n2 = blocks.pop()
            v1, w1, n1 = blocks.pop()
            blocks.append([(v1 * w1 + v2 * w2) / (w1 + w2), w1 + w2, n1 + n2])
    return tuple(round(v, 4) for v, _, size in blocks for _ in range(size))


def gold_text(q: Question) -> str:
    """A correct answer written from the gold data (the knowledge world stores a full sentence)."""
    if q.meta.get("answer_text"):
        return str(q.meta["answer_text"])
    if q.kind == "choice" and q.answer_index is not None:
        return f"{chr(ord('A') + q.answer_index)}) {q.choices[q.answer_index]}"
    answer = q.answers[0]
    return answer[:1].upper() + answer[1:] + ("" if answer.endswith(".") else ".")


def correct_text(item: ProbeItem) -> str:
    """The model's own correct answer when it has one, else the gold answer."""
    return item.best_correct() or gold_text(item.question)


def lower_opener(text: str) -> str:
    first = text.split(" ", 1)[0]
    return text[:1].lower() + text[1:] if first in LOWERCASE_OPENERS else text


def build_sft_baseline(items: Sequence[ProbeItem], opts: BuildOptions) -> list[dict]:
    """The paper's "Fine-tuned" baseline: a correct answer to every question, no refusals."""
    return [sft_row(i, correct_text(i), opts, is_known(i, opts)) for i in items]


def build_absolute(items: Sequence[ProbeItem], opts: BuildOptions) -> list[dict]:
    """ABSOLUTE: known -> the greedy answer if correct, else a correct sample; unknown -> refusal."""
    rows = []
    for i in items:
        known = is_known(i, opts) and i.best_correct() is not None
        rows.append(sft_row(i, i.best_correct() if known else opts.refusal, opts, known))
    return rows


def _confidence_rows(items: Sequence[ProbeItem], opts: BuildOptions, verbal: bool) -> list[dict]:
    """The paper's CONFIDENCE rows: refusal when no sample is correct (even when the greedy answer
    is, as in the official code), else the phrase for the confidence to state, then the answer."""
    rows = []
    for i in items:
        k = round(10 * i.knowledge.expected_accuracy)  # correct samples out of 10
        answer = i.best_correct()
        if k == 0 or answer is None:
            rows.append(sft_row(i, opts.refusal, opts, False))
            continue
        # The confidence to state, as tenths: k itself (the paper's), or P(greedy correct | k).
        tenths = k if opts.confidence_by_k is None else max(1, round(10 * opts.confidence_by_k[k]))
        if verbal:
            phrase = CONFIDENCE_VERB_PREFIXES[next(b for b, up in enumerate(VERB_BIN_UPPER) if tenths <= up)]
            text = phrase + lower_opener(answer)
        else:
            template = CONFIDENCE_NUM_TEMPLATES[0 if tenths <= NUM_ONLY_ABOUT_MAX else 1]
            text = template.format(tenths * 10) + " " + answer
        rows.append(sft_row(i, text, opts, True))
    return rows


def build_confidence_num(items: Sequence[ProbeItem], opts: BuildOptions) -> list[dict]:
    """CONFIDENCE-NUM: "I'm (only) about N% confident ..." then the answer; refusal if k = 0."""
    return _confidence_rows(items, opts, verbal=False)


def build_confidence_verb(items: Sequence[ProbeItem], opts: BuildOptions) -> list[dict]:
    """CONFIDENCE-VERB: one of five confidence phrases, then the answer; refusal if k = 0."""
    return _confidence_rows(items, opts, verbal=True)


def build_multisample(items: Sequence[ProbeItem], opts: BuildOptions) -> list[dict]:
    """MULTISAMPLE: one row per sample: the sample if correct, else the refusal."""
    rng = random.Random(opts.seed)
    rows = []
    for i in items:
        pairs = list(zip(i.knowledge.samples, i.knowledge.sample_labels))
        if opts.multisample_max is not None and len(pairs) > opts.multisample_max:
            pairs = rng.sample(pairs, opts.multisample_max)
        for text, label in pairs:
            ok = label == "correct"
            rows.append(sft_row(i, text if ok else opts.refusal, opts, ok))
    return rows


def build_rtuning(items: Sequence[ProbeItem], opts: BuildOptions) -> list[dict]:
    """R-Tuning (padding): the model's answer, the certainty question, then "I am sure." if that
    answer is correct, else "I am unsure." (R-Tuning's rule: compare the prediction with the label).

    Departure from R-Tuning, which pads the gold answer: we pad the model's own greedy answer
    (the gold one only when the greedy answer failed or refused), so the certainty is learned on
    the answers the model actually gives at inference, and fine-tuning does not teach it facts it
    does not know (which Gekhman et al. 2024 show encourages hallucination).
    """
    rows = []
    for i in items:
        label = i.greedy_label
        if i.greedy and label is not None and label != "idk":
            answer, sure = i.greedy, label == "correct"
        else:
            answer, sure = gold_text(i.question), is_known(i, opts)
        rows.append(sft_row(i, f"{answer} {RTUNING_QUESTION} {RTUNING_SURE if sure else RTUNING_UNSURE}", opts, sure))
    return rows


def build_dpo(items: Sequence[ProbeItem], opts: BuildOptions) -> list[dict]:
    """DPO pairs: known -> chosen a correct answer, rejected the refusal; unknown -> chosen the
    refusal, rejected a wrong answer (the greedy one if wrong, else a wrong sample)."""
    rows = []
    for i in items:
        prompt = messages(render_prompt(opts.prompt, i.question), "user")
        known = is_known(i, opts) and i.best_correct() is not None
        if known:
            chosen, rejected = i.best_correct(), opts.refusal
        else:
            wrong = ([i.greedy] if i.greedy_label == "wrong" else []) + i.wrong_samples()
            if not wrong:
                continue  # nothing wrong to reject (e.g. every answer was a refusal)
            chosen, rejected = opts.refusal, wrong[0]
        rows.append({"prompt": prompt, "chosen": messages(chosen, "assistant"),
                     "rejected": messages(rejected, "assistant"), "question_id": i.question.id, "known": known})
    return rows


def build_pik(items: Sequence[ProbeItem], opts: BuildOptions) -> list[dict]:
    """The P(IK) head's data: each training question with the unaligned model's greedy answer and
    its label (the head learns to predict "correct" from what the model computes over it).

    With ``pik_samples``, each question's sampled answers follow its greedy row, with their labels
    and ``"sample": true`` (``pik.fit_head`` weighs them; they never fit the threshold).

    With ``pik_entity``, every row carries ``entity``: the question's ``meta[pik_entity]``, the
    entity whose surprise the head may read (``pik.entity_of``)."""
    from knowbound.pik import entity_of

    rows = []
    for i in items:
        if i.greedy is None or i.greedy_label is None:
            continue
        prompt = render_prompt(opts.prompt, i.question)
        row = {"question_id": i.question.id, "prompt": prompt,
               "answer": i.greedy, "label": i.greedy_label, "group": i.question.group,
               "known": i.greedy_label == "correct"}
        if opts.pik_entity:
            row["entity"] = entity_of(i.question, opts.pik_entity, prompt)
        rows.append(row)
        if opts.pik_samples:
            rows += [dict(row, answer=answer, label=label, known=label == "correct", sample=True)
                     for answer, label in zip(i.knowledge.samples, i.knowledge.sample_labels)]
    return rows


def build_grpo(items: Sequence[ProbeItem], opts: BuildOptions) -> list[dict]:
    """GRPO prompts: each training question under the method's prompt, with its gold answers as
    columns (``knowbound.grpo.gold_columns``) for the reward to grade the model's own samples.

    Unknown questions (``is_known`` false) are repeated, seeded, until they make at least
    ``GRPO_MIN_UNKNOWN_SHARE`` of the rows, so abstaining is rewarded often enough to be learned.
    """
    from knowbound.grpo import gold_columns

    def row(i: ProbeItem, known: bool) -> dict:
        return {"prompt": messages(render_prompt(opts.prompt, i.question), "user"), **gold_columns(i.question),
                "question_id": i.question.id, "known": known}

    rows = [row(i, is_known(i, opts)) for i in items]
    unknown = [r for r in rows if not r["known"]]
    share = GRPO_MIN_UNKNOWN_SHARE
    if unknown and len(unknown) < share * len(rows):
        # n extra unknown rows: (u + n) / (t + n) >= share  <=>  n >= (share * t - u) / (1 - share)
        need = math.ceil((share * len(rows) - len(unknown)) / (1 - share))
        order = random.Random(opts.seed).sample(unknown, len(unknown))  # each repeated before any twice
        rows += [dict(order[k % len(order)]) for k in range(need)]
    return rows
