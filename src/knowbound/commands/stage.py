"""``knowbound <stage> CONFIG``: the loop up to one stage (earlier stages run if missing)."""

from __future__ import annotations

import argparse


def add_config_arguments(parser: argparse.ArgumentParser) -> None:
    """The arguments every loop command takes: the config, overrides and the run name."""
    parser.add_argument("config", help="run config (YAML), e.g. configs/demo.yaml")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="override a config value, e.g. --set probe.m=5 (repeatable)")
    parser.add_argument("--name", help="run name (default: the config's)")
    parser.add_argument("--json", action="store_true",
                        help="end with one JSON line for scripts: the run directory and each stage's outputs")


def run_until(args: argparse.Namespace, until: str):
    """Load the config and run the loop up to ``until``; returns the ``knowbound.api.RunResult``."""
    from knowbound.api import run

    overrides = list(args.overrides) + ([f"name={args.name}"] if args.name else [])
    return run(args.config, overrides, until=until)


def print_stages(result) -> None:
    """One line per stage: what ran and what was already done."""
    from knowbound.output import message

    for stage, r in result.stages.items():
        message(f"{stage}: {len(r.ran)} done now, {len(r.skipped)} already done")


def print_json(result) -> None:
    """The result as one JSON line: run_dir, and per stage the outputs that ran and were skipped."""
    import json

    from knowbound.output import message

    stages = {s: {"ran": list(r.ran), "skipped": list(r.skipped)} for s, r in result.stages.items()}
    message(json.dumps({"run_dir": str(result.run_dir), "stages": stages}))


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_config_arguments(parser)


def run(args: argparse.Namespace) -> int:
    from knowbound.output import message

    result = run_until(args, args.command)
    print_stages(result)
    message(f"run directory: {result.run_dir}")
    if args.json:
        print_json(result)
    return 0
