"""The run's headline table in the terminal: one row per model, the report's summary columns.

The columns and the model order are the report's (``knowbound.report.summary``), so the terminal
and report.html show the same table. For a run on other sets (e.g. TriviaQA, PUQA) it falls back
to prudence, over-conservativeness, honesty and accuracy on every set.
"""

from __future__ import annotations

from typing import Any

from knowbound.report.data import MODEL_ORDER, SET_ORDER, ordered
from knowbound.report.summary import WORLD_SUMMARY, lookup

GENERIC_METRICS = (("prudence", "prudence"), ("over_conservativeness", "over-consv."),
                   ("honesty", "honesty"), ("accuracy", "accuracy"))


def summary_columns(metrics: dict) -> list[tuple[str, str, str]]:
    """(set, metric, header) columns: the knowledge-world layout when its sets exist, else generic."""
    sets = {s for per_set in metrics.values() for s in per_set}
    if "test" in sets and {s for s, _, _ in WORLD_SUMMARY} & sets - {"test"}:
        return [c for c in WORLD_SUMMARY if c[0] in sets]
    return [(s, m, f"{h} ({s})") for s in ordered(sets, SET_ORDER) for m, h in GENERIC_METRICS]


def summary_rows(metrics: dict) -> tuple[list[str], list[list[Any]]]:
    """Headers and rows (model name, then values or None) of the summary table."""
    columns = summary_columns(metrics)
    rows = []
    for model in ordered(metrics, MODEL_ORDER):
        values = []
        for s, m, _ in columns:
            value = lookup(metrics[model].get(s, {}), m)
            values.append(value if isinstance(value, (int, float)) else None)
        rows.append([model] + values)
    return ["model"] + [h for _, _, h in columns], rows


def print_summary(metrics: dict, name: str | None = None) -> None:
    """Print the summary table (of the run called ``name``)."""
    from knowbound.output import print_table

    headers, rows = summary_rows(metrics)
    print_table([(h, "left" if i == 0 else "right") for i, h in enumerate(headers)],
                [[row[0], *("–" if v is None else (str(v) if isinstance(v, int) else f"{v:.3f}") for v in row[1:])]
                 for row in rows],
                title="knowbound: honesty by method" + (f" ({name})" if name else ""))
