"""The report stage: ``report.html`` and ``report.md`` from the run directory (``knowbound.report``)."""

from __future__ import annotations

from knowbound.loop.rundir import ConfigView, Output, RunDir, StageResult

NAME = "report"
# The report reads the run's files (config.yaml among them) and, of the config, the sets' roles.


def outputs(run: RunDir) -> list[Output]:
    """One output: the report's two files."""

    def work(view: ConfigView) -> None:
        from knowbound.report import write_report

        write_report(run.dir)

    reads = tuple(f"data.eval.{name}.role" for name in run.cfg.data.eval)
    return [Output("report", (run.dir / "report.html", run.dir / "report.md"), work, reads=reads,
                   after=("metrics", "label"))]


def run(rundir: RunDir) -> StageResult:
    """Write the report."""
    return rundir.run_stage(NAME, outputs(rundir))
