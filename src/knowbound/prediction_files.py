"""Prediction files: rows of model answers with their questions, read column by column.

Rows (JSONL, JSON, CSV or Parquet) need an id (``id`` or ``question_id``; the row number
otherwise), ``question``, the gold answers (``answers``, ``gold_answer`` or ``answer``: a string or
a list) or ``choices`` with ``answer_index``/``target``/``answer``, and the model's text
(``pred_text`` or ``prediction``); ``confidence`` in [0, 1] is optional. Other columns (a
``label``/``pred`` from an earlier grading, say) are ignored. So the official Alignment-for-Honesty
prediction files load as they are. A bad row -- missing or mistyped field, an open question
without a gold answer, a duplicate id -- is a ``DataError`` naming file, row and field.
"""

from __future__ import annotations

import contextlib
import gc
import math
import os
from dataclasses import dataclass, field
from typing import Any, Iterable, Mapping

from knowbound.datasets.adapters import RowError, generic, text_field
from knowbound.datasets.sources import open_rows
from knowbound.errors import DataError

TEXT_FIELDS: tuple[str, ...] = ("pred_text", "prediction")


@dataclass
class Predictions:
    """Prediction rows column by column (the scorer's input)."""

    source: str
    ids: list[str] = field(default_factory=list)
    questions: list[str] = field(default_factory=list)
    answers: list[tuple[str, ...]] = field(default_factory=list)
    choices: list[tuple[str, ...]] = field(default_factory=list)
    answer_index: list[int | None] = field(default_factory=list)
    texts: list[str] = field(default_factory=list)
    confidences: list[float] = field(default_factory=list)  # NaN where the row gives none
    errors: list[DataError] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.ids)

    def row(self, i: int) -> dict[str, Any]:
        """Row ``i`` as a plain dict (what a judge receives)."""
        return {
            "id": self.ids[i], "question": self.questions[i], "answers": list(self.answers[i]),
            "choices": list(self.choices[i]), "answer_index": self.answer_index[i],
            "pred_text": self.texts[i],
        }


def _confidence(row: Mapping[str, Any]) -> float:
    value = row.get("confidence")
    if value is None:
        return math.nan
    if isinstance(value, str):  # CSV cells are text
        try:
            value = float(value)
        except ValueError:
            raise RowError("confidence", f"expected a number in [0, 1], got {value!r}") from None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0.0 <= value <= 1.0:
        raise RowError("confidence", f"expected a number in [0, 1], got {value!r}")
    return float(value)


def _parse_fast(row: Mapping[str, Any]) -> tuple | None:
    """The common well-formed open-question row, parsed without the per-field checks, or None.

    Speed only (the scorer reads millions of rows): it accepts a subset of what ``_parse`` accepts
    and returns what ``_parse`` would; anything else goes to ``_parse``.
    """
    get = row.get
    qid, question, answers = get("id"), get("question"), get("answers")
    if qid is None:
        qid = get("question_id")
    text = get("pred_text")
    if text is None:
        text = get("prediction")
    if not (type(qid) is str and qid and type(question) is str and type(text) is str
            and type(answers) is list and get("choices") is None):
        return None
    has_gold = False
    for a in answers:
        if type(a) is not str:
            return None
        has_gold = has_gold or bool(a.strip())
    if not has_gold:
        return None
    conf = get("confidence")
    if conf is None:
        conf = math.nan
    elif type(conf) is not float or not 0.0 <= conf <= 1.0:
        return None
    return qid, question, tuple(answers), (), None, text, conf


def _parse(row: Mapping[str, Any], number: int) -> tuple:
    """``(id, question, answers, choices, answer_index, text, confidence)``; ``RowError`` if bad."""
    q = generic(row, number)
    text = text_field(row, *TEXT_FIELDS)
    if q.kind == "open" and not any(a.strip() for a in q.answers):
        raise RowError("answers", "no gold answer (need answers, gold_answer or answer)")
    return q.id, q.question, q.answers, q.choices, q.answer_index, text, _confidence(row)


def collect_predictions(source: str, rows: Iterable[tuple[int, Mapping[str, Any]]], *, skip_bad: bool = False,
                        errors: list[DataError] | None = None) -> Predictions:
    """Check and gather numbered prediction rows; a bad row raises ``DataError`` or, with
    ``skip_bad``, lands in ``errors``. Duplicate ids and open questions without answers are bad."""
    errors = errors if errors is not None else []
    first_row: dict[str, int] = {}
    parsed_rows = []
    add = parsed_rows.append
    for number, row in rows:
        try:
            parsed = _parse_fast(row) or _parse(row, number)
            qid = parsed[0]
            if qid in first_row:
                raise RowError("id", f"duplicate id {qid!r} (first at row {first_row[qid]})")
        except RowError as exc:
            err = DataError(source, exc.message, number, exc.field)
            if not skip_bad:
                raise err from None
            errors.append(err)
            continue
        first_row[qid] = number
        add(parsed)
    if not parsed_rows:
        raise DataError(source, f"no usable rows ({len(errors)} skipped)")
    columns = [list(c) for c in zip(*parsed_rows)]  # rows -> columns in one pass
    return Predictions(source, *columns, errors=errors)


@contextlib.contextmanager
def gc_paused():
    """Pause the cyclic garbage collector while millions of rows are built: its full passes over
    every new dict cost more than the parsing itself, and rows hold no reference cycles."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def read_predictions(path: str | os.PathLike, *, skip_bad: bool = False) -> Predictions:
    """Prediction rows from a file (see the module docstring for the columns)."""
    errors: list[DataError] = []
    src = open_rows(path, on_error=errors.append if skip_bad else None)
    return collect_predictions(src.name, src.rows, skip_bad=skip_bad, errors=errors)
