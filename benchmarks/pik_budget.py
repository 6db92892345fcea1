"""Analysis: how far the P(IK) head's ranking can go within the accuracy budget on an eval set.

On a finished run with a ``pik`` method, it reads the head's predictions on ``--set`` (default
``test``: P(IK) of each unaligned greedy answer) and the unaligned model's correctness, and prints:

* the run's own operating point: answers withheld, right answers among them, honesty;
* the best honesty any threshold on P(IK) reaches while withholding at most the budget's right
  answers (``eval.max_accuracy_drop`` of the set's questions), fitted on the set's own labels: an
  analysis of the ranking, not a method (the run fits its threshold on ``train``);
* where the right answers just past the budget sit in P(IK), and how many wrong answers lie
  between them: the refusals one more withheld right answer buys.

It needs no model: only the run's prediction files. The last line is JSON.

    .venv/bin/python benchmarks/pik_budget.py runs/smollm2-facts [--set test] [--method pik]
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path


def main() -> None:
    from knowbound.baselines import fit_threshold
    from knowbound.config import load_config
    from knowbound.io import read_jsonl
    from knowbound.metrics.honesty import honesty_metrics

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("run_dir")
    parser.add_argument("--set", default="test")
    parser.add_argument("--method", default="pik")
    args = parser.parse_args()
    run = Path(args.run_dir)
    cfg = load_config(run / "config.yaml")
    rows = read_jsonl(run / "predictions" / args.method / f"{args.set}.jsonl")
    base = {r["id"]: r for r in read_jsonl(run / "predictions" / "unaligned" / f"{args.set}.jsonl")}
    reference = [base[r["id"]]["label"] for r in rows]
    right = sum(bool(base[r["id"]]["correct"]) for r in rows)
    allowed = math.floor(cfg.eval.max_accuracy_drop * len(rows) + 1e-9)
    refused = [r for r in rows if r["label"] == "idk"]
    run_right = sum(bool(base[r["id"]]["correct"]) for r in refused)
    run_honesty = honesty_metrics(reference, [r["label"] for r in rows])["honesty"]
    # The run's own threshold search, fitted on this set's labels instead of train's.
    scores = [r["confidence"] for r in rows]
    best = fit_threshold(scores, reference, max_accuracy_drop=cfg.eval.max_accuracy_drop)
    best_withheld = sum(s < best.threshold for s in scores)
    rights = sorted(s for s, r in zip(scores, rows) if base[r["id"]]["correct"])
    edge = rights[allowed:allowed + 2]
    between = sum(1 for s, r in zip(scores, rows)
                  if not base[r["id"]]["correct"] and len(edge) == 2 and edge[0] < s < edge[1])
    print(f"{args.method} on {args.set}: {len(rows)} questions, {right} right and {len(rows) - right} wrong "
          f"unaligned answers; budget {cfg.eval.max_accuracy_drop:.0%} = {allowed} right answers")
    print(f"  the run's threshold: {len(refused)} withheld, {run_right} of them right, honesty {run_honesty:.3f}")
    print(f"  best threshold fitted on {args.set} within the budget: {best_withheld} withheld, "
          f"honesty {best.honesty:.3f}")
    if len(edge) == 2:
        print(f"  right answer {allowed + 1} from the bottom at P(IK) {edge[0]:.3f}, {allowed + 2} at {edge[1]:.3f}, "
              f"{between} wrong answers between them")
    print(json.dumps({"run": run.name, "set": args.set, "method": args.method, "questions": len(rows),
                      "allowed_withheld": allowed, "run_withheld": len(refused), "run_withheld_right": run_right,
                      "run_honesty": round(run_honesty, 4), "best_honesty_within_budget": round(best.honesty, 4),
                      "best_withheld": best_withheld, "wrong_between_next_two_right": between}))


if __name__ == "__main__":
    main()
