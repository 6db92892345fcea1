"""The loop of "Alignment for Honesty" as stages over a run directory (docs/run-directory.md).

questions -> probe -> label -> build (per method) -> train (per method) -> eval (per model and
set) -> metrics -> report. Each stage is the module ``knowbound.loop.<stage>``: it declares what
its outputs read (``outputs(rundir)``) and runs on its own on a prepared run directory
(``run(rundir) -> StageResult``). ``knowbound.loop.rundir`` holds the run directory, its manifest,
the digests and skip-and-resume.
"""

from __future__ import annotations

from knowbound.config import RunConfig
from knowbound.errors import KnowboundError
from knowbound.loop.rundir import STAGES, Log, RunDir, StageResult, open_run, prepare, stage_module

__all__ = ["STAGES", "RunDir", "StageResult", "open_run", "prepare", "run_loop", "run_stages", "stage_module"]


def run_stages(run: RunDir, until: str = "report") -> dict[str, StageResult]:
    """Every stage of a prepared run up to and including ``until``; finished outputs are skipped."""
    if until not in STAGES:
        raise KnowboundError(f"unknown stage '{until}' (known: {', '.join(STAGES)})")
    return {stage: stage_module(stage).run(run) for stage in STAGES[: STAGES.index(until) + 1]}


def run_loop(cfg: RunConfig, until: str = "report", log: Log = print) -> RunDir:
    """Prepare the run directory of ``cfg`` and run every stage up to and including ``until``."""
    from knowbound.methods import get_method

    if until not in STAGES:
        raise KnowboundError(f"unknown stage '{until}' (known: {', '.join(STAGES)})")
    for name in cfg.methods:
        get_method(name)  # fail fast on a typo, before building a world
    run = prepare(cfg, log)
    run.results = run_stages(run, until)
    return run
