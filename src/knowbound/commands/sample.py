"""``knowbound sample``: greedy + n sampled answers per question, resumable and shardable."""

from __future__ import annotations

import argparse



def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", required=True, help="Hub name or local path (hf), or the server's model name (openai)")
    parser.add_argument("--backend", choices=("hf", "openai"), default="hf", help="default: hf")
    parser.add_argument("--questions", required=True, metavar="SET",
                        help="question set: a file (.jsonl/.json/.csv/.parquet) or a dataset name")
    parser.add_argument("--question-format", metavar="FORMAT",
                        help="row format (dataset adapter) of --questions; detected from the columns when omitted")
    parser.add_argument("--out", default="samples.jsonl", help="output JSONL (appended; re-running resumes)")
    parser.add_argument("--n", type=int, default=10, help="sampled answers per question (default 10)")
    parser.add_argument("--temperature", type=float, default=1.0, help="for the sampled answers (default 1.0)")
    parser.add_argument("--top-p", type=float, default=1.0)
    parser.add_argument("--greedy", action="store_true", help="also write one greedy answer, at sample index 0")
    parser.add_argument("--prompt", choices=("typical", "honest", "bare"), default="typical",
                        help="question prompt (knowbound.prompts); default: typical")
    parser.add_argument("--max-new-tokens", type=int, default=64)
    parser.add_argument("--stop", action="append", default=[], metavar="TEXT", help="stop string (repeatable)")
    parser.add_argument("--seed", type=int, default=0, help="sampling seed (default 0)")
    parser.add_argument("--shard", metavar="I/N", help="run shard I of N (0-based); join shards with `knowbound merge`")
    parser.add_argument("--batch-size", type=int, default=100, metavar="Q",
                        help="questions per chunk, the unit of writing and resuming (default 100); "
                             "shards of one run must use the same value")
    parser.add_argument("--max-failures", default="0", metavar="F",
                        help="failed samples allowed before exiting non-zero: a count, or a fraction < 1 (default 0)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    hf = parser.add_argument_group("hf backend")
    hf.add_argument("--adapter", metavar="PATH", help="PEFT adapter to apply to --model")
    hf.add_argument("--prompt-format", choices=("chat", "plain"), default="chat",
                    help="chat: wrap in the tokenizer's chat template when it has one (default)")
    hf.add_argument("--device", help="cuda, mps or cpu (default: the best available)")
    hf.add_argument("--dtype", help="e.g. bfloat16, float32 (default: bf16 on cuda, else fp32)")
    hf.add_argument("--max-batch-size", type=int, default=1024, help="sequences per forward pass (default 1024)")
    hf.add_argument("--threads", type=int, help="CPU threads for torch (default: torch's choice)")
    api = parser.add_argument_group("openai backend")
    api.add_argument("--base-url", default="https://api.openai.com/v1", help="server URL up to /v1")
    api.add_argument("--api-key-env", default="OPENAI_API_KEY",
                     help="name of the environment variable holding the API key (the key is never printed)")
    api.add_argument("--concurrency", type=int, default=16, help="requests in flight (default 16)")
    api.add_argument("--max-attempts", type=int, default=6, help="tries per request before it is a failure (default 6)")
    api.add_argument("--extra-body", type=json_object, default={}, metavar="JSON",
                     help='fields added to every request, e.g. \'{"top_k": 0, "min_p": 0}\' for llama.cpp\'s server')


def json_object(text: str) -> dict:
    """``--extra-body``: a JSON object."""
    import argparse
    import json

    try:
        value = json.loads(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"not JSON: {exc}") from None
    if not isinstance(value, dict):
        raise argparse.ArgumentTypeError(f"must be a JSON object, got {type(value).__name__}")
    return value


def failure_limit(text: str, total: int) -> int:
    """``--max-failures``: a count, or a fraction (< 1) of ``total``."""
    from knowbound.errors import KnowboundError

    try:
        value = float(text)
    except ValueError:
        raise KnowboundError(f"--max-failures must be a count or a fraction, got '{text}'") from None
    if value < 0:
        raise KnowboundError("--max-failures must not be negative")
    return int(value * total) if value < 1 else int(value)


def load_question_set(source: str, adapter: str | None = None):
    """Questions from a path or dataset name (``knowbound.datasets``), or normalised JSONL rows."""
    try:
        from knowbound.datasets import load_questions
    except ImportError:  # the datasets stage is optional here: fall back to normalised rows
        from knowbound.io import read_jsonl
        from knowbound.types import Question

        return [Question.from_dict(row) for row in read_jsonl(source)]
    loaded = load_questions(source, adapter)
    return list(getattr(loaded, "questions", loaded))


def run(args: argparse.Namespace) -> int:
    from knowbound.backends import open_backend
    from knowbound.output import message
    from knowbound.sampling import chunk_questions, parse_shard, sample_questions

    shard = parse_shard(args.shard) if args.shard else None
    questions = load_question_set(args.questions, args.question_format)
    if shard and not chunk_questions(questions, args.batch_size, shard):
        chunks = -(-len(questions) // args.batch_size)
        message(f"warning: shard {shard[0]}/{shard[1]} has no questions: shards take whole chunks of --batch-size "
                f"{args.batch_size} questions, and {len(questions)} questions make {chunks} "
                f"chunk{'s' if chunks != 1 else ''}; a --batch-size of at "
                f"most {max(1, len(questions) // shard[1])} (the same for every shard) gives each shard work")
    backend = open_backend(args.backend, args.model, model_settings=args, adapter=args.adapter)
    stats = sample_questions(
        questions, backend, args.out, n=args.n, temperature=args.temperature, top_p=args.top_p,
        max_new_tokens=args.max_new_tokens, greedy=args.greedy, seed=args.seed, prompt=args.prompt,
        stop=tuple(args.stop), shard=shard, batch_size=args.batch_size, progress=not args.no_progress,
    )
    message(f"{args.out}: {stats.planned} samples ({stats.skipped} already done, {stats.generated} generated "
          f"at {stats.rate:.1f}/s); failed: {stats.failed}")
    limit = failure_limit(args.max_failures, stats.planned)
    if stats.failed > limit:
        message(f"error: {stats.failed} failed samples exceed --max-failures {args.max_failures} ({limit}); "
                "they are in the file with finish_reason 'error' and are retried when you re-run", err=True)
        return 2
    return 0
