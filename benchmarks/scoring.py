"""Benchmark: score 1,000,000 predictions against a reference, knowbound vs a per-row baseline.

The data come from ``knowbound.examples`` (correct and wrong answers, refusals, the paper's hedges,
numeric confidences, some choice questions), written to JSONL in a temporary directory. knowbound
runs exactly what ``knowbound score PRED --reference REF`` runs (``scoring.score_files``, default
scoring, 1,000 bootstrap resamples, the reference graded in a second process); it is also run in
paper mode, whose numbers must equal the baseline's. The baseline is a straightforward per-row loop
in the style of the official Alignment-for-Honesty evaluation (``json.loads`` per line, then the
paper's normalisation, keyword refusal rule and has-match from
``knowbound.testing.reference_rules``, counters for the metrics; no intervals, no calibration); it
runs on ``--baseline-rows`` rows and its time is scaled to the full size.

    .venv/bin/python benchmarks/scoring.py [--rows 1000000] [--baseline-rows 200000]

The last line is JSON with the headline figures.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

from knowbound.examples import example_rows
from knowbound.io import write_jsonl
from knowbound import scoring
from knowbound.scoring import score_files
from knowbound.testing.reference_rules import plain_label, plain_metrics


# --- the baseline: the paper's rules, one row at a time (knowbound.testing.reference_rules) -----

def baseline(pred_path: Path, ref_path: Path, limit: int) -> dict:
    """Paper-mode metrics of the first ``limit`` rows, one Python loop over dicts."""
    def rows(path):
        with open(path) as fh:
            for i, line in enumerate(fh):
                if i >= limit:
                    break
                yield json.loads(line)

    reference = {row["question_id"]: plain_label(row)[0] for row in rows(ref_path)}
    return plain_metrics(rows(pred_path), reference)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--baseline-rows", type=int, default=200_000)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    keys = ("accuracy", "correct", "wrong", "idk", "over_conservativeness", "prudence", "honesty")

    with tempfile.TemporaryDirectory() as tmp:
        t = time.perf_counter()
        predictions, reference = example_rows(args.rows, args.seed)
        pred_path, ref_path = Path(tmp, "predictions.jsonl"), Path(tmp, "reference.jsonl")
        write_jsonl(pred_path, predictions)
        write_jsonl(ref_path, reference)
        ref_bytes = ref_path.stat().st_size
        del predictions, reference
        print(f"generated {args.rows:,} prediction rows + reference in {time.perf_counter() - t:.1f} s")

        # Wall time is the headline; CPU time of this process shows what a busy machine hides.
        t, c = time.perf_counter(), time.process_time()
        ours = score_files(pred_path, ref_path, "default", workers=2)  # with a second process (--workers 2)
        seconds, cpu = time.perf_counter() - t, time.process_time() - c
        t, c = time.perf_counter(), time.process_time()
        ours_one = score_files(pred_path, ref_path, "default", workers=1)  # one process: what `knowbound score` runs
        seconds_one, cpu_one = time.perf_counter() - t, time.process_time() - c
        t, c = time.perf_counter(), time.process_time()
        ours_paper = score_files(pred_path, ref_path, "paper", workers=2)
        seconds_paper, cpu_paper = time.perf_counter() - t, time.process_time() - c

        b_rows = min(args.baseline_rows, args.rows)
        t, c = time.perf_counter(), time.process_time()
        base = baseline(pred_path, ref_path, b_rows)
        b_seconds, b_cpu = time.perf_counter() - t, time.process_time() - c
        check = score_files(pred_path, ref_path, "paper", n_bootstrap=0) if b_rows == args.rows else None
    if check is None:
        # Same rows as the baseline saw: rescore its prefix.
        with tempfile.TemporaryDirectory() as tmp:
            predictions, reference = example_rows(b_rows, args.seed)
            write_jsonl(Path(tmp, "p.jsonl"), predictions)
            write_jsonl(Path(tmp, "r.jsonl"), reference)
            check = score_files(Path(tmp, "p.jsonl"), Path(tmp, "r.jsonl"), "paper", n_bootstrap=0)
    agree = all(round(check[k], 10) == round(base[k], 10) for k in keys)
    b_full = b_seconds * args.rows / b_rows

    cols = [("default", seconds, cpu, args.rows, ours), ("default", seconds_one, cpu_one, args.rows, ours_one),
            ("paper", seconds_paper, cpu_paper, args.rows, ours_paper), ("(paper)", b_seconds, b_cpu, b_rows, base)]
    print(f"\n{'':28s}" + "".join(f"{h:>13s}" for h in ("knowbound", "knowbound", "knowbound", "baseline")))
    print(f"{'':28s}" + "".join(f"{c[0]:>13s}" for c in cols))
    # score_files uses the second process only for a reference file of _WORKER_MIN_BYTES or more.
    procs = 2 if ref_bytes >= scoring._WORKER_MIN_BYTES else 1
    print(f"{'processes':28s}" + "".join(f"{p:>13d}" for p in (procs, 1, procs, 1)))
    print(f"{'rows':28s}" + "".join(f"{c[3]:>13,}" for c in cols))
    print(f"{'seconds':28s}" + "".join(f"{c[1]:>13.1f}" for c in cols))
    print(f"{'CPU seconds (this process)':28s}" + "".join(f"{c[2]:>13.1f}" for c in cols))
    print(f"{'seconds per 1M rows':28s}" + "".join(f"{c[1] * 1e6 / c[3]:>13.1f}" for c in cols))
    print(f"{'bootstrap CIs / calibration':28s}" + "".join(f"{v:>13s}" for v in ("yes", "yes", "yes", "no")))
    for k in keys:
        print(f"{k:28s}" + "".join(f"{c[4][k]:>13.4f}" for c in cols))
    assert ours_one == ours, "one and two processes must give the same result"
    print(f"paper mode equals the baseline on its {b_rows:,} rows: {agree}")
    print(json.dumps({"rows": args.rows, "seconds": round(seconds, 2), "cpu_seconds": round(cpu, 2),
                      "seconds_one_process": round(seconds_one, 2),
                      "seconds_paper": round(seconds_paper, 2), "cpu_seconds_paper": round(cpu_paper, 2),
                      "baseline_rows": b_rows, "baseline_seconds": round(b_seconds, 2),
                      "baseline_cpu_seconds": round(b_cpu, 2),
                      "baseline_seconds_scaled": round(b_full, 1), "speedup": round(b_full / seconds, 1),
                      "paper_agrees_with_baseline": agree}))


if __name__ == "__main__":
    main()
