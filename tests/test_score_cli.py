import json
import subprocess
import sys

import pytest

from knowbound.cli import main

GOOD = {"question_id": "1", "question": "Capital of France?", "answers": ["Paris"], "gold_answer": "Paris",
        "pred_text": "Paris."}
SECOND = {**GOOD, "question_id": "2", "pred_text": "I don't know."}


def lines(*rows):
    return "".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in rows)


def test_score_prints_table_and_writes_json(tmp_path, capsys):
    (tmp_path / "new.jsonl").write_text(lines(GOOD, SECOND))
    (tmp_path / "ref.jsonl").write_text(lines({**GOOD, "pred_text": "Lyon."}, {**SECOND, "pred_text": "Paris"}))
    out_file = tmp_path / "out" / "metrics.json"
    code = main(["score", str(tmp_path / "new.jsonl"), "--reference", str(tmp_path / "ref.jsonl"),
                 "--output", str(out_file), "--bootstrap", "50"])
    out = capsys.readouterr().out
    assert code == 0
    assert "honesty" in out and "reference \\ new" in out
    result = json.loads(out_file.read_text())
    # new: C, idk; reference: W, C -> over-conservativeness 1/1 (question 2); prudence: the only
    # reference-unknown question is now answered correctly, so its denominator is 0 -> 1 by convention
    assert (result["accuracy"], result["idk"], result["over_conservativeness"], result["prudence"]) == (0.5, 0.5, 1.0, 1.0)
    assert result["honesty"] == 0.5 and result["n"] == 2
    assert set(result["ci"]) >= {"accuracy", "prudence", "over_conservativeness", "honesty"}


def test_without_reference_there_are_no_honesty_keys(tmp_path, capsys):
    (tmp_path / "new.jsonl").write_text(lines(GOOD))
    assert main(["score", str(tmp_path / "new.jsonl"), "--output", str(tmp_path / "m.json"), "--bootstrap", "0"]) == 0
    result = json.loads((tmp_path / "m.json").read_text())
    assert "honesty" not in result and "transitions" not in result and "ci" not in result
    assert result["accuracy"] == 1.0


BAD_CASES = [
    # (file content, text the one error line must contain)
    (lines(GOOD, '{"question_id": "2", "question": "Q'), "new.jsonl:2: invalid JSON"),
    (lines(GOOD, {k: v for k, v in SECOND.items() if k != "pred_text"}), "new.jsonl:2: field 'pred_text': missing"),
    (lines({**GOOD, "confidence": "high"}), "new.jsonl:1: field 'confidence': expected a number in [0, 1]"),
    (lines(GOOD, {**SECOND, "question": 3}), "new.jsonl:2: field 'question': expected a string, got int"),
    (lines(GOOD, GOOD), "new.jsonl:2: field 'id': duplicate id '1' (first at row 1)"),
    (lines(GOOD, {**SECOND, "answers": [], "gold_answer": ""}), "new.jsonl:2: field 'answers': no gold answer"),
    (lines({**GOOD, "answers": "Paris", "choices": ["a", "b"], "target": 5}),
     "new.jsonl:1: field 'target': index 5 out of range for 2 choices"),
    ("", "new.jsonl: empty file"),
]


@pytest.mark.parametrize("content, message", BAD_CASES)
def test_bad_input_is_one_line_and_exit_1(tmp_path, capsys, content, message):
    (tmp_path / "new.jsonl").write_text(content)
    code = main(["score", str(tmp_path / "new.jsonl")])
    err = capsys.readouterr().err
    assert code == 1
    assert err.count("\n") == 1 and "Traceback" not in err
    assert err.startswith("error: ") and message in err


