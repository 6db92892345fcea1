"""The run's headline table in the terminal: one row per model, the report's summary columns.

The columns (one group per set role) and the model order are the report's
(``knowbound.report.summary``), so the terminal and report.html show the same table.
"""

from __future__ import annotations

from typing import Any

from knowbound.report.data import MODEL_ORDER, SET_ORDER, ordered
from knowbound.report.summary import lookup, set_roles, summary_columns


def summary_rows(metrics: dict, config: dict | None = None) -> tuple[list[str], list[list[Any]]]:
    """Headers and rows (model name, then values or None) of the summary table: the report's
    columns, one group per set role (``config``: the run config as data, for the roles)."""
    sets = ordered({s for per_set in metrics.values() for s in per_set}, SET_ORDER)
    columns = summary_columns(metrics, set_roles(config, sets))
    rows = []
    for model in ordered(metrics, MODEL_ORDER):
        values = []
        for s, m, _ in columns:
            value = lookup(metrics[model].get(s, {}), m)
            values.append(value if isinstance(value, (int, float)) else None)
        rows.append([model] + values)
    return ["model"] + [h for _, _, h in columns], rows


def print_summary(metrics: dict, name: str | None = None, config: dict | None = None) -> None:
    """Print the summary table (of the run called ``name``)."""
    from knowbound.output import print_table

    headers, rows = summary_rows(metrics, config)
    print_table([(h, "left" if i == 0 else "right") for i, h in enumerate(headers)],
                [[row[0], *("–" if v is None else (str(v) if isinstance(v, int) else f"{v:.3f}") for v in row[1:])]
                 for row in rows],
                title="knowbound: honesty by method" + (f" ({name})" if name else ""))
