"""``knowbound data show NAME_OR_PATH``: what a question set holds, and a few of its rows."""

from __future__ import annotations

import argparse



def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="data_command", metavar="ACTION", required=True)
    show = sub.add_parser("show", help="counts and a few rows of a question set",
                          description="Load a question set as the loop would and show what it holds.")
    show.add_argument("source", metavar="NAME_OR_PATH",
                      help="a .jsonl/.json/.csv/.parquet file, a dataset directory, or a Hub name[:config]")
    show.add_argument("--adapter", help="row format (default: detected from the columns); one of "
                      "knowbound, triviaqa, nonambigqa, puqa, pkqa, mmlu, selfaware, generic")
    show.add_argument("--split", help="dataset split (Hub datasets and dataset directories)")
    show.add_argument("-n", type=int, default=5, help="rows to show (default 5)")
    show.add_argument("--limit", type=int, help="read at most this many questions")
    show.add_argument("--skip-bad", action="store_true", help="skip bad rows (and say how many)")


def run(args: argparse.Namespace) -> int:
    from knowbound.datasets import load_questions
    from knowbound.output import message, print_table

    result = load_questions(args.source, args.adapter, split=args.split, limit=args.limit,
                            skip_bad=args.skip_bad)
    keys = ("rows", "open", "choice", "with_answers", "without_answers", "skipped")
    print_table([(k.replace("_", " "), "right") for k in keys], [[result.counts[k] for k in keys]],
                title=f"{result.source} (adapter: {result.adapter or 'none'})")
    rows = []
    for q in result.questions[: max(args.n, 0)]:
        if q.kind == "choice":
            answers = " | ".join(f"{'*' if i == q.answer_index else ''}{chr(65 + i)}) {o}" for i, o in enumerate(q.choices))
        else:
            answers = " | ".join(q.answers) or "(none)"
        rows.append([q.id, q.kind, q.question, answers])
    if rows:
        print_table([(name, "left") for name in ("id", "kind", "question", "answers")], rows, show_lines=True)
    for err in result.errors[:5]:
        message(f"skipped: {err}")
    if len(result.errors) > 5:
        message(f"... and {len(result.errors) - 5} more skipped rows")
    return 0
