"""`knowbound sample` and `knowbound merge` end to end, including SIGKILL at random moments."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys

import pytest

from conftest import make_questions
from knowbound.cli import main
from knowbound.sampling import sample_questions
from knowbound.testing.server import ChatServer, Faults


def write_questions(path, questions):
    path.write_text("".join(json.dumps(q.to_dict()) + "\n" for q in questions))
    return path


def count_lines(path) -> int:
    try:
        with open(path, "rb") as fh:
            return fh.read().count(b"\n")
    except FileNotFoundError:
        return 0


@pytest.mark.model
def test_killed_mid_write_twice_then_resumed_equals_an_uninterrupted_run(tiny_model_dir, hf_backend, tmp_path):
    """Kill `knowbound sample` twice in the middle of appending a batch (SIGKILL, leaving a torn
    line), re-run to completion: the file must be byte-identical -- same rows, same order, same
    text -- to an uninterrupted run's. The crash points are chosen by KNOWBOUND_CRASH_AT, so the
    test lands at the same place on every machine."""
    questions = make_questions(120)
    qfile = write_questions(tmp_path / "questions.jsonl", questions)
    out = tmp_path / "samples.jsonl"
    settings = dict(n=3, greedy=True, max_new_tokens=8, batch_size=8, seed=3, prompt="typical")
    cmd = [sys.executable, "-m", "knowbound", "sample", "--model", str(tiny_model_dir), "--questions", str(qfile),
           "--out", str(out), "--n", "3", "--greedy", "--max-new-tokens", "8", "--batch-size", "8",
           "--seed", "3", "--threads", "1", "--no-progress"]
    # The uninterrupted run, in process (same code path as the CLI, same model files).
    reference = tmp_path / "reference.jsonl"
    sample_questions(questions, hf_backend, reference, progress=False, **settings)
    total = count_lines(reference)
    assert total == 120 * 4

    killed_at = []
    # Each process counts its own writes: the 3rd chunk of the first run, the 5th new chunk of the second.
    for point in ("jsonl.write:3", "jsonl.write:5"):
        proc = subprocess.run(cmd, env={**os.environ, "KNOWBOUND_CRASH_AT": point}, capture_output=True, timeout=300)
        assert proc.returncode == -signal.SIGKILL, proc.stderr
        assert not out.read_bytes().endswith(b"\n")  # the kill tore the last line
        killed_at.append(count_lines(out))
    # 8 questions x 4 answers = 32 rows per chunk: two whole chunks, then part of the third.
    assert 64 < killed_at[0] < 96 and killed_at[1] > killed_at[0]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert "failed: 0" in done.stdout
    assert out.read_bytes() == reference.read_bytes()


def test_failures_exceeding_max_failures_exit_non_zero_and_are_retried(tmp_path, capsys):
    questions = write_questions(tmp_path / "q.jsonl", make_questions(4))
    out = tmp_path / "s.jsonl"
    args = ["sample", "--backend", "openai", "--model", "m", "--questions", str(questions), "--out", str(out),
            "--n", "2", "--prompt", "bare", "--no-progress", "--max-attempts", "1"]
    with ChatServer(replies="Oslo", faults=Faults(fail_every=3, fail_status=500)) as server:
        code = main([*args, "--base-url", server.base_url])
    captured = capsys.readouterr()
    assert code == 2
    failed = [r for r in map(json.loads, out.read_text().splitlines()) if r["finish_reason"] == "error"]
    assert len(failed) == 2 and f"failed: {len(failed)}" in captured.out
    assert "exceed --max-failures 0" in captured.err
    with ChatServer(replies="Oslo", faults=Faults(fail_every=1, fail_status=500)) as server:
        # Only the failed question is asked again; it fails again: 2 of 8 is within a fraction of 0.5.
        assert main([*args, "--base-url", server.base_url, "--max-failures", "0.5"]) == 0
        assert server.count == 1
    with ChatServer(replies="Oslo") as server:
        assert main([*args, "--base-url", server.base_url]) == 0
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(rows) == 8 and all(r["text"] == "Oslo" for r in rows)
    assert "failed: 0" in capsys.readouterr().out


def test_a_server_that_answers_nothing_stops_the_sampling_early(tmp_path, capsys):
    """Two batches in which every request failed stop the run, naming the error; a re-run resumes."""
    questions = write_questions(tmp_path / "q.jsonl", make_questions(8))
    out = tmp_path / "s.jsonl"
    args = ["sample", "--backend", "openai", "--model", "m", "--questions", str(questions), "--out", str(out),
            "--n", "1", "--greedy", "--batch-size", "2", "--no-progress"]
    with ChatServer(replies="Oslo", faults=Faults(fail_every=1, fail_status=401)) as server:  # a wrong key
        assert main([*args, "--base-url", server.base_url]) == 1
        assert server.count == 8  # 2 batches of 2 questions, a greedy and a sampled request each
    err = capsys.readouterr().err
    assert "every request of the last 2 batches failed (HTTP 401" in err and "re-run to resume" in err
    assert [r["finish_reason"] for r in map(json.loads, out.read_text().splitlines())] == ["error"] * 8
    with ChatServer(replies="Oslo") as server:
        assert main([*args, "--base-url", server.base_url]) == 0
        assert server.count == 16
    assert "16 samples (0 already done, 16 generated" in capsys.readouterr().out


def test_sample_shards_then_merge_cli(tmp_path, capsys):
    qs = make_questions(7)
    questions = write_questions(tmp_path / "q.jsonl", qs)
    common = ["--backend", "openai", "--model", "m", "--questions", str(questions), "--n", "2", "--greedy",
              "--batch-size", "2", "--no-progress"]
    with ChatServer(replies=lambda message, body: message.split()[-2]) as server:
        main(["sample", *common, "--base-url", server.base_url, "--out", str(tmp_path / "all.jsonl")])
        for i in range(3):
            main(["sample", *common, "--base-url", server.base_url, "--shard", f"{i}/3",
                  "--out", str(tmp_path / f"part{i}.jsonl")])
    code = main(["merge", str(tmp_path / "merged.jsonl"), *(str(tmp_path / f"part{i}.jsonl") for i in range(3)),
                 "--questions", str(questions)])
    assert code == 0 and "21 rows from 3 shards; failed: 0" in capsys.readouterr().out
    assert (tmp_path / "merged.jsonl").read_bytes() == (tmp_path / "all.jsonl").read_bytes()
    assert main(["merge", str(tmp_path / "bad.jsonl"), str(tmp_path / "part0.jsonl"),
                 "--questions", str(questions)]) == 1
    assert "samples missing" in capsys.readouterr().err


def test_a_shard_without_questions_says_so(tmp_path, capsys):
    questions = write_questions(tmp_path / "q.jsonl", make_questions(4))
    with ChatServer(replies="Oslo") as server:
        assert main(["sample", "--backend", "openai", "--model", "m", "--questions", str(questions), "--n", "1",
                     "--batch-size", "100", "--no-progress", "--base-url", server.base_url, "--shard", "1/2",
                     "--out", str(tmp_path / "part1.jsonl")]) == 0
        assert server.count == 0
    out = capsys.readouterr().out
    assert "warning: shard 1/2 has no questions" in out and "4 questions make 1 chunk; a --batch-size of at most 2" in out
