"""The CLI's one output rule: messages are plain lines, tables and progress bars go through rich.

A message (an error, a skipped row, "wrote PATH") is printed as it is: never wrapped at the
terminal's width and never parsed as markup, so a path with brackets stays whole and a log can be
grepped. Tables are rendered at their natural width whatever ``COLUMNS`` says, and their cells
are plain text too.
"""

from __future__ import annotations

import sys
from typing import Iterable, Sequence, TextIO


def message(text: str, err: bool = False) -> None:
    """Print one plain line to stdout (or stderr)."""
    stream = sys.stderr if err else sys.stdout
    print(text, file=stream, flush=True)


def print_table(columns: Sequence[tuple[str, str]], rows: Iterable[Sequence[object]], title: str | None = None,
                show_lines: bool = False, file: TextIO | None = None) -> None:
    """Print a table of plain-text cells; ``columns`` are (header, "left" | "right")."""
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    if title:
        message(title)  # a plain line: a table's title would wrap at the table's width
    table = Table(show_lines=show_lines)
    for header, justify in columns:
        table.add_column(Text(header), justify=justify, no_wrap=True)
    for row in rows:
        table.add_row(*(Text("" if cell is None else str(cell)) for cell in row))
    file = file or sys.stdout
    # The natural width, so that neither the terminal nor COLUMNS squeezes or wraps a cell.
    width = Console(width=100_000, file=file).measure(table).maximum
    Console(width=max(width, 20), file=file, soft_wrap=False, highlight=False).print(table)
