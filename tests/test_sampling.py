"""Resumable, shardable sampling: chunks, resume, failures, compaction and merge."""

from __future__ import annotations

import json
import re

import pytest

from conftest import make_questions
from knowbound.backends.scripted import ScriptedBackend
from knowbound.errors import KnowboundError
from knowbound.sampling import chunk_questions, merge_samples, parse_shard, sample_questions
from knowbound.types import Completion, Question


def echo(prompt: str, index: int) -> str:
    """'<question number>#<completion index>'."""
    match = re.search(r"(\d+)\?", prompt)
    return f"{match.group(1) if match else prompt}#{index}"


def lines(path) -> list[str]:
    return path.read_text().splitlines()


def keys(path) -> list[tuple[str, int]]:
    return [(r["question_id"], r["sample_index"]) for r in map(json.loads, lines(path))]


def run(questions, backend, out, **kw):
    kw.setdefault("n", 3)
    kw.setdefault("batch_size", 4)
    return sample_questions(questions, backend, out, progress=False, **kw)


def test_rows_cover_every_key_in_question_then_sample_order(tmp_path):
    qs = make_questions(10)
    stats = run(qs, ScriptedBackend(echo), tmp_path / "s.jsonl", greedy=True, seed=9, temperature=0.7)
    assert keys(tmp_path / "s.jsonl") == [(q.id, j) for q in qs for j in range(4)]
    rows = [json.loads(x) for x in lines(tmp_path / "s.jsonl")]
    assert rows[0] == {"question_id": "q0", "sample_index": 0, "text": "0#0", "finish_reason": "stop",
                       "greedy": True, "temperature": 0.0, "seed": 9, "logprob": None, "error": None}
    assert rows[1]["greedy"] is False and rows[1]["temperature"] == 0.7 and rows[1]["text"] == "0#0"
    assert (stats.planned, stats.skipped, stats.generated, stats.failed) == (40, 0, 40, 0)


def test_greedy_and_sampled_calls_use_their_own_parameters(tmp_path):
    backend = ScriptedBackend(echo)
    run(make_questions(3), backend, tmp_path / "s.jsonl", greedy=True, temperature=0.9, top_p=0.8,
        max_new_tokens=7, stop=("\n",), seed=4)
    (_, greedy), (_, sampled) = backend.calls
    assert (greedy.n, greedy.temperature, greedy.max_new_tokens, greedy.stop) == (1, 0.0, 7, ("\n",))
    assert (sampled.n, sampled.temperature, sampled.top_p, sampled.seed) == (3, 0.9, 0.8, 4)


def test_resume_skips_done_chunks_and_rewrites_nothing_twice(tmp_path):
    qs = make_questions(10)
    full = tmp_path / "full.jsonl"
    run(qs, ScriptedBackend(echo), full, greedy=True)
    part = tmp_path / "part.jsonl"
    # A run killed mid-chunk: 21 whole rows (chunk 0 complete, chunk 1 partly), then a torn line.
    part.write_text("\n".join(lines(full)[:21]) + "\n" + lines(full)[21][:17])
    backend = ScriptedBackend(echo)
    stats = run(qs, backend, part, greedy=True)
    assert part.read_bytes() == full.read_bytes()
    asked = [p for prompts, _ in backend.calls for p in prompts]
    assert len(asked) == 2 * (4 + 2)  # chunks 1 and 2 (4 + 2 questions), greedy and sampled calls
    assert (stats.skipped, stats.generated) == (21, 19)


def test_failures_are_written_counted_and_retried_without_duplicates(tmp_path):
    qs = make_questions(6)
    out = tmp_path / "s.jsonl"
    flaky = ScriptedBackend(lambda p, j: Completion("", "error", error="HTTP 500") if "3?" in p else echo(p, j))
    stats = run(qs, flaky, out, greedy=True)
    rows = [json.loads(x) for x in lines(out)]
    failed = [r for r in rows if r["finish_reason"] == "error"]
    assert stats.failed == 4 and len(failed) == 4 and {r["question_id"] for r in failed} == {"q3"}
    assert all(r["text"] == "" and r["error"] == "HTTP 500" for r in failed)
    healthy = ScriptedBackend(echo)
    stats = run(qs, healthy, out, greedy=True)
    assert [p for prompts, _ in healthy.calls for p in prompts] == ["Q: What is the capital of the war 3?\nA: "] * 2
    assert stats.failed == 0 and stats.generated == 4
    assert keys(out) == [(q.id, j) for q in qs for j in range(4)]  # compacted: one row per key
    assert all(json.loads(x)["finish_reason"] == "stop" for x in lines(out))


