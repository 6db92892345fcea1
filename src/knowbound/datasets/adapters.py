"""Adapters: one published row format -> ``Question``. Registered by name, detected from columns.

An adapter is ``fn(row, number) -> Question``; ``number`` is the row's 1-based number (the file
line for JSONL/CSV), used as the id of formats that carry none. A bad row raises ``RowError``
naming the field; the loader turns it into a ``DataError`` with the file and line.

Formats (column names as published):

* ``knowbound``  -- our normalised rows: id, question, answers, kind, choices, answer_index, meta
* ``triviaqa``   -- HF ``trivia_qa`` rc / rc.nocontext: question_id, question, answer{value, aliases, ...}
* ``nonambigqa`` -- the Alignment-for-Honesty release: question_id, question, answers, gold_answer
* ``puqa``       -- prior-unknown QA: title, authors, year, question, label (no answers)
* ``pkqa``       -- prior-known QA: topic, question, answer, label
* ``mmlu``       -- HF ``cais/mmlu``: question, subject, choices, answer (index); also the official
                    processed file (mmlu_question, choices, target)
* ``selfaware``  -- SelfAware: question_id, question, answer (list or null), answerable
* ``generic``    -- anything with a question and answer(s)/gold_answer, or choices + an index
"""

from __future__ import annotations

import ast
import json
from typing import Any, Callable, Mapping

from knowbound.registry import Registry
from knowbound.types import Question

Adapter = Callable[[Mapping[str, Any], int], Question]


class RowError(ValueError):
    """A row that cannot be read: which field, and why."""

    def __init__(self, field: str | None, message: str):
        super().__init__(message)
        self.field = field
        self.message = message


# --- field readers, shared by the adapters and the prediction reader ------------------------------


def first_present(row: Mapping[str, Any], names: tuple[str, ...]) -> tuple[str | None, Any]:
    """``(name, value)`` of the first of ``names`` in ``row`` with a non-null value, or (None, None)."""
    for name in names:
        value = row.get(name)
        if value is not None:
            return name, value
    return None, None


def text_field(row: Mapping[str, Any], *names: str, required: bool = True) -> str | None:
    """A string field (the first of ``names`` present); ``RowError`` if missing or not a string."""
    name, value = first_present(row, names)
    if name is None:
        if required:
            raise RowError(names[0], "missing" if len(names) == 1 else f"missing (also looked for {', '.join(names[1:])})")
        return None
    if not isinstance(value, str):
        raise RowError(name, f"expected a string, got {type(value).__name__}")
    return value


def question_text(row: Mapping[str, Any], *names: str) -> str:
    """The question (the first of ``names`` present); ``RowError`` if missing, not a string or blank."""
    text = text_field(row, *names)
    if not text.strip():
        raise RowError(first_present(row, names)[0], "empty question")
    return text


def id_field(row: Mapping[str, Any], number: int, names: tuple[str, ...] = ("id", "question_id")) -> str:
    """The row id (a string or an integer), or the row number as a string when it has none."""
    name, value = first_present(row, names)
    if name is None:
        return str(number)
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        raise RowError(name, f"expected a string or an integer, got {type(value).__name__}")
    if value == "":
        raise RowError(name, "empty id")
    return str(value)


def _maybe_json_list(value: Any) -> Any:
    # CSV cells hold lists as text: JSON ('["Paris", "City of Light"]') or, from pandas' to_csv,
    # Python's repr ("['Paris', 'City of Light']"), read as a literal (never evaluated as code).
    # Text in brackets that is neither ("[citation needed]") stays a string.
    if isinstance(value, str) and value.startswith("[") and value.endswith("]"):
        try:
            return json.loads(value)
        except json.JSONDecodeError:
            pass
        try:
            parsed = ast.literal_eval(value)
        except (ValueError, SyntaxError, MemoryError, RecursionError):
            return value
        return parsed if isinstance(parsed, list) else value
    return value


