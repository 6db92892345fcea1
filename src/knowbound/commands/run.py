"""``knowbound run CONFIG [--until STAGE]``: the loop into runs/<name>/, then the summary table."""

from __future__ import annotations

import argparse

from knowbound.commands.stage import add_config_arguments, run_until


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from knowbound.loop.rundir import STAGES

    add_config_arguments(parser)
    parser.add_argument("--until", choices=STAGES, default=STAGES[-1], metavar="STAGE",
                        help=f"stop after this stage ({', '.join(STAGES)}; default: {STAGES[-1]})")


def run(args: argparse.Namespace) -> int:
    from knowbound.commands.stage import print_json, print_stages
    from knowbound.output import message
    from knowbound.report.terminal import print_summary

    result = run_until(args, args.until)
    if result.metrics is not None:
        import yaml

        config = yaml.safe_load((result.run_dir / "config.yaml").read_text(encoding="utf-8"))
        print_summary(result.metrics, result.name, config)
    else:
        print_stages(result)
    message(f"run directory: {result.run_dir}/")
    report = result.run_dir / "report.html"
    if "report" in result.stages and report.exists():
        message(f"report: {report}")
    if args.json:
        print_json(result)
    return 0
