"""``knowbound merge OUT SHARD...``: join sample shards into one file."""

from __future__ import annotations

import argparse



def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("out", help="merged JSONL to write (atomically)")
    parser.add_argument("shards", nargs="+", metavar="SHARD", help="shard files written by `knowbound sample --shard`")
    parser.add_argument("--questions", metavar="SET",
                        help="the question set the shards came from: checks that no question is missing and "
                             "orders rows as an unsharded run would (recommended)")
    parser.add_argument("--question-format", metavar="FORMAT", help="row format of --questions")


def run(args: argparse.Namespace) -> int:
    from knowbound.commands.sample import load_question_set
    from knowbound.output import message
    from knowbound.sampling import merge_samples

    questions = load_question_set(args.questions, args.question_format) if args.questions else None
    rows, failed = merge_samples(args.out, args.shards, questions)
    message(f"{args.out}: {rows} rows from {len(args.shards)} shards; failed: {failed}")
    return 0
