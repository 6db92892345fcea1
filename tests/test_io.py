import json

import pytest

from knowbound.errors import DataError
from knowbound.io import JsonlAppender, existing_rows, iter_jsonl, repair_tail, write_json


def test_iter_jsonl_names_file_and_line_of_truncated_row(tmp_path):
    p = tmp_path / "rows.jsonl"
    p.write_text('{"id": 1}\n{"id": 2\n')
    with pytest.raises(DataError) as exc:
        list(iter_jsonl(p))
    assert exc.value.line == 2
    assert str(exc.value).startswith(f"{p}:2: invalid JSON")
    p.write_text('{"id": 1}\n{"id": 2, "answers": ["Madrid"],\n')  # cut after a comma
    with pytest.raises(DataError) as exc:
        list(iter_jsonl(p))
    assert str(exc.value) == f"{p}:2: invalid JSON (Expecting property name enclosed in double quotes, column 33)"  # the end of the line


def test_iter_jsonl_non_utf8_and_skip(tmp_path):
    p = tmp_path / "rows.jsonl"
    p.write_bytes(b'{"id": 1}\n{"id": "\xff"}\n{"id": 3}\n')
    errors = []
    rows = [row for _, row in iter_jsonl(p, on_error=errors.append)]
    assert [r["id"] for r in rows] == [1, 3]
    assert len(errors) == 1 and errors[0].line == 2 and "UTF-8" in errors[0].message


def test_empty_file_is_an_error(tmp_path):
    p = tmp_path / "empty.jsonl"
    p.write_text("\n\n")
    with pytest.raises(DataError, match="empty file"):
        list(iter_jsonl(p))


def test_appender_repairs_torn_tail_and_appends(tmp_path):
    p = tmp_path / "out.jsonl"
    p.write_text('{"a": 1}\n{"a": 2}\n{"a": 3')  # killed mid-line
    assert repair_tail(p) == len('{"a": 3')
    with JsonlAppender(p) as out:
        assert out.write([{"a": 3}, {"a": 4}]) == 2
    assert [r["a"] for r in existing_rows(p)] == [1, 2, 3, 4]


def test_write_json_is_atomic_and_leaves_no_temp(tmp_path):
    p = tmp_path / "sub" / "m.json"
    write_json(p, {"x": 1})
    assert json.loads(p.read_text()) == {"x": 1}
    assert [f.name for f in p.parent.iterdir()] == ["m.json"]


def test_whole_files_get_the_mode_of_the_umask_not_tempfiles_0600(tmp_path):
    import os

    mask = os.umask(0o022)
    os.umask(mask)
    write_json(tmp_path / "m.json", {"a": 1})
    assert (tmp_path / "m.json").stat().st_mode & 0o777 == 0o666 & ~mask
