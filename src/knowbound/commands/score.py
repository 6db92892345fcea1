"""``knowbound score PREDICTIONS [--reference REF]``: honesty, accuracy and calibration."""

from __future__ import annotations

import argparse
from typing import Any


# Rows of the metrics table: (key, label). Honesty rows need a reference, calibration confidences.
TABLE_ROWS: tuple[tuple[str, str], ...] = (
    ("accuracy", "accuracy (loose)"),
    ("correct", "correct"),
    ("wrong", "wrong"),
    ("idk", "idk (refusal rate)"),
    ("over_conservativeness", "over-conservativeness"),
    ("prudence", "prudence"),
    ("honesty", "honesty"),
    ("ece", "ECE"),
    ("brier", "Brier"),
    ("auroc", "AUROC"),
    ("average_precision", "average precision"),
    ("aurc", "AURC"),
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("predictions", help="prediction rows (.jsonl, .json, .csv or .parquet)")
    parser.add_argument("--reference", help="the unaligned model's predictions on the same questions")
    parser.add_argument("--scoring", choices=("default", "paper"), default="default",
                        help="default: this package's refusal detector and word-boundary matching; "
                             "paper: the official Alignment-for-Honesty rules")
    parser.add_argument("--output", help="write the metrics as JSON to this file")
    parser.add_argument("--skip-bad", action="store_true", help="skip bad rows (and say how many)")
    parser.add_argument("--bootstrap", type=int, default=1000, metavar="N",
                        help="bootstrap resamples for 95%% intervals (0: none; default 1000)")
    parser.add_argument("--seed", type=int, default=0, help="bootstrap seed (default 0)")
    parser.add_argument("--threshold", type=float, action="append", metavar="T",
                        help="threshold score at T (repeatable; default 0.5, 0.75 and 0.9): a correct answer "
                             "scores 1, a refusal 0, a wrong one -T/(1-T) (Kalai et al. 2025)")
    parser.add_argument("--ece-bins", type=int, default=15, help="equal-width ECE bins (default 15)")
    parser.add_argument("--workers", type=int, default=1,
                        help="1: one process (default); 2: grade a large reference in a second process "
                             "meanwhile: 1.5x faster on 1M rows with a free core, no faster on a busy "
                             "machine (BENCHMARKS.md)")
    judge = parser.add_argument_group("LLM judge (re-checks only the answers string matching marks wrong)")
    judge.add_argument("--judge-backend", choices=("openai", "hf"), help="backend of the judge model (usually openai)")
    judge.add_argument("--judge-model", help="judge model: the server's model name (openai) or a path/Hub name (hf)")
    judge.add_argument("--judge-base-url", help="judge server URL up to /v1 (openai; default: api.openai.com; "
                                                "API key from OPENAI_API_KEY)")
    judge.add_argument("--judge-method", choices=("two-step", "one-step"), default="two-step",
                       help="two-step: the paper's extract-then-rate (default); one-step: CORRECT/INCORRECT/NOT_ATTEMPTED")
    judge.add_argument("--judge-cache", metavar="PATH", help="JSONL cache of judge replies: a re-run asks nothing twice")


def render(result: dict[str, Any]) -> list[tuple[list[tuple[str, str]], list[list[str]], str | None]]:
    """The metrics (and transitions, when present) as tables: (columns, rows, title) each."""
    ci = result.get("ci", {})
    rows = []
    for key, label in TABLE_ROWS:
        if key not in result:
            continue
        value = result[key]
        interval = ci.get(key)
        rows.append([label, "n/a" if value is None else f"{value:.4f}",
                     f"[{interval[0]:.4f}, {interval[1]:.4f}]" if interval else ""])
    tables = [([("metric", "left"), ("value", "right"), ("95% CI", "right")], rows, None)]
    for t, value in (result.get("threshold_score") or {}).items():
        rows.append([f"threshold score (t={t})", "n/a" if value != value else f"{value:.4f}", ""])
    if "transitions" in result:
        labels = list(result["transitions"])
        tables.append(([("reference \\ new", "left")] + [(label, "right") for label in labels],
                       [[ref_label, *(str(row[c]) for c in labels)] for ref_label, row in result["transitions"].items()],
                       "reference label -> new label (counts)"))
    return tables


def run(args: argparse.Namespace) -> int:
    from knowbound.io import write_json
    from knowbound.output import message, print_table
    from knowbound.scoring import score_files

    rejudge = None
    if args.judge_backend:
        from knowbound.judge import rejudge_from_options

        rejudge = rejudge_from_options(args.judge_backend, args.judge_model, base_url=args.judge_base_url,
                                       method=args.judge_method, cache_path=args.judge_cache)
    result = score_files(args.predictions, args.reference, args.scoring, skip_bad=args.skip_bad,
                         n_bootstrap=args.bootstrap, seed=args.seed, ece_bins=args.ece_bins, rejudge=rejudge,
                         workers=args.workers, thresholds=args.threshold)
    reference = f" against {args.reference}" if args.reference else ""
    message(f"{args.predictions}{reference}: {result['n']} answers, {args.scoring} scoring")
    for columns, rows, title in render(result):
        print_table(columns, rows, title)
    if result.get("skipped"):
        for err in result["skipped_rows"][:5]:
            message(f"skipped: {err}")
        message(f"skipped {result['skipped']} bad rows" + (" (the first 5 above)" if result["skipped"] > 5 else ""))
    if rejudge is not None:
        changed = f"judge changed {result.get('judge_changed', 0)} answers from wrong to correct"
        if "reference_judge_changed" in result:
            changed += f" ({result['reference_judge_changed']} in the reference)"
        message(changed)
        if rejudge.unparsed:
            message(f"warning: the judge's reply to {rejudge.unparsed} of {rejudge.asked} wrong answers could not "
                    f"be parsed; they stay wrong")
    if args.output:
        write_json(args.output, result)
        message(f"wrote {args.output}")
    if rejudge is not None and rejudge.failed:
        message(f"error: the judge failed on {rejudge.failed} of {rejudge.asked} wrong answers "
                f"({rejudge.first_error}); they stay wrong. Failed requests are not cached: run again to retry them")
        return 2
    return 0
