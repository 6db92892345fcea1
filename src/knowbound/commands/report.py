"""``knowbound report RUN_DIR``: write report.html and report.md for a run."""

from __future__ import annotations

import argparse

HELP = "write report.html and report.md for a run"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("run_dir", metavar="RUN_DIR", help="a run directory (see docs/run-directory.md)")


def run(args: argparse.Namespace) -> int:
    from knowbound.report import write_report

    html_path, md_path = write_report(args.run_dir)
    print(f"wrote {html_path}")
    print(f"wrote {md_path}")
    return 0
