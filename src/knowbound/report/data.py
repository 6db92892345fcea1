"""A finished run directory (docs/run-directory.md) loaded into plain records for the report.

Everything but the directory itself is optional: a missing or unreadable file becomes a note
the page shows, never an exception, so a half-finished run still gets a report of what it has.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

import yaml

from knowbound.errors import DataError, KnowboundError
from knowbound.io import read_jsonl
from knowbound.baselines import BASELINES
from knowbound.methods import METHODS
from knowbound.types import UNALIGNED

REFERENCE_MODEL = UNALIGNED
# The unaligned model, then the methods in registry order (the order the paper discusses them),
# then the baselines; others follow, sorted.
MODEL_ORDER: tuple[str, ...] = (UNALIGNED, *METHODS, *BASELINES)
# Knowledge-world sets first (in-domain, then out-of-domain), then the paper's real datasets.
SET_ORDER: tuple[str, ...] = ("test", "paraphrase", "fictional", "unstated", "popular",
                              "triviaqa", "nonambigqa", "puqa", "pkqa", "ood", "invented")
TRAIN_SET = "train"  # probed, never evaluated: not a set of the report
DEFAULT_ECE_BINS = 15  # knowbound.scoring.summarize's default, for a run whose config names none


def ordered(names: Iterable[str], preferred: tuple[str, ...]) -> list[str]:
    """``names`` with those in ``preferred`` first, in that order, then the rest sorted."""
    names = set(names)
    return [n for n in preferred if n in names] + sorted(names - set(preferred))


def _read_json(path: Path, notes: list[str]) -> Any:
    if not path.exists():
        return None
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        notes.append(f"{path.name} could not be read ({exc}); left out.")
        return None


def _read_rows(path: Path, base: Path, notes: list[str]) -> list[dict]:
    """Rows of a JSONL file; bad lines are skipped and counted in a note."""
    bad: list[DataError] = []
    name = path.relative_to(base).as_posix()
    try:
        rows = read_jsonl(path, on_error=bad.append)
    except DataError as exc:
        notes.append(f"{name}: {exc.message}; left out.")
        return []
    if bad:
        notes.append(f"{name}: skipped {len(bad)} unreadable row(s), the first at line {bad[0].line} "
                     f"({bad[0].message}).")
    return rows


@dataclass
class RunData:
    """What the report reads from a run directory."""

    path: Path
    metrics: dict[str, dict[str, dict[str, Any]]] = field(default_factory=dict)  # model -> set -> metrics
    predictions: dict[str, dict[str, list[dict]]] = field(default_factory=dict)  # model -> set -> rows
    questions: dict[str, dict[str, dict]] = field(default_factory=dict)  # set -> id -> question row
    config_text: str | None = None
    manifest: dict[str, Any] | None = None
    probe: dict[str, Any] | None = None
    notes: list[str] = field(default_factory=list)  # problems met while loading

    @property
    def models(self) -> list[str]:
        """Every model with metrics or predictions, in report order."""
        return ordered(set(self.metrics) | set(self.predictions), MODEL_ORDER)

    @property
    def methods(self) -> list[str]:
        """The aligned models and baselines (every model but the unaligned reference)."""
        return [m for m in self.models if m != REFERENCE_MODEL]

    @property
    def baselines(self) -> list[str]:
        """The baselines among the models."""
        return [m for m in self.models if m in BASELINES]

    def fit(self, model: str) -> dict | None:
        """A model's or baseline's fitted refusal threshold (``predictions/<model>/_fit.json``, or a
        P(IK) head's ``models/<model>/pik_head.json``)."""
        for path, part in ((self.path / "predictions" / model / "_fit.json", None),
                           (self.path / "models" / model / "pik_head.json", "fit")):
            try:
                data = json.loads(path.read_text(encoding="utf-8"))
            except (OSError, ValueError):
                continue
            if part is not None and isinstance(data, dict):
                data = {"score": "P(I know)", "fitted_on": "train (out of fold)", **(data.get(part) or {})}
            return data if isinstance(data, dict) else None
        return None

    @property
    def sets(self) -> list[str]:
        """Every evaluated set, in report order."""
        names = {s for by_set in self.metrics.values() for s in by_set}
        names |= {s for by_set in self.predictions.values() for s in by_set}
        return ordered(names - {TRAIN_SET}, SET_ORDER)

    @property
    def main_set(self) -> str | None:
        """The in-domain set the per-method figures use: ``test`` when present, else the set where
        the most methods have transitions against the reference (earliest in order on a tie)."""
        sets = self.sets
        if not sets or "test" in sets:
            return "test" if sets else None

        def with_transitions(s: str) -> int:
            return sum("transitions" in self.metrics.get(m, {}).get(s, {}) for m in self.methods)

        return max(sets, key=lambda s: (with_transitions(s), -sets.index(s)))

    @property
    def config(self) -> dict | None:
        """config.yaml as data (None when absent or unreadable)."""
        try:
            data = yaml.safe_load(self.config_text or "")
        except yaml.YAMLError:
            return None
        return data if isinstance(data, dict) else None

    @property
    def ece_bins(self) -> int:
        """The ECE bins the run scored with (config ``eval.ece_bins``), so diagrams match metrics.json."""
        try:
            config = yaml.safe_load(self.config_text or "") or {}
            bins = config.get("eval", {}).get("ece_bins", DEFAULT_ECE_BINS)
        except (yaml.YAMLError, AttributeError):
            return DEFAULT_ECE_BINS
        return bins if isinstance(bins, int) and not isinstance(bins, bool) and bins > 0 else DEFAULT_ECE_BINS

    def metric(self, model: str, set_name: str) -> dict[str, Any]:
        """The metrics of ``model`` on ``set_name`` ({} when absent)."""
        value = self.metrics.get(model, {}).get(set_name)
        return value if isinstance(value, dict) else {}

    def rows(self, model: str, set_name: str | None) -> list[dict]:
        """The prediction rows of ``model`` on ``set_name`` ([] when absent)."""
        return self.predictions.get(model, {}).get(set_name or "", [])

    def exposure(self, row: dict, set_name: str) -> int | None:
        """Ground-truth exposure of a prediction row: its own ``meta``, else its question's."""
        meta = row.get("meta") or self.questions.get(set_name, {}).get(str(row.get("id")), {}).get("meta") or {}
        value = meta.get("exposure")
        return int(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def load_run(run_dir: str | Path) -> RunData:
    """Read ``run_dir``; raises ``KnowboundError`` only when it is not a directory."""
    path = Path(run_dir)
    if not path.is_dir():
        raise KnowboundError(f"{path}: not a run directory")
    run = RunData(path=path)
    notes = run.notes
    metrics = _read_json(path / "metrics.json", notes)
    if isinstance(metrics, dict):
        run.metrics = {str(m): s for m, s in metrics.items() if isinstance(s, dict)}
    elif not (path / "metrics.json").exists():
        notes.append("metrics.json not found: no metric tables (has the scoring stage run?).")
    pred_dir = path / "predictions"
    if pred_dir.is_dir():
        for model_dir in sorted(p for p in pred_dir.iterdir() if p.is_dir()):
            for file in sorted(f for f in model_dir.glob("*.jsonl") if not f.name.startswith("_")):
                rows = _read_rows(file, path, notes)
                if rows:
                    run.predictions.setdefault(model_dir.name, {})[file.stem] = rows
    else:
        notes.append("predictions/ not found: no figures from answers and no example transcripts.")
    for set_name in run.sets:
        file = path / "questions" / f"{set_name}.jsonl"
        if file.exists():
            run.questions[set_name] = {str(q.get("id")): q for q in _read_rows(file, path, notes)}
    if (path / "config.yaml").exists():
        run.config_text = (path / "config.yaml").read_text(encoding="utf-8", errors="replace")
    manifest = _read_json(path / "manifest.json", notes)
    run.manifest = manifest if isinstance(manifest, dict) else None
    probe = _read_json(path / "probe.json", notes)
    run.probe = probe if isinstance(probe, dict) else None
    return run
