"""Load question sets into ``Question`` records, and read/write the normalised JSONL form."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Iterable

from knowbound.datasets.adapters import ADAPTERS, RowError, detect_adapter
from knowbound.datasets.sources import open_rows
from knowbound.errors import DataError
from knowbound.io import write_jsonl
from knowbound.types import Question


@dataclass
class LoadResult:
    """Questions read from ``source``, and the bad rows skipped (only with ``skip_bad``)."""

    questions: list[Question]
    skipped: int
    errors: list[DataError]
    source: str
    adapter: str = ""
    rows: int = 0  # data rows read, good and bad (rows after ``limit`` are not read)

    @property
    def counts(self) -> dict[str, int]:
        """Rows, open/choice questions, with/without answers, skipped."""
        qs = self.questions
        return {
            "rows": self.rows,
            "questions": len(qs),
            "open": sum(q.kind == "open" for q in qs),
            "choice": sum(q.kind == "choice" for q in qs),
            "with_answers": sum(bool(q.answers) for q in qs),
            "without_answers": sum(not q.answers for q in qs),
            "skipped": self.skipped,
        }


def load_questions(
    source: str | os.PathLike,
    adapter: str | None = None,
    *,
    split: str | None = None,
    limit: int | None = None,
    skip_bad: bool = False,
) -> LoadResult:
    """Questions from a JSONL/JSON/CSV/Parquet file, a local dataset directory or a Hub dataset.

    ``adapter`` names the row format (``ADAPTERS.names()``); None detects it from the first row's
    columns. A bad row (wrong JSON, missing or mistyped field, duplicate id) raises ``DataError``
    naming the file, row number and field -- or, with ``skip_bad``, is skipped and reported in
    ``errors``. A row without an id gets its row number as id.
    """
    if adapter is not None:
        ADAPTERS.entry(adapter)  # unknown names fail before any reading
    errors: list[DataError] = []
    on_error = errors.append if skip_bad else None
    src = open_rows(source, split=split, on_error=on_error)
    questions: list[Question] = []
    first_line: dict[str, int] = {}
    fn = None
    detected = adapter is None
    n_rows = bad_rows = 0
    for number, row in src.rows:
        if limit is not None and len(questions) >= limit:
            break
        n_rows += 1
        if fn is None:
            adapter = adapter or detect_adapter(row)
            if adapter is None:
                raise DataError(src.name, f"cannot tell the format from the columns ({', '.join(map(str, row))}); "
                                "name an adapter", number)
            fn = ADAPTERS.get(adapter)
        try:
            q = fn(row, number)
            if q.id in first_line:
                raise RowError("id", f"duplicate id {q.id!r} (first at row {first_line[q.id]})")
        except RowError as exc:
            message = exc.message
            if detected and detect_adapter(row) not in (None, adapter):  # a file mixing formats
                message += (f" (this row looks like '{detect_adapter(row)}' but the first like '{adapter}';"
                            " name the format with --adapter)")
            err = DataError(src.name, message, number, exc.field)
            if not skip_bad:
                raise err from None
            errors.append(err)
            bad_rows += 1
            continue
        first_line[q.id] = number
        questions.append(q)
    n_rows += len(errors) - bad_rows  # unreadable rows never reached the adapter
    return LoadResult(questions, len(errors), errors, src.name, adapter or "", n_rows)


def read_questions(path: str | os.PathLike, *, skip_bad: bool = False) -> list[Question]:
    """The normalised question JSONL of a run directory (``questions/<set>.jsonl``)."""
    return load_questions(path, "knowbound", skip_bad=skip_bad).questions


def write_questions(path: str | os.PathLike, questions: Iterable[Question]) -> int:
    """Write questions as normalised JSONL (one ``Question.to_dict()`` per line), atomically."""
    return write_jsonl(path, (q.to_dict() for q in questions))

