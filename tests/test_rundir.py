"""When an output counts as done: its digest, its files, and the order it was computed in
(docs/run-directory.md, "When an output is redone")."""

from __future__ import annotations

import json

from knowbound.config import parse_config
from knowbound.loop.rundir import Output, RunDir


def chain(run: RunDir, calls: list[str]) -> list[Output]:
    """Three outputs, each reading the one before: a -> b -> c. Each writes what it read, plus its name."""
    d = run.dir

    def writer(key: str, src: str | None):
        def work(_view) -> None:
            calls.append(key)
            before = (d / f"{src}.txt").read_text() if src else ""
            (d / f"{key}.txt").write_text(before + key + str(calls.count(key)))
        return work

    return [Output("a", (d / "a.txt",), writer("a", None)),
            Output("b", (d / "b.txt",), writer("b", "a"), after=("a",)),
            Output("c", (d / "c.txt",), writer("c", "b"), after=("b",))]


def make_run(tmp_path) -> RunDir:
    run = RunDir(parse_config({"name": "chain", "runs_dir": str(tmp_path)}), log=lambda _: None)
    run.dir.mkdir(parents=True)
    run.digests = {"a": "da", "b": "db", "c": "dc"}  # fixed digests: no config change anywhere below
    return run


def test_a_rerun_with_nothing_changed_computes_nothing(tmp_path):
    calls: list[str] = []
    run = make_run(tmp_path)
    assert run.run_stage("s", chain(run, calls)).ran == ("a", "b", "c")
    assert run.run_stage("s", chain(run, calls)).ran == ()
    assert calls == ["a", "b", "c"]
    seqs = {k: v["seq"] for k, v in run.manifest()["stages"].items()}
    assert seqs == {"a": 1, "b": 2, "c": 3}


def test_an_input_recomputed_with_the_same_digest_redoes_what_reads_it(tmp_path):
    calls: list[str] = []
    run = make_run(tmp_path)
    run.run_stage("s", chain(run, calls))
    (run.dir / "b.txt").unlink()  # as `rm -rf predictions/pik`: same config, same digest
    assert run.run_stage("s", chain(run, calls)).ran == ("b", "c")
    assert calls == ["a", "b", "c", "b", "c"]
    assert (run.dir / "c.txt").read_text() == "a1b2c2"  # c read the new b, not the first one


def test_a_crash_between_an_input_and_its_reader_redoes_the_reader_next_time(tmp_path):
    calls: list[str] = []
    run = make_run(tmp_path)
    run.run_stage("s", chain(run, calls))
    (run.dir / "a.txt").unlink()
    outs = chain(run, calls)
    run.run_output(outs[0])  # a recomputed, then the process dies before b and c
    fresh = RunDir(parse_config({"name": "chain", "runs_dir": str(tmp_path)}), log=lambda _: None)
    fresh.digests = dict(run.digests)  # the next process: the same directory, read from disk
    assert fresh.run_stage("s", chain(fresh, calls)).ran == ("b", "c")
    assert (fresh.dir / "c.txt").read_text() == "a2b2c2"


def test_a_manifest_written_before_seq_keeps_its_outputs_until_an_input_is_redone(tmp_path):
    calls: list[str] = []
    run = make_run(tmp_path)
    run.run_stage("s", chain(run, calls))
    manifest = run.manifest()
    for record in manifest["stages"].values():
        del record["seq"]
    run.manifest_path.write_text(json.dumps(manifest))
    assert run.run_stage("s", chain(run, calls)).ran == ()  # an old run directory is not redone
    (run.dir / "a.txt").unlink()
    assert run.run_stage("s", chain(run, calls)).ran == ("a", "b", "c")
