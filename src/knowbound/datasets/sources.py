"""Raw rows from a file, a local Hugging Face dataset or the Hub: ``(row number, dict)`` pairs.

Row numbers are 1-based and are what error messages cite: the line for JSONL and CSV (the line a
record ends on), the position of the item for a JSON list, Parquet and Hugging Face datasets. A
bad row raises ``DataError`` -- or, with ``on_error``, is handed to it and skipped.
"""

from __future__ import annotations

import csv
import io
import json
import json.scanner
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

from knowbound.errors import DataError, KnowboundError, require
from knowbound.io import ErrorHandler, iter_jsonl

Rows = Iterator[tuple[int, dict]]
# Keys under which a JSON document may hold its list of rows ({"data": [...]} and the like).
JSON_LIST_KEYS: tuple[str, ...] = ("data", "examples", "example", "rows", "questions")
FILE_KINDS: dict[str, str] = {
    ".jsonl": "jsonl", ".ndjson": "jsonl", ".json": "json", ".csv": "csv", ".tsv": "csv",
    ".parquet": "parquet", ".pq": "parquet",
}


@dataclass
class RowSource:
    """Rows and the name errors use for them (a path, or ``hub_name[split]``)."""

    name: str
    kind: str
    rows: Rows


def open_rows(source: str | os.PathLike, *, split: str | None = None, on_error: ErrorHandler | None = None) -> RowSource:
    """Open ``source``: a .jsonl/.json/.csv/.parquet file, a dataset directory, or a Hub name.

    A Hub name may carry a config after a colon: ``trivia_qa:rc.nocontext``. ``geofacts:<set>[@<seed>]``
    is a set built from GeoNames data (``knowbound.datasets.geofacts``).
    """
    if str(source).startswith("geofacts:"):
        from knowbound.datasets.geofacts import geofacts_rows  # lazy: it needs the GeoNames packages

        return RowSource(str(source), "geofacts", geofacts_rows(str(source)))
    path = Path(source)
    if path.is_file():
        kind = FILE_KINDS.get(path.suffix.lower())
        if kind is None:
            raise DataError(str(path), f"unknown file type '{path.suffix}' (known: {', '.join(FILE_KINDS)})")
        reader = {"jsonl": _jsonl_rows, "json": _json_rows, "csv": _csv_rows, "parquet": _parquet_rows}[kind]
        return RowSource(str(path), kind, reader(path, on_error))
    if not path.is_dir() and (path.suffix.lower() in FILE_KINDS or str(source).startswith(("/", "./", "../", "~"))):
        raise DataError(str(path), "file not found")
    name, rows = _hf_rows(str(source), split)
    return RowSource(name, "hf", rows)


def _jsonl_rows(path: Path, on_error: ErrorHandler | None) -> Rows:
    """``iter_jsonl``'s rows, parsed about a third faster when the file is clean.

    The fast path decodes the whole file once and calls the JSON scanner on each line directly,
    skipping ``json.loads``' per-call overhead; it gives up on the first line that is not a bare
    JSON object and hands the whole file to ``iter_jsonl``, which then reports the bad line
    exactly as usual. So the rows, and the errors, are ``iter_jsonl``'s.
    """
    rows = _jsonl_rows_clean(path)
    if rows is None:
        yield from iter_jsonl(path, on_error)
    else:
        yield from rows


_SCAN = json.scanner.make_scanner(json.JSONDecoder())


def _jsonl_rows_clean(path: Path) -> list[tuple[int, dict]] | None:
    try:
        text = path.read_bytes().decode("utf-8")
    except (OSError, UnicodeDecodeError):
        return None
    rows = []
    for number, line in enumerate(text.split("\n"), start=1):
        line = line.strip(" \t\r")  # JSON whitespace; anything else goes the slow way
        if not line:
            continue
        try:
            row, end = _SCAN(line, 0)
        except (StopIteration, ValueError):
            return None
        if end != len(line) or type(row) is not dict:
            return None
        rows.append((number, row))
    return rows or None


def _fail(err: DataError, on_error: ErrorHandler | None) -> None:
    if on_error is None:
        raise err
    on_error(err)


def _line_of(data: bytes, offset: int) -> int:
    return data.count(b"\n", 0, offset) + 1


def _read_text(path: Path) -> str:
    data = path.read_bytes()
    if not data.strip():
        raise DataError(str(path), "empty file: no rows")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise DataError(str(path), f"not UTF-8 text (byte {exc.start})", _line_of(data, exc.start)) from None


