"""How far adaptive probing can go on a model: the shipped stopping rule against an oracle and richer priors.

``probe.adaptive`` stops a question once its known/unknown label at tau is settled, for certain or
with posterior-predictive probability >= ``probe.confidence`` under a distribution of per-question
accuracy p fitted per greedy outcome (``knowbound.adaptive``). On a model where a greedy-wrong
question's single correct sample can land anywhere in samples 1..M, "unknown" can only be taken
late. This benchmark replays a finished *full* probe (greedy + M samples per training question,
graded here with the run's grading mode) and asks whether the shortfall is arithmetic or
information:

* **oracle**: the fewest samples that give the full probe's labels, for a rule that knew each
  question's M outcomes (a greedy-correct question draws none, a question with a correct sample
  stops at its first, one with none stops after one): the ceiling of any stopping rule;
* **the shipped rule**, replayed (priors per greedy outcome), against the same rule with priors
  fitted per group: per question kind (the meta field ``--group-field``: ``kind`` for GeoNames,
  ``attribute`` for the world), and per kind and half of the greedy answer's log-probability per
  word. Sample ratio (full / drawn) and known-label agreement with the full probe, for confidence
  0.99 / 0.98 and rounds of 1 / 2;
* **can a later hit be foreseen?** Among greedy-wrong questions whose first two samples are
  wrong, the share with a correct sample among the rest, and the AUROC of cheap features
  (the greedy answer's log-probability, per word; the two samples' mean log-probability; the
  number of distinct answers among the greedy and the two samples) against it.

Nothing is generated: the run's ``samples/train.jsonl`` is read. The last line is JSON, per run:
``oracle_ratio``, ``shipped`` (ratio, agreement at 0.98, rounds of 2), ``best_grouped`` (the best
grouped ratio with agreement >= 0.98) and the feature AUROCs.

    .venv/bin/python benchmarks/adaptive_limits.py runs/smollm2-facts runs/demo
"""

from __future__ import annotations

import argparse
import json
from collections import defaultdict
from pathlib import Path

import numpy as np

SETTINGS = [(0.99, 1), (0.99, 2), (0.98, 1), (0.98, 2)]
HEADLINE_SETTING = (0.98, 2)  # the config default: probe.confidence 0.98, probe.round_size 2


def load(run: Path) -> tuple[dict, dict, dict, dict, object]:
    """Questions, per-question graded outcomes (index -> correct), normalised answer texts and
    row log-probabilities of a full probe, and the run's config."""
    from knowbound.config import load_config
    from knowbound.grading import grade
    from knowbound.io import read_jsonl
    from knowbound.types import Question

    cfg = load_config(run / "config.yaml")
    questions = {r["id"]: Question.from_dict(r) for r in read_jsonl(run / "questions" / "train.jsonl")}
    graded: dict[str, dict[int, bool]] = defaultdict(dict)
    texts: dict[str, dict[int, str]] = defaultdict(dict)
    logprobs: dict[str, dict[int, float]] = defaultdict(dict)
    for row in read_jsonl(run / "samples" / "train.jsonl"):
        q = questions.get(row["question_id"])
        if q is None or row.get("finish_reason") == "error":
            continue
        i = int(row["sample_index"])
        graded[q.id][i] = grade(row["text"], q, cfg.grading).label == "correct"
        texts[q.id][i] = " ".join(row["text"].lower().split())
        logprobs[q.id][i] = float(row.get("logprob") or 0.0) / max(1, len(row["text"].split()))
    m = cfg.probe.m
    complete = {qid for qid, g in graded.items() if all(j in g for j in range(m + 1))}
    if len(complete) < len(questions):
        raise SystemExit(f"{run}: {len(questions) - len(complete)} questions lack the full probe's "
                         f"{m + 1} rows (an adaptive probe's run cannot be replayed here)")
    return questions, graded, texts, logprobs, cfg


def full_label(outcomes: dict[int, bool], m: int, tau: float, known_rule: str) -> bool:
    """The full probe's known label (ABSOLUTE's rule: a right greedy answer under the official
    rule, or k / M >= tau)."""
    k = sum(outcomes[j] for j in range(1, m + 1))
    return (known_rule == "official" and outcomes[0]) or k / m >= tau


def drawn_label(outcomes: dict[int, bool], n: int, tau: float, known_rule: str) -> bool:
    """The label the label stage gives from the greedy answer and the first n samples."""
    c = sum(outcomes[j] for j in range(1, n + 1))
    return (known_rule == "official" and outcomes[0]) or (n > 0 and c / n >= tau)


def oracle_samples(outcomes: dict[int, bool], m: int, known_rule: str) -> int:
    """What a rule that knew the M outcomes would draw (see the module docstring)."""
    if outcomes[0]:
        # official rule: the greedy answer settles it (and SliCK's HighlyKnown); the samples rule
        # still needs k / M >= tau, decided at the first hit at the earliest
        return 0 if known_rule == "official" else next((j for j in range(1, m + 1) if outcomes[j]), 1)
    return next((j for j in range(1, m + 1) if outcomes[j]), 1)