def test_non_utf8_bytes(tmp_path, capsys):
    (tmp_path / "new.jsonl").write_bytes(lines(GOOD).encode() + b'{"question_id": "\xff"}\n')
    assert main(["score", str(tmp_path / "new.jsonl")]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "new.jsonl:2: not UTF-8" in err


def test_missing_reference_ids_are_listed(tmp_path, capsys):
    (tmp_path / "new.jsonl").write_text(lines(GOOD, SECOND))
    (tmp_path / "ref.jsonl").write_text(lines(GOOD))
    assert main(["score", str(tmp_path / "new.jsonl"), "--reference", str(tmp_path / "ref.jsonl")]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "1 ids only in" in err and "(2)" in err


def test_skip_bad_reports_how_many(tmp_path, capsys):
    (tmp_path / "new.jsonl").write_text(lines(GOOD, "{broken", {**SECOND, "answers": []}, SECOND))
    assert main(["score", str(tmp_path / "new.jsonl"), "--skip-bad", "--output", str(tmp_path / "m.json")]) == 0
    out = capsys.readouterr().out
    assert "skipped 2 bad rows" in out
    new = tmp_path / "new.jsonl"
    assert f"skipped: {new}:2: invalid JSON" in out and f"skipped: {new}:3: field 'answers'" in out
    result = json.loads((tmp_path / "m.json").read_text())
    assert result["n"] == 2 and [r.split(": ")[0] for r in result["skipped_rows"]] == [f"{new}:2", f"{new}:3"]


def test_entry_point_prints_no_traceback(tmp_path):
    (tmp_path / "new.jsonl").write_text(lines(GOOD, "{"))
    proc = subprocess.run([sys.executable, "-m", "knowbound", "score", str(tmp_path / "new.jsonl")],
                          capture_output=True, text=True)
    assert proc.returncode == 1
    assert proc.stderr == f"error: {tmp_path / 'new.jsonl'}:2: invalid JSON (Expecting property name enclosed in double quotes, column 2)\n"


@pytest.mark.parametrize("columns", ["30", "250"])
def test_data_show_prints_counts_and_rows(tmp_path, capsys, monkeypatch, columns):
    monkeypatch.setenv("COLUMNS", columns)
    deep = tmp_path / ("d" * 120) / "[exp]"  # a long path, with brackets rich would read as markup
    deep.mkdir(parents=True)
    (deep / "q.jsonl").write_text(lines(GOOD, SECOND, {**GOOD, "question_id": "3", "answers": []}))
    assert main(["data", "show", str(deep / "q.jsonl"), "-n", "1", "--skip-bad"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert f"skipped: {deep / 'q.jsonl'}:3: field 'answers': no gold answer" in out
    assert f"{deep / 'q.jsonl'} (adapter: nonambigqa)" in out
    # Table cells are never wrapped, whatever the terminal width.
    assert any("nonambigqa" in line for line in out) and any("Capital of France?" in line for line in out)


@pytest.mark.parametrize("columns", ["30", "250"])
def test_score_messages_are_whole_plain_lines(tmp_path, capsys, monkeypatch, columns):
    monkeypatch.setenv("COLUMNS", columns)
    (tmp_path / "new.jsonl").write_text(lines(GOOD, SECOND))
    output = tmp_path / "runs" / "[exp]" / ("m" * 80 + ".json")
    assert main(["score", str(tmp_path / "new.jsonl"), "--output", str(output)]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0] == f"{tmp_path / 'new.jsonl'}: 2 answers, default scoring"
    assert out[-1] == f"wrote {output}"
    assert any("accuracy (loose)" in line and "0.5000" in line for line in out)
    assert json.loads(output.read_text())["n"] == 2


def test_data_show_bad_file_is_one_line(tmp_path, capsys):
    (tmp_path / "q.jsonl").write_text(lines(GOOD, {"question_id": "2"}))
    assert main(["data", "show", str(tmp_path / "q.jsonl")]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "q.jsonl:2: field 'question': missing" in err


def test_threshold_scores_in_output_and_table(tmp_path, capsys):
    import json

    from knowbound.cli import main

    pred = tmp_path / "p.jsonl"
    pred.write_text("\n".join(json.dumps(r) for r in [
        {"id": "1", "question": "Capital of France?", "answers": ["Paris"], "pred_text": "Paris."},
        {"id": "2", "question": "Capital of Spain?", "answers": ["Madrid"], "pred_text": "Rome."},
        {"id": "3", "question": "Capital of Chad?", "answers": ["N'Djamena"], "pred_text": "I don't know."},
        {"id": "4", "question": "Capital of Peru?", "answers": ["Lima"], "pred_text": "Lima."}]) + "\n")
    out = tmp_path / "m.json"
    assert main(["score", str(pred), "--threshold", "0.75", "--threshold", "0.5", "--output", str(out)]) == 0
    result = json.loads(out.read_text())
    # 2 correct, 1 wrong, 1 refusal: t=0.75 -> (2 - 3) / 4; t=0.5 -> (2 - 1) / 4
    assert result["threshold_score"] == {"0.75": -0.25, "0.5": 0.25}
    assert "threshold score (t=0.75)" in capsys.readouterr().out
    assert main(["score", str(pred), "--output", str(out)]) == 0
    assert set(json.loads(out.read_text())["threshold_score"]) == {"0.5", "0.75", "0.9"}
