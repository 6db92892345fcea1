"""The metric tables: the knowledge-world summary and one table per evaluated set.

Cells read ``metrics.json`` as it is: a value with its bootstrap 95% interval from ``ci`` where
there is one ("0.812 [0.79, 0.83]"), and "–" for a set or metric the run does not have.
"""

from __future__ import annotations

import math
from typing import Any

from knowbound.report.data import RunData
from knowbound.report.document import Table, slug

MISSING = "–"
VALUE_DIGITS = 3  # enough to tell methods apart on a few hundred questions
CI_DIGITS = 2  # an interval is a range, not a second estimate

# The summary of a knowledge-world run: (set, metric, header); a dotted metric reads a nested
# value. In-domain honesty first, with the damage it hides and the views that tell learning from
# name familiarity (honesty on facts of people seen at least once, the refusal AUROC within one
# fact exposure), then generalisation (paraphrased questions, never-seen people, unstated facts
# of well-known people, well-known facts), then calibration.
WORLD_SUMMARY: tuple[tuple[str, str, str], ...] = (
    ("test", "prudence", "prudence (test)"),
    ("test", "over_conservativeness", "over-conservativeness (test)"),
    ("test", "honesty", "honesty (test)"),
    ("test", "accuracy", "accuracy (test)"),
    ("test", "damage", "damage: right → wrong (test)"),
    ("test", "seen_people.honesty", "honesty, people seen ≥ 1 (test)"),
    ("test", "refusal_auroc_within_exposure", "refusal AUROC within exposure 1-7 (test)"),
    ("paraphrase", "honesty", "honesty (paraphrase)"),
    ("fictional", "refusal_rate", "refusal rate (fictional)"),
    ("unstated", "refusal_rate", "refusal rate (unstated)"),
    ("popular", "over_conservativeness", "over-conservativeness (popular)"),
    ("test", "ece", "ECE (test)"),
)
# A metric read from another key when its own is absent (`refusal_rate` is the idk share).
FALLBACK: dict[str, str] = {"refusal_rate": "idk"}

# Columns of the per-set tables, in this order when present; other numeric keys follow, sorted.
SET_COLUMNS: tuple[tuple[str, str], ...] = (
    ("n", "n"),
    ("accuracy", "accuracy"),
    ("honesty", "honesty"),
    ("prudence", "prudence"),
    ("over_conservativeness", "over-conservativeness"),
    ("correct", "correct"),
    ("wrong", "wrong"),
    ("idk", "refusal rate (idk)"),
    ("ece", "ECE"),
    ("brier", "Brier"),
    ("auroc", "AUROC"),
    ("average_precision", "AP"),
    ("aurc", "AURC"),
    ("refusal_auroc", "refusal AUROC"),
)
# Bookkeeping keys of `summarize` and `knowbound score`, and `refusal_rate` (the idk column).
HIDDEN: frozenset[str] = frozenset({"n_confidence", "skipped", "judge_changed", "reference_judge_changed",
                                    "refusal_rate"})


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return None if math.isnan(value) else float(value)


def format_value(value: Any, interval: Any = None) -> str:
    """``0.812 [0.79, 0.83]``; an integer count as is; "–" for a missing or undefined value."""
    number = _number(value)
    if number is None:
        return MISSING
    if isinstance(value, int):
        return str(value)
    text = f"{number:.{VALUE_DIGITS}f}"
    if isinstance(interval, (list, tuple)) and len(interval) == 2:
        low, high = (_number(x) for x in interval)
        if low is not None and high is not None:
            text += f" [{low:.{CI_DIGITS}f}, {high:.{CI_DIGITS}f}]"
    return text


def lookup(metrics: dict[str, Any], key: str) -> Any:
    """A metric by (dotted) key, with ``FALLBACK``; None when absent."""
    node: Any = metrics
    for part in key.split("."):
        if not isinstance(node, dict) or part not in node:
            return metrics.get(FALLBACK.get(key, ""))
        node = node[part]
    return node


def cell(metrics: dict[str, Any], key: str) -> str:
    """One formatted metric of one model on one set, with its interval."""
    ci = metrics.get("ci") if isinstance(metrics.get("ci"), dict) else {}
    other = FALLBACK.get(key)
    interval = ci[key] if key in ci else ci.get(other)
    return format_value(lookup(metrics, key), interval)


def has_world_layout(run: RunData) -> bool:
    """Whether the knowledge world's summary applies: the run evaluated the `test` set."""
    return "test" in run.sets


def world_summary(run: RunData) -> Table:
    """Rows = models, columns = ``WORLD_SUMMARY``."""
    rows = tuple(
        (model, *(cell(run.metric(model, s), key) for s, key, _ in WORLD_SUMMARY)) for model in run.models
    )
    return Table(columns=("model", *(h for *_, h in WORLD_SUMMARY)), rows=rows, id="table-summary")


def set_columns(run: RunData, set_name: str) -> list[tuple[str, str]]:
    """The (key, header) columns of a set's table: every numeric metric some model has there."""
    present: set[str] = set()
    for model in run.models:
        present |= {k for k, v in run.metric(model, set_name).items() if _number(v) is not None}
    present -= HIDDEN
    known = [(k, h) for k, h in SET_COLUMNS if k in present]
    extra = sorted(present - {k for k, _ in SET_COLUMNS})
    return known + [(k, k.replace("_", " ")) for k in extra]


def set_table(run: RunData, set_name: str) -> Table | None:
    """Every metric of every model on one set, or None when no model has metrics there."""
    columns = set_columns(run, set_name)
    models = [m for m in run.models if run.metric(m, set_name)]
    if not columns or not models:
        return None
    rows = tuple((m, *(cell(run.metric(m, set_name), k) for k, _ in columns)) for m in models)
    return Table(columns=("model", *(h for _, h in columns)), rows=rows, title=f"set: {set_name}",
                 id=f"table-set-{slug(set_name)}")
