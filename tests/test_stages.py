"""Each stage runs on its own on a run directory, and reads only what is done before it."""

from __future__ import annotations

import pytest

from knowbound.config import parse_config
from knowbound.errors import KnowboundError
from knowbound.loop import build, eval as eval_stage, label, open_run, run_loop
from knowbound.loop.rundir import ConfigView, UndeclaredRead

pytestmark = pytest.mark.model


def test_a_stage_runs_alone_on_a_run_directory(micro_world, tmp_path):
    cfg = parse_config({"name": "alone", "runs_dir": str(tmp_path), "seed": 0,
                        "model": {"world": "micro", "world_dir": str(micro_world), "threads": 1},
                        "probe": {"m": 3, "max_new_tokens": 16, "batch_size": 40},
                        "methods": ["absolute", "multisample"]})
    run_loop(cfg, until="label", log=lambda _: None)
    knowledge = (tmp_path / "alone" / "knowledge.jsonl").read_bytes()

    rundir = open_run(tmp_path / "alone", log=lambda _: None)
    assert label.run(rundir).skipped == ("label",)
    (rundir.dir / "knowledge.jsonl").unlink()
    assert label.run(rundir).ran == ("label",)
    assert (rundir.dir / "knowledge.jsonl").read_bytes() == knowledge

    # Build reads knowledge.jsonl alone: without the samples it still builds.
    (rundir.dir / "samples" / "train.jsonl").rename(rundir.dir / "samples.bak")
    assert build.run(rundir).ran == ("build/absolute", "build/multisample")
    assert (rundir.dir / "data" / "multisample.jsonl").stat().st_size > 0
    # Eval of a trained model before its training is an error naming what is missing.
    with pytest.raises(KnowboundError, match="train/absolute"):
        eval_stage.run(rundir)


def test_opening_a_run_leaves_its_manifest_header_until_something_is_computed(micro_world, tmp_path):
    import json

    cfg = parse_config({"name": "moved", "runs_dir": str(tmp_path), "seed": 0,
                        "model": {"world": "micro", "world_dir": str(micro_world), "threads": 1},
                        "probe": {"m": 2, "max_new_tokens": 8, "batch_size": 40}, "methods": ["absolute"]})
    run_loop(cfg, until="label", log=lambda _: None)
    manifest = tmp_path / "moved" / "manifest.json"
    here = json.loads(manifest.read_text())
    made_elsewhere = {**here, "model": "world:made-elsewhere", "versions": {"git": "another-commit"}}
    manifest.write_text(json.dumps(made_elsewhere))
    rundir = open_run(tmp_path / "moved", log=lambda _: None)
    assert label.run(rundir).skipped == ("label",)
    assert json.loads(manifest.read_text()) == made_elsewhere  # read and skipped: nothing claimed
    (rundir.dir / "knowledge.jsonl").unlink()
    assert label.run(rundir).ran == ("label",)
    after = json.loads(manifest.read_text())
    assert after["versions"] == here["versions"] and after["model"] == here["model"] != "world:made-elsewhere"
    assert after["stages"]["label"]["status"] == "done"


def test_a_world_set_that_does_not_exist_is_named_before_any_set_is_loaded(micro_world, tmp_path):
    cfg = parse_config({"name": "typo", "runs_dir": str(tmp_path),
                        "model": {"world": "micro", "world_dir": str(micro_world), "threads": 1},
                        "data": {"eval": {"test": {"source": "world:tset"}}}})
    with pytest.raises(KnowboundError, match=r"^set source 'world:tset': the knowledge world has no such set "
                                             r"\(known: fictional, paraphrase, popular, test, train;"):
        run_loop(cfg, until="questions", log=lambda _: None)
    assert not (tmp_path / "typo" / "questions" / "train.jsonl").exists()


def test_a_view_reads_only_declared_keys():
    cfg = parse_config({"probe": {"m": 3}, "method_train": {"dpo": {"lr": 1e-5}}})
    view = ConfigView(cfg, frozenset({"probe.m", "method_train.dpo", "seed"}), "test")
    assert (view.probe.m, view.seed, view.method_train.get("dpo")) == (3, 0, {"lr": 1e-5})
    for read in (lambda: view.probe.temperature, lambda: view.prompt, lambda: view.method_train.get("absolute")):
        with pytest.raises(UndeclaredRead):
            read()
