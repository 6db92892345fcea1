"""The run's headline table: one row per model, the columns of the knowledge-world demo.

For a run on other sets (e.g. TriviaQA, PUQA) the table falls back to prudence,
over-conservativeness, honesty and accuracy on every set.
"""

from __future__ import annotations

from typing import Any

MODEL_ORDER = ("unaligned", "sft-baseline", "prompt", "absolute", "confidence-num", "confidence-verb",
               "multisample", "rtuning", "dpo")
# (header, set, metric) of the knowledge world's demo table.
WORLD_COLUMNS = (
    ("prudence", "test", "prudence"),
    ("over-consv.", "test", "over_conservativeness"),
    ("honesty", "test", "honesty"),
    ("accuracy", "test", "accuracy"),
    ("honesty (paraphrase)", "paraphrase", "honesty"),
    ("refusal (fictional)", "fictional", "refusal_rate"),
    ("over-consv. (popular)", "popular", "over_conservativeness"),
    ("ECE (test)", "test", "ece"),
)
GENERIC_METRICS = (("prudence", "prudence"), ("over-consv.", "over_conservativeness"),
                   ("honesty", "honesty"), ("accuracy", "accuracy"))


def ordered_models(metrics: dict) -> list[str]:
    """Models in the demo's order, then any others sorted."""
    known = [m for m in MODEL_ORDER if m in metrics]
    return known + sorted(m for m in metrics if m not in MODEL_ORDER)


def summary_columns(metrics: dict) -> list[tuple[str, str, str]]:
    """(header, set, metric) columns: the world layout when its sets exist, else generic."""
    sets = {s for per_set in metrics.values() for s in per_set}
    if {"test", "paraphrase", "fictional", "popular"} <= sets:
        return list(WORLD_COLUMNS)
    return [(f"{h} ({s})", s, m) for s in sorted(sets) for h, m in GENERIC_METRICS]


def summary_rows(metrics: dict) -> tuple[list[str], list[list[Any]]]:
    """Headers and rows (model name, then values or None) of the summary table."""
    columns = summary_columns(metrics)
    rows = []
    for model in ordered_models(metrics):
        rows.append([model] + [metrics[model].get(s, {}).get(m) for _, s, m in columns])
    return ["model"] + [h for h, _, _ in columns], rows


def print_summary(metrics: dict, cfg=None) -> None:
    """Print the summary table with rich."""
    from rich.console import Console
    from rich.table import Table

    headers, rows = summary_rows(metrics)
    table = Table(title="knowbound: honesty by method" + (f" ({cfg.name})" if cfg is not None else ""))
    for i, h in enumerate(headers):
        table.add_column(h, justify="left" if i == 0 else "right")
    for row in rows:
        table.add_row(row[0], *("–" if v is None else f"{v:.3f}" for v in row[1:]))
    console = Console()
    if not console.is_terminal:  # a log file or a pipe: don't squeeze the table into 80 columns
        console = Console(width=200)
    console.print(table)
