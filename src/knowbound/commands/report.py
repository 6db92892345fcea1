"""``knowbound report RUN_DIR|CONFIG``: write report.html and report.md for a run."""

from __future__ import annotations

import argparse
from pathlib import Path


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("target", metavar="RUN_DIR|CONFIG",
                        help="a run directory (see docs/run-directory.md), or a run config: the loop up to the report")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="with a config: override a config value (repeatable)")
    parser.add_argument("--name", help="with a config: the run name")


def run(args: argparse.Namespace) -> int:
    from knowbound.output import message

    if Path(args.target).is_file():  # a config: the loop up to the report
        from knowbound.commands.stage import run_until

        run_dir = run_until(argparse.Namespace(config=args.target, overrides=args.overrides, name=args.name,
                                               json=False),
                            "report").run_dir
        html_path, md_path = run_dir / "report.html", run_dir / "report.md"
    else:
        from knowbound.api import write_report

        html_path, md_path = write_report(args.target)
    message(f"wrote {html_path}")
    message(f"wrote {md_path}")
    return 0