def replay(ids, graded, group_of, m, tau, known_rule, confidence, round_size) -> tuple[float, float]:
    """The adaptive plan (``knowbound.adaptive``'s rounds and ``settled``), with one prior fitted
    per (greedy outcome, group) after each round; returns (sample ratio, label agreement)."""
    from knowbound.adaptive import fit_prior, needed_thresholds, settled

    drawn = {i: 0 for i in ids}
    open_ = set(ids)
    while open_:
        counts = defaultdict(list)
        for i in ids:
            counts[(graded[i][0], group_of(i))].append((sum(graded[i][j] for j in range(1, drawn[i] + 1)), drawn[i]))
        priors = {g: fit_prior(c) for g, c in counts.items()}
        for i in sorted(open_):
            c = sum(graded[i][j] for j in range(1, drawn[i] + 1))
            how = settled(c, drawn[i], needed_thresholds(graded[i][0], m, tau, known_rule), m, tau,
                          priors[(graded[i][0], group_of(i))], confidence)
            if how is not None:
                open_.discard(i)
        for i in open_:
            drawn[i] = min(m, drawn[i] + round_size)
    total = sum(drawn.values())
    agree = np.mean([drawn_label(graded[i], drawn[i], tau, known_rule) == full_label(graded[i], m, tau, known_rule)
                     for i in ids])
    return (len(ids) * m / total if total else float("inf")), float(agree)


def foresight(ids, graded, texts, logprobs, m) -> dict:
    """Greedy-wrong questions with two wrong samples: the share hit later, and feature AUROCs."""
    from knowbound.metrics.calibration import auroc

    rows = [i for i in ids if not graded[i][0] and not graded[i][1] and not graded[i][2]]
    later = [any(graded[i][j] for j in range(3, m + 1)) for i in rows]
    features = {
        "greedy_logprob_per_word": [logprobs[i][0] for i in rows],
        "samples_logprob_per_word": [(logprobs[i][1] + logprobs[i][2]) / 2 for i in rows],
        "distinct_answers": [len({texts[i][0], texts[i][1], texts[i][2]}) for i in rows],
    }
    return {"questions": len(rows), "hit_later": round(float(np.mean(later)), 4) if rows else None,
            "auroc": {k: (None if (a := auroc(v, later)) is None else round(a, 3)) for k, v in features.items()}}


def measure(run: Path, group_field: str | None) -> dict:
    questions, graded, texts, logprobs, cfg = load(run)
    m, tau, rule = cfg.probe.m, cfg.build.tau, cfg.build.known_rule
    ids = sorted(questions)
    field = group_field or next((f for f in ("kind", "attribute") if f in questions[ids[0]].meta), None)
    kind = {i: questions[i].meta.get(field) if field else None for i in ids}
    median = float(np.median([logprobs[i][0] for i in ids]))
    groupings = {
        "greedy outcome (shipped)": lambda i: None,
        f"+ {field}": lambda i: kind[i],
        f"+ {field} + greedy log-prob half": lambda i: (kind[i], logprobs[i][0] > median),
    }
    oracle = len(ids) * m / max(1, sum(oracle_samples(graded[i], m, rule) for i in ids))
    print(f"\n{run}: {len(ids)} training questions, M = {m}, tau = {tau}, known rule {rule}, "
          f"greedy right {sum(graded[i][0] for i in ids)}")
    print(f"  oracle (knows every question's {m} outcomes): {oracle:.2f}x fewer samples, agreement 1.0000")
    print(f"  {'priors fitted per':<40} " + "  ".join(f"conf {c} round {r}".ljust(20) for c, r in SETTINGS))
    table = {}
    for name, group_of in groupings.items():
        cells = [replay(ids, graded, group_of, m, tau, rule, c, r) for c, r in SETTINGS]
        table[name] = cells
        print(f"  {name:<40} " + "  ".join(f"{x:.2f}x at {a:.4f}".ljust(20) for x, a in cells))
    shipped = table["greedy outcome (shipped)"][SETTINGS.index(HEADLINE_SETTING)]
    grouped = [(x, a, name, s) for name, cells in table.items() if name != "greedy outcome (shipped)"
               for (x, a), s in zip(cells, SETTINGS) if a >= 0.98]
    best = max(grouped, default=None)
    print(f"  ratio against the shipped rule at conf {HEADLINE_SETTING[0]}, rounds of {HEADLINE_SETTING[1]}: "
          f"oracle {oracle / shipped[0]:.2f}x" + (f", best grouped (agreement >= 0.98) {best[0] / shipped[0]:.2f}x"
                                                   if best else ""))
    fs = foresight(ids, graded, texts, logprobs, m)
    print(f"  greedy-wrong questions with samples 1-2 wrong: {fs['questions']}, of which a later sample is "
          f"right: {fs['hit_later']}; AUROC against it: " + ", ".join(f"{k} {v}" for k, v in fs["auroc"].items()))
    return {"questions": len(ids), "oracle_ratio": round(oracle, 3),
            "shipped": {"ratio": round(shipped[0], 3), "agreement": round(shipped[1], 4)},
            "best_grouped": None if best is None else {"ratio": round(best[0], 3), "agreement": round(best[1], 4),
                                                        "priors": best[2], "confidence": best[3][0],
                                                        "round_size": best[3][1]},
            "foresight": fs}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="+", help="finished runs with a full probe (probe.adaptive false)")
    parser.add_argument("--group-field", default=None,
                        help="the question meta field to group priors by (default: kind, else attribute)")
    args = parser.parse_args()
    summary = {str(run): measure(Path(run), args.group_field) for run in args.runs}
    print(json.dumps(summary, sort_keys=True))


if __name__ == "__main__":
    main()
