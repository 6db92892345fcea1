"""Files on disk: JSON Lines read with precise errors, appended batch by batch, written atomically.

The run directory's rule (DESIGN.md): rows are appended and flushed batch by batch, so a killed
run loses at most the batch in flight; whole files (metrics, config) are written to a temporary
file and renamed into place.
"""

from __future__ import annotations

import functools
import json
import os
import tempfile
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, Mapping

from knowbound.crash import crash, crash_due
from knowbound.errors import DataError

ErrorHandler = Callable[[DataError], None]


def iter_jsonl(path: str | os.PathLike, on_error: ErrorHandler | None = None) -> Iterator[tuple[int, dict]]:
    """Yield ``(line_number, row)`` for each non-blank line of a JSON Lines file.

    A bad line (not UTF-8, not JSON, not an object) raises a ``DataError`` naming the file and
    line, unless ``on_error`` is given: then it receives the error and the line is skipped. An
    empty file is always an error.
    """
    path = Path(path)
    if not path.exists():
        raise DataError(str(path), "file not found")
    seen_any = False
    with open(path, "rb") as fh:
        for line_no, raw in enumerate(fh, start=1):
            if not raw.strip():
                continue
            seen_any = True
            try:
                text = raw.decode("utf-8").rstrip("\r\n")  # a cut line's error: its own column
            except UnicodeDecodeError as exc:
                _fail(DataError(str(path), f"not UTF-8 text (byte {exc.start})", line_no), on_error)
                continue
            try:
                row = json.loads(text)
            except json.JSONDecodeError as exc:
                _fail(DataError(str(path), f"invalid JSON ({exc.msg}, column {exc.colno})", line_no), on_error)
                continue
            if not isinstance(row, dict):
                _fail(DataError(str(path), f"expected a JSON object, got {type(row).__name__}", line_no), on_error)
                continue
            yield line_no, row
    if not seen_any:
        raise DataError(str(path), "empty file: no rows")


def _fail(err: DataError, on_error: ErrorHandler | None) -> None:
    if on_error is None:
        raise err
    on_error(err)


def read_jsonl(path: str | os.PathLike, on_error: ErrorHandler | None = None) -> list[dict]:
    """All rows of a JSON Lines file (see ``iter_jsonl`` for errors)."""
    return [row for _, row in iter_jsonl(path, on_error)]


def dumps(row: Mapping[str, Any]) -> str:
    """One compact JSON line (no newline); non-ASCII kept as is."""
    return json.dumps(row, ensure_ascii=False, separators=(",", ":"))


@functools.cache
def _umask() -> int:
    mask = os.umask(0o022)  # read once: os.umask can only be read by setting it
    os.umask(mask)
    return mask


def usual_mode(path: str | os.PathLike) -> None:
    """Give a file or folder made by ``tempfile`` (mode 0600 / 0700) the mode ``open`` or ``mkdir``
    would have given it under the process's umask, so that outputs can be shared and served."""
    os.chmod(path, (0o777 if os.path.isdir(path) else 0o666) & ~_umask())


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    """Write a whole file so that readers see the old or the new content, never a part."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        usual_mode(tmp)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def write_json(path: str | os.PathLike, obj: Any) -> None:
    """Write JSON atomically, pretty-printed."""
    atomic_write_text(path, json.dumps(obj, indent=2, ensure_ascii=False, sort_keys=False) + "\n")


def write_jsonl(path: str | os.PathLike, rows: Iterable[Mapping[str, Any]]) -> int:
    """Write a whole JSON Lines file atomically; returns the number of rows."""
    lines = [dumps(r) for r in rows]
    atomic_write_text(path, "".join(line + "\n" for line in lines))
    return len(lines)


def repair_tail(path: str | os.PathLike) -> int:
    """Cut a trailing line that has no newline (a write killed mid-line); returns bytes removed."""
    path = Path(path)
    if not path.exists():
        return 0
    size = path.stat().st_size
    if size == 0:
        return 0
    with open(path, "rb+") as fh:
        fh.seek(size - 1)
        if fh.read(1) == b"\n":
            return 0
        # Walk back to the previous newline.
        block = 4096
        pos = size
        cut = 0
        while pos > 0:
            start = max(0, pos - block)
            fh.seek(start)
            chunk = fh.read(pos - start)
            idx = chunk.rfind(b"\n")
            if idx >= 0:
                cut = start + idx + 1
                break
            pos = start
        fh.truncate(cut)
        return size - cut


class JsonlAppender:
    """Append rows to a JSON Lines file, one flushed and fsynced write per batch.

    Opening repairs a torn last line left by a killed writer, so the file always holds whole rows.
    """

    def __init__(self, path: str | os.PathLike, fsync: bool = True):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        repair_tail(self.path)
        self._fh = open(self.path, "a", encoding="utf-8")
        self._fsync = fsync

    def write(self, rows: Iterable[Mapping[str, Any]]) -> int:
        """Append a batch of rows in a single write; returns how many."""
        lines = [dumps(r) + "\n" for r in rows]
        if not lines:
            return 0
        text = "".join(lines)
        if crash_due("jsonl.write"):
            # A crash mid-write: half the batch reaches the disk, ending in a torn line.
            self._fh.write(text[: len(text) // 2])
            self._fh.flush()
            os.fsync(self._fh.fileno())
            crash()
        self._fh.write(text)
        self._fh.flush()
        if self._fsync:
            os.fsync(self._fh.fileno())
        return len(lines)

    def close(self) -> None:
        self._fh.close()

    def __enter__(self) -> "JsonlAppender":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def existing_rows(path: str | os.PathLike) -> list[dict]:
    """Rows already in a resumable output file (none if it does not exist); repairs a torn tail."""
    path = Path(path)
    if not path.exists() or path.stat().st_size == 0:
        return []
    repair_tail(path)
    if path.stat().st_size == 0:
        return []
    return read_jsonl(path)
