"""knowbound's Python API: the loop, the scorer and the building blocks a notebook needs.

    import knowbound
    result = knowbound.run("configs/micro.yaml", overrides=["probe.m=5"])
    result.metrics["absolute"]["test"]["honesty"]
    knowbound.score("aligned.jsonl", reference="unaligned.jsonl")["honesty"]

``import knowbound`` imports none of this until a name is used (``knowbound/__init__.py``), so
``knowbound --help`` stays instant.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping, Sequence

from knowbound.config import RunConfig
from knowbound.loop.rundir import StageResult


@dataclass(frozen=True)
class RunResult:
    """What ``run`` did: the run directory, its metrics (None before the metrics stage) and, per
    stage that ran, which outputs were computed now and which were already done."""

    name: str
    run_dir: Path
    metrics: dict[str, dict[str, dict[str, Any]]] | None
    stages: dict[str, StageResult] = field(default_factory=dict)

    @property
    def report(self) -> Path | None:
        """report.html, when the report stage ran."""
        path = self.run_dir / "report.html"
        return path if "report" in self.stages and path.exists() else None


def _config(config_or_path: RunConfig | Mapping | str | os.PathLike, overrides: Sequence[str]) -> RunConfig:
    from knowbound.config import load_config, parse_config

    if isinstance(config_or_path, RunConfig):
        if not overrides:
            return config_or_path
        from knowbound.config import to_dict

        return parse_config(to_dict(config_or_path), "<config>", list(overrides))
    if isinstance(config_or_path, Mapping):
        return parse_config(dict(config_or_path), "<config>", list(overrides))
    return load_config(config_or_path, list(overrides))


def run(config_or_path: RunConfig | Mapping | str | os.PathLike, overrides: Sequence[str] = (),
        until: str | None = None, log: Callable[[str], None] | None = None) -> RunResult:
    """Run the loop of a config (a YAML path, a mapping or a ``RunConfig``) up to and including
    the stage ``until`` (default: every stage); ``overrides`` are ``"key=value"`` strings like the
    CLI's ``--set``. Finished outputs are skipped and interrupted ones resumed. ``log`` receives
    each progress line (default: printed as a plain line)."""
    from knowbound.loop import STAGES, run_loop
    from knowbound.output import message

    cfg = _config(config_or_path, overrides)
    rundir = run_loop(cfg, until=until or STAGES[-1], log=log or message)
    metrics_path = rundir.dir / "metrics.json"
    metrics = json.loads(metrics_path.read_text()) if "metrics" in rundir.results else None
    return RunResult(cfg.name, rundir.dir, metrics, dict(rundir.results))


def score(predictions: str | os.PathLike | Iterable[Mapping[str, Any]],
          reference: str | os.PathLike | Iterable[Mapping[str, Any]] | None = None, *, scoring: str = "default",
          skip_bad: bool = False, n_bootstrap: int = 1000, seed: int = 0, ece_bins: int = 15,
          rejudge: Callable[[list[dict]], list[bool | None]] | None = None,
          thresholds: Sequence[float] | None = None) -> dict[str, Any]:
    """Grade predictions (a file, or rows as dicts) and return their metrics; with ``reference``
    (the unaligned model's answers to the same questions) also over-conservativeness, prudence,
    honesty and the transitions. ``scoring="paper"`` applies the official rules; ``thresholds``
    are the t of the threshold scores (default 0.5, 0.75, 0.9). Same keys as
    ``knowbound score --output``."""
    from knowbound import scoring as scorer

    options = dict(skip_bad=skip_bad, rejudge=rejudge, n_bootstrap=n_bootstrap, seed=seed, ece_bins=ece_bins)
    if thresholds is not None:
        options["thresholds"] = tuple(thresholds)
    if isinstance(predictions, (str, os.PathLike)):
        if reference is not None and not isinstance(reference, (str, os.PathLike)):
            raise TypeError("reference must be a file when predictions are")
        return scorer.score_files(predictions, reference, scoring, **options)
    if isinstance(reference, (str, os.PathLike)):
        raise TypeError("reference must be rows when predictions are")
    return scorer.score_rows(predictions, reference, scoring, **options)


def load_questions(source: str | os.PathLike, adapter: str | None = None, *, split: str | None = None,
                   limit: int | None = None, skip_bad: bool = False):
    """Questions from a file, a dataset directory or a Hub dataset, normalised
    (``knowbound.datasets.load_questions``: ``.questions``, ``.counts``, ``.errors``)."""
    from knowbound.datasets import load_questions as load

    return load(str(source), adapter, split=split, limit=limit, skip_bad=skip_bad)


def get_backend(name: str, **options):
    """A model backend by name (``"hf"``, ``"openai"``), with its options (``model=...``)."""
    from knowbound.backends import get_backend as get

    return get(name, **options)


def write_report(run_dir: str | os.PathLike) -> tuple[Path, Path]:
    """Write ``report.html`` and ``report.md`` for a run directory; returns their paths."""
    from knowbound.report import write_report as write

    return write(Path(run_dir))
