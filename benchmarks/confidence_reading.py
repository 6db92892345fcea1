"""Benchmark: what the CONFIDENCE models state against what their distribution over the phrases says.

On a finished run with ``confidence-num`` and/or ``confidence-verb``, for every answered question
of one eval set it scores the method's confidence phrases (the ten CONFIDENCE-NUM sentences, or
the five CONFIDENCE-VERB prefixes) and the refusal after the prompt (``logprobs_of``; hf backend),
and compares three readings of the confidence side by side:

* stated: the phrase the greedy answer starts with (the paper's reading, what the run's ECE uses);
* expected over the phrases: the mean of the phrases' values under the model's distribution,
  renormalised over the phrases (the refusal left out);
* expected with the refusal as 0: the same mean over all the options, the refusal counting as
  confidence 0 (the model's total probability of claiming to know, weighted by how much).

For each: the mean, ECE (15 bins, as the run) and AUROC against the greedy answer's correctness.
A reading with a low ECE and an AUROC near 0.5 is calibrated in the mean only: it says the same
for every question. The last line is JSON.

    .venv/bin/python benchmarks/confidence_reading.py runs/demo [--set test]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

METHODS = ("confidence-num", "confidence-verb")


def main() -> None:
    from knowbound.backends import open_backend
    from knowbound.config import load_config
    from knowbound.datasets import load_questions
    from knowbound.grading.confidence import CONFIDENCE_NUM_TEMPLATES, CONFIDENCE_VERB_PREFIXES, CONFIDENCE_VERB_VALUES
    from knowbound.io import read_jsonl
    from knowbound.methods import get_method
    from knowbound.methods.phrases import REFUSAL
    from knowbound.metrics.calibration import auroc, ece
    from knowbound.prompts import render_prompt

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("run_dir")
    parser.add_argument("--set", default="test", help="the eval set to measure on")
    args = parser.parse_args()
    run = Path(args.run_dir)
    cfg = load_config(run / "config.yaml")
    questions = {q.id: q for q in load_questions(str(run / "questions" / f"{args.set}.jsonl")).questions}
    phrases = {
        "confidence-num": ([CONFIDENCE_NUM_TEMPLATES[0 if t <= 5 else 1].format(10 * t) for t in range(1, 11)],
                           [t / 10 for t in range(1, 11)]),
        "confidence-verb": ([p.rstrip() for p in CONFIDENCE_VERB_PREFIXES], list(CONFIDENCE_VERB_VALUES)),
    }
    summary = {}
    for name in METHODS:
        if not (run / "models" / name).is_dir():
            continue
        rows = [r for r in read_jsonl(run / "predictions" / name / f"{args.set}.jsonl")
                if r.get("label") not in (None, "idk") and r.get("confidence") is not None]
        backend = open_backend("hf", str(run / "models" / name), model_settings=cfg.model)
        prompt = get_method(name).eval_prompt or cfg.prompt
        prompts = [render_prompt(prompt, questions[r["id"]]) for r in rows]
        options, values = phrases[name]
        scores = np.array(backend.logprobs_of(prompts, [options + [REFUSAL]] * len(prompts)))
        p = np.exp(scores - scores.max(1, keepdims=True))
        p /= p.sum(1, keepdims=True)
        y = np.array([r["label"] == "correct" for r in rows], dtype=np.float64)
        readings = {
            "stated": np.array([r["confidence"] for r in rows], dtype=np.float64),
            "expected over the phrases": (p[:, :-1] * values).sum(1) / p[:, :-1].sum(1),
            "expected, refusal as 0": (p[:, :-1] * values).sum(1),
        }
        print(f"\n{name} on {args.set}: {len(rows)} answers stating a confidence, accuracy {y.mean():.3f}, "
              f"mean P(refusal) {p[:, -1].mean():.3f}; stated values: "
              f"{dict(zip(*np.unique(readings['stated'], return_counts=True)))}")
        print(f"{'reading':28s} {'mean':>6s} {'ECE':>6s} {'(vs stated)':>11s} {'AUROC':>6s}")
        base = ece(readings["stated"], y, cfg.eval.ece_bins)
        out = {}
        for reading, c in readings.items():
            e, a = ece(c, y, cfg.eval.ece_bins), auroc(c, y)
            print(f"{reading:28s} {c.mean():6.3f} {e:6.3f} {e / base:10.2f}x {a:6.3f}")
            out[reading] = {"mean": round(float(c.mean()), 4), "ece": round(float(e), 4), "auroc": round(float(a), 4)}
        summary[name] = {"n": len(rows), "accuracy": round(float(y.mean()), 4), "readings": out}
    print(json.dumps({"run": run.name, "set": args.set, "methods": summary}))


if __name__ == "__main__":
    main()
