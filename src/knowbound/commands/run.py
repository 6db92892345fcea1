"""`knowbound run CONFIG`: the whole loop into runs/<name>/, then the summary table."""

from __future__ import annotations

import argparse

from knowbound.commands._loop import add_config_arguments, run_until

HELP = "run the whole loop from one config file"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_config_arguments(parser)


def run(args: argparse.Namespace) -> int:
    import json

    from knowbound.summary import print_summary

    run = run_until(args, "report")
    metrics = json.loads((run.dir / "metrics.json").read_text())
    print_summary(metrics, run.cfg)
    print(f"run directory: {run.dir}/")
    report = run.dir / "report.html"
    if report.exists():
        print(f"report: {report}")
    return 0