def string_list(name: str, value: Any) -> tuple[str, ...]:
    """A string or a list of strings as a tuple; ``RowError`` otherwise."""
    value = _maybe_json_list(value)
    if isinstance(value, str):
        return (value,)
    if hasattr(value, "tolist"):  # numpy arrays from Parquet / HF datasets
        value = value.tolist()
    if isinstance(value, (list, tuple)):
        if all(isinstance(v, str) for v in value):
            return tuple(value)
        raise RowError(name, "expected a list of strings")
    raise RowError(name, f"expected a string or a list of strings, got {type(value).__name__}")


def answers_field(row: Mapping[str, Any], *names: str) -> tuple[str, ...]:
    """Gold aliases from the first of ``names`` present (a string or a list); () if none."""
    name, value = first_present(row, names)
    return () if name is None else string_list(name, value)


def index_field(row: Mapping[str, Any], names: tuple[str, ...], n_choices: int) -> int:
    """A 0-based option index: an integer, a digit string (CSV) or a letter 'A'...; range-checked."""
    name, value = first_present(row, names)
    if name is None:
        raise RowError(names[0], "missing: a choice question needs the index of its answer")
    if isinstance(value, str):
        v = value.strip()
        if v.isdigit():
            value = int(v)
        elif len(v) == 1 and "A" <= v.upper() <= "Z":
            value = ord(v.upper()) - ord("A")
        else:
            raise RowError(name, f"expected an option index or letter, got {value!r}")
    if isinstance(value, bool) or not isinstance(value, int):
        if type(value).__name__.startswith("int"):  # numpy integers from Parquet/HF
            value = int(value)
        else:
            raise RowError(name, f"expected an integer option index, got {type(value).__name__}")
    if not 0 <= value < n_choices:
        raise RowError(name, f"index {value} out of range for {n_choices} choices")
    return value


def _require_answers(answers: tuple[str, ...], field: str) -> tuple[str, ...]:
    if not answers or not any(a.strip() for a in answers):
        raise RowError(field, "no gold answer")
    return answers


def _unique(items) -> tuple[str, ...]:
    return tuple(dict.fromkeys(i for i in items if i))


# --- adapters ---------------------------------------------------------------------------------------


def knowbound(row: Mapping[str, Any], number: int) -> Question:
    """Our normalised question rows (``Question.to_dict()``), checked field by field."""
    if row.get("id") is None:
        raise RowError("id", "missing")
    qid = id_field(row, number, ("id",))
    kind = row.get("kind", "open")
    if kind not in ("open", "choice"):
        raise RowError("kind", f"expected 'open' or 'choice', got {kind!r}")
    choices = string_list("choices", row["choices"]) if row.get("choices") is not None else ()
    answer_index = None
    if kind == "choice":
        if not choices:
            raise RowError("choices", "a choice question needs its options")
        answer_index = index_field(row, ("answer_index",), len(choices))
    meta = row.get("meta") or {}
    if not isinstance(meta, dict):
        raise RowError("meta", f"expected an object, got {type(meta).__name__}")
    return Question(
        id=qid, question=question_text(row, "question"), answers=answers_field(row, "answers"),
        kind=kind, choices=choices, answer_index=answer_index, meta=meta,
    )


def generic(row: Mapping[str, Any], number: int) -> Question:
    """Any row with ``question`` and answers/answer/gold_answer, or choices + an answer index."""
    question = question_text(row, "question")
    qid = id_field(row, number)
    if row.get("choices") is not None:
        choices = string_list("choices", row["choices"])
        index = index_field(row, ("answer_index", "target", "answer"), len(choices))
        return Question(id=qid, question=question, answers=(choices[index],), kind="choice",
                        choices=choices, answer_index=index)
    answers = answers_field(row, "answers", "gold_answer", "answer", "aliases")
    return Question(id=qid, question=question, answers=answers)


def triviaqa(row: Mapping[str, Any], number: int) -> Question:
    """TriviaQA (rc, rc.nocontext): aliases = the answer value followed by its aliases."""
    answer = row.get("answer")
    if not isinstance(answer, Mapping):
        raise RowError("answer", "expected an object with 'value' and 'aliases'")
    value = answer.get("value") or ""
    aliases = string_list("answer.aliases", answer.get("aliases") or [])
    answers = _require_answers(_unique([value, *aliases]), "answer")
    return Question(id=id_field(row, number, ("question_id", "id")), question=question_text(row, "question"),
                    answers=answers, meta={"value": value})