def test_resuming_with_other_settings_is_refused(tmp_path):
    out = tmp_path / "s.jsonl"
    run(make_questions(2), ScriptedBackend(echo), out, seed=1)
    with pytest.raises(KnowboundError, match="temperature=1.0 seed=1"):
        run(make_questions(2), ScriptedBackend(echo), out, seed=2)


def test_duplicate_question_ids_are_refused(tmp_path):
    qs = [Question(id="a", question="x?"), Question(id="a", question="y?")]
    with pytest.raises(KnowboundError, match="duplicate question id 'a'"):
        run(qs, ScriptedBackend(echo), tmp_path / "s.jsonl")


def test_choice_questions_are_sent_with_lettered_options(tmp_path):
    q = Question(id="m", question="Pick one", kind="choice", choices=("x", "y"), answer_index=0)
    backend = ScriptedBackend(echo)
    run([q], backend, tmp_path / "s.jsonl", n=1, prompt="bare")
    assert backend.calls[0][0] == ["Pick one\nA) x\nB) y"]


def test_shards_partition_whole_chunks_round_robin():
    qs = make_questions(10)
    assert parse_shard("1/3") == (1, 3)
    shards = [chunk_questions(qs, 3, (i, 3)) for i in range(3)]
    assert [[[pos for pos, _ in c] for c in s] for s in shards] == [
        [[0, 1, 2], [9]], [[3, 4, 5]], [[6, 7, 8]]]
    with pytest.raises(KnowboundError):
        parse_shard("3/3")


def test_merge_orders_rows_and_rejects_duplicates_and_gaps(tmp_path):
    qs = make_questions(10)
    full = tmp_path / "full.jsonl"
    run(qs, ScriptedBackend(echo), full, greedy=True)
    shards = []
    for i in range(3):
        shards.append(tmp_path / f"s{i}.jsonl")
        run(qs, ScriptedBackend(echo), shards[-1], greedy=True, shard=(i, 3))
    assert merge_samples(tmp_path / "m.jsonl", shards, qs) == (40, 0)
    assert (tmp_path / "m.jsonl").read_bytes() == full.read_bytes()
    with pytest.raises(KnowboundError, match="duplicate key"):
        merge_samples(tmp_path / "x.jsonl", [shards[0], shards[0]], qs)
    with pytest.raises(KnowboundError, match="16 samples missing, e.g. question q4 sample 0"):
        merge_samples(tmp_path / "x.jsonl", [shards[0], shards[2]], qs)
    assert not (tmp_path / "x.jsonl").exists()


@pytest.mark.model
def test_hf_resume_and_shards_reproduce_an_uninterrupted_run(hf_backend, tmp_path):
    qs = make_questions(9)
    opts = dict(n=3, greedy=True, seed=5, max_new_tokens=6, batch_size=4)
    full = tmp_path / "full.jsonl"
    run(qs, hf_backend, full, **opts)
    texts = [json.loads(x)["text"] for x in lines(full)]
    assert len(set(texts)) > len(texts) // 2  # real, varied samples
    part = tmp_path / "part.jsonl"
    part.write_text("\n".join(lines(full)[:22]) + "\n" + lines(full)[22][:10])  # killed mid-chunk
    run(qs, hf_backend, part, **opts)
    assert part.read_bytes() == full.read_bytes()
    shards = [tmp_path / f"s{i}.jsonl" for i in range(2)]
    for i, path in enumerate(shards):
        run(qs, hf_backend, path, shard=(i, 2), **opts)
    merge_samples(tmp_path / "merged.jsonl", shards, qs)
    assert (tmp_path / "merged.jsonl").read_bytes() == full.read_bytes()