def _json_rows(path: Path, on_error: ErrorHandler | None) -> Rows:
    text = _read_text(path)
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as exc:
        if exc.msg == "Extra data" and text.lstrip().startswith("{"):
            # One object per line under a .json name: read it as JSON Lines.
            yield from iter_jsonl(path, on_error)
            return
        raise DataError(str(path), f"invalid JSON ({exc.msg}, column {exc.colno})", exc.lineno) from None
    if isinstance(doc, dict):
        doc = next((doc[k] for k in JSON_LIST_KEYS if isinstance(doc.get(k), list)), doc)
    if not isinstance(doc, list):
        raise DataError(str(path), 'expected a JSON list of objects or {"data": [...]}')
    if not doc:
        raise DataError(str(path), "empty file: no rows")
    for number, row in enumerate(doc, start=1):
        if isinstance(row, dict):
            yield number, row
        else:
            _fail(DataError(str(path), f"expected a JSON object, got {type(row).__name__}", number), on_error)


def _csv_rows(path: Path, on_error: ErrorHandler | None) -> Rows:
    data = path.read_bytes()
    if not data.strip():
        raise DataError(str(path), "empty file: no rows")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        if on_error is None:
            raise DataError(str(path), f"not UTF-8 text (byte {exc.start})", _line_of(data, exc.start)) from None
        # Blank out each undecodable line (keeping line numbers) and report it.
        lines = []
        for number, raw in enumerate(data.splitlines(keepends=True), start=1):
            try:
                lines.append(raw.decode("utf-8-sig" if number == 1 else "utf-8"))
            except UnicodeDecodeError as err:
                on_error(DataError(str(path), f"not UTF-8 text (byte {err.start})", number))
                lines.append("\n")
        text = "".join(lines)
    reader = csv.DictReader(io.StringIO(text, newline=""), delimiter="\t" if path.suffix.lower() == ".tsv" else ",")
    if not reader.fieldnames:
        raise DataError(str(path), "empty file: no header row")
    try:
        for row in reader:
            if None in row:
                _fail(DataError(str(path), f"{len(reader.fieldnames) + len(row[None])} cells, but the header "
                                f"has {len(reader.fieldnames)}", reader.line_num), on_error)
                continue
            # An empty cell is a missing value, as in pandas.
            yield reader.line_num, {k: (None if v == "" else v) for k, v in row.items()}
    except csv.Error as exc:
        raise DataError(str(path), f"malformed CSV ({exc})", reader.line_num) from None


def _parquet_rows(path: Path, on_error: ErrorHandler | None) -> Rows:
    pq = require("pyarrow.parquet", "data")
    try:
        pf = pq.ParquetFile(path)
    except Exception as exc:  # pyarrow raises ArrowInvalid and friends
        raise DataError(str(path), f"not a readable Parquet file ({exc})") from None
    if pf.metadata.num_rows == 0:
        raise DataError(str(path), "empty file: no rows")
    number = 0
    for batch in pf.iter_batches(batch_size=8192):
        for row in batch.to_pylist():
            number += 1
            yield number, row


def _hf_rows(source: str, split: str | None) -> tuple[str, Rows]:
    datasets = require("datasets", "data")
    path = Path(source)
    try:
        if path.is_dir() and ((path / "state.json").exists() or (path / "dataset_dict.json").exists()):
            ds = datasets.load_from_disk(str(path))  # written by save_to_disk
        elif path.is_dir():
            ds = datasets.load_dataset(str(path), split=split)  # a folder of data files
        else:
            name, _, config = source.partition(":")
            ds = datasets.load_dataset(name, config or None, split=split)
    except Exception as exc:  # network, missing dataset, bad split: one line for the user
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise KnowboundError(f"cannot load dataset '{source}': {first}") from None
    if isinstance(ds, datasets.DatasetDict):
        if split is None and len(ds) == 1:
            split = next(iter(ds))
        if split not in ds:
            raise KnowboundError(f"dataset '{source}' has splits {', '.join(ds)}; choose one with --split")
        ds = ds[split]
    name = f"{source}[{split}]" if split else source
    if len(ds) == 0:
        raise DataError(name, "empty dataset: no rows")
    return name, ((i, dict(row)) for i, row in enumerate(ds, start=1))