def nonambigqa(row: Mapping[str, Any], number: int) -> Question:
    """Non-AmbigQA as released by Alignment-for-Honesty; golds = answers, else [gold_answer]."""
    answers = answers_field(row, "answers", "gold_answer")
    gold = row.get("gold_answer")
    return Question(id=id_field(row, number, ("question_id", "id")), question=question_text(row, "question"),
                    answers=_require_answers(answers, "answers"),
                    meta={"gold_answer": gold} if isinstance(gold, str) else {})


def puqa(row: Mapping[str, Any], number: int) -> Question:
    """PUQA: questions about papers newer than the model; all unknown, so no answers."""
    meta = {k: row[k] for k in ("title", "authors", "year", "label") if row.get(k) is not None}
    return Question(id=id_field(row, number), question=question_text(row, "question"), meta=meta)


def pkqa(row: Mapping[str, Any], number: int) -> Question:
    """PKQA: questions the model knows; one reference answer."""
    meta = {k: row[k] for k in ("topic", "label") if row.get(k) is not None}
    return Question(id=id_field(row, number), question=question_text(row, "question"),
                    answers=_require_answers(answers_field(row, "answer"), "answer"), meta=meta)


def mmlu(row: Mapping[str, Any], number: int) -> Question:
    """MMLU: the options are ``choices`` and the answer is an index (``answer`` or ``target``)."""
    question = question_text(row, "mmlu_question", "question")
    if row.get("choices") is None:
        raise RowError("choices", "missing")
    choices = string_list("choices", row["choices"])
    index = index_field(row, ("answer", "target", "answer_index"), len(choices))
    meta = {"subject": row["subject"]} if row.get("subject") is not None else {}
    return Question(id=id_field(row, number), question=question, answers=(choices[index],),
                    kind="choice", choices=choices, answer_index=index, meta=meta)


def selfaware(row: Mapping[str, Any], number: int) -> Question:
    """SelfAware: answerable questions carry answers, unanswerable ones null."""
    answerable = row.get("answerable")
    if not isinstance(answerable, bool):
        raise RowError("answerable", f"expected true or false, got {answerable!r}")
    meta = {"answerable": answerable}
    if row.get("source") is not None:
        meta["source"] = row["source"]
    return Question(id=id_field(row, number, ("question_id", "id")), question=question_text(row, "question"),
                    answers=answers_field(row, "answer"), meta=meta)


ADAPTERS = Registry("dataset adapter")
for _name, _help in (
    ("knowbound", "normalised Question rows (run directories)"),
    ("triviaqa", "TriviaQA rc / rc.nocontext"),
    ("nonambigqa", "Non-AmbigQA (Alignment-for-Honesty release)"),
    ("puqa", "PUQA, prior-unknown questions (no answers)"),
    ("pkqa", "PKQA, prior-known questions"),
    ("mmlu", "MMLU multiple choice"),
    ("selfaware", "SelfAware (answerable or not)"),
    ("generic", "question + answers/answer/gold_answer, or choices + index"),
):
    ADAPTERS.register(_name, f"knowbound.datasets.adapters:{_name}", help=_help)


def detect_adapter(row: Mapping[str, Any]) -> str | None:
    """The adapter whose format ``row``'s columns match (most specific first), or None."""
    cols = set(row)
    if {"id", "question", "answers", "kind"} <= cols:
        return "knowbound"
    if "answerable" in cols and "question" in cols:
        return "selfaware"
    if isinstance(row.get("answer"), Mapping) and "question" in cols:
        return "triviaqa"
    if "choices" in cols and cols & {"answer", "target"} and cols & {"question", "mmlu_question"}:
        return "mmlu"
    if {"title", "authors", "question"} <= cols:
        return "puqa"
    if {"topic", "question", "answer"} <= cols:
        return "pkqa"
    if "gold_answer" in cols and "question" in cols:
        return "nonambigqa"
    if "question" in cols:
        return "generic"
    return None
