"""Shared arguments of the loop's commands (run, probe, build, train, eval)."""

from __future__ import annotations

import argparse


def add_config_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("config", help="run config (YAML), e.g. configs/demo.yaml")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="override a config value, e.g. --set probe.m=5 (repeatable)")
    parser.add_argument("--name", help="run name (default: the config's)")


def run_until(args: argparse.Namespace, until: str):
    """Load the config and run the loop up to ``until``; returns the Run."""
    from knowbound.config import load_config
    from knowbound.pipeline import run_loop

    overrides = list(args.overrides) + ([f"name={args.name}"] if args.name else [])
    cfg = load_config(args.config, overrides)
    return run_loop(cfg, until=until)


def stage_command(until: str):
    """``(add_arguments, run)`` of a command that runs the loop up to ``until``."""

    def add_arguments(parser: argparse.ArgumentParser) -> None:
        add_config_arguments(parser)

    def run(args: argparse.Namespace) -> int:
        print(f"run directory: {run_until(args, until).dir}")
        return 0

    return add_arguments, run
