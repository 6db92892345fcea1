"""The ``knowbound`` command: parse, call library functions, print. No logic lives here.

Each subcommand is a module of ``knowbound.commands`` with ``add_arguments(parser)`` and
``run(args) -> int``; every stage of the loop shares ``commands.stage``. Only the chosen
subcommand's module is imported, so ``--help`` is instant.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import sys

from knowbound import __version__
from knowbound.errors import KnowboundError
from knowbound.output import message

# name -> (module, one-line help). Order is the order of `knowbound --help`.
COMMANDS: dict[str, tuple[str, str]] = {
    "score": ("knowbound.commands.score", "score predictions: honesty, accuracy and calibration"),
    "data": ("knowbound.commands.data", "inspect question sets (`data show NAME_OR_PATH`)"),
    "sample": ("knowbound.commands.sample", "sample answers from a model (resumable, shardable)"),
    "merge": ("knowbound.commands.merge", "join sample shards into one file"),
    "world": ("knowbound.commands.world", "build the offline knowledge world (`world build`)"),
    "run": ("knowbound.commands.run", "run the whole loop from one config file (or --until a stage)"),
    # The loop up to one stage (earlier stages run if missing); the stage is the command's name.
    "questions": ("knowbound.commands.stage", "loop up to here: load and normalise every question set"),
    "probe": ("knowbound.commands.stage", "loop up to here: sample the unaligned model's answers"),
    "label": ("knowbound.commands.stage", "loop up to here: grade the probe, estimate knowledge"),
    "build": ("knowbound.commands.stage", "loop up to here: honesty training data per method"),
    "train": ("knowbound.commands.stage", "loop up to here: fine-tune a model per method"),
    "eval": ("knowbound.commands.stage", "loop up to here: answer the eval sets with every model"),
    "metrics": ("knowbound.commands.stage", "loop up to here: metrics.json"),
    "report": ("knowbound.commands.report", "write report.html and report.md for a run (or a config)"),
}


def _available() -> dict[str, tuple[str, str]]:
    return {
        name: spec
        for name, spec in COMMANDS.items()
        if importlib.util.find_spec(spec[0]) is not None
    }


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The top-level parser; only ``command``'s module is imported to add its arguments."""
    parser = argparse.ArgumentParser(
        prog="knowbound",
        description="Teach a language model to say \"I don't know\" when it doesn't know.",
    )
    parser.add_argument("--version", action="version", version=f"knowbound {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, (module, help_text) in _available().items():
        p = sub.add_parser(name, help=help_text, description=help_text)
        if name == command:
            importlib.import_module(module).add_arguments(p)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    command = next((a for a in argv if not a.startswith("-")), None)
    if command not in COMMANDS:
        command = None
    parser = build_parser(command)
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 0
    module = importlib.import_module(COMMANDS[args.command][0])
    try:
        return int(module.run(args) or 0)
    except KnowboundError as exc:
        message(f"error: {exc}", err=True)
        return 1
    except KeyboardInterrupt:
        message("interrupted; re-run the same command to resume", err=True)
        return 130
