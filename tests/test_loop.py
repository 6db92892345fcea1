"""The whole loop on a miniature world: probe, label, build, train, eval, metrics, report."""

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from knowbound.config import parse_config
from knowbound.loop import run_loop

pytestmark = pytest.mark.model

METHODS = ["prompt", "absolute", "rtuning"]
# The baselines every run scores beside the methods (max-probability: the hf backend's log-probs).
BASELINES = ["always-abstain", "oracle", "exposure-rule", "max-probability", "self-consistency"]


@pytest.fixture(scope="module")
def world_root(micro_world):
    return micro_world


def mini_config(world_root: Path, runs: Path, name: str) -> dict:
    return {
        "name": name, "runs_dir": str(runs), "seed": 0,
        "model": {"world": "micro", "world_dir": str(world_root), "threads": 1},
        "probe": {"m": 4, "max_new_tokens": 16, "batch_size": 40},
        "methods": METHODS,
        "train": {"epochs": 4, "lr": 3e-3, "batch_size": 16, "max_length": 96, "logging_steps": 1000},
        "eval": {"max_new_tokens": 40, "bootstrap": 50},
    }


def artifacts(run_dir: Path) -> dict[str, bytes]:
    """Every file a stage writes, but the timing records and the config (it holds the run name)."""
    out = {}
    for path in sorted(run_dir.rglob("*")):
        rel = path.relative_to(run_dir).as_posix()
        if path.is_file() and not rel.startswith(("models/", "report")) and rel not in ("manifest.json", "config.yaml"):
            out[rel] = path.read_bytes()
    for path in sorted((run_dir / "models").rglob("*.safetensors")):
        out[path.relative_to(run_dir).as_posix()] = path.read_bytes()
    return out


def test_loop_aligns_and_reruns_skip_everything(world_root, tmp_path):
    cfg = parse_config(mini_config(world_root, tmp_path, "mini"))
    logs: list[str] = []
    run = run_loop(cfg, log=logs.append)
    metrics = json.loads((run.dir / "metrics.json").read_text())
    assert set(metrics) == {"unaligned", *METHODS, *BASELINES}
    assert set(metrics["absolute"]) == {"test", "paraphrase", "fictional", "popular"}

    def unseen_refusals(model):
        rows = [json.loads(line) for line in (run.dir / "predictions" / model / "test.jsonl").open()]
        unseen = [r for r in rows if r["meta"]["exposure"] == 0]
        return sum(r["label"] == "idk" for r in unseen) / len(unseen)

    assert unseen_refusals("absolute") > unseen_refusals("unaligned")
    assert metrics["absolute"]["fictional"]["refusal_rate"] > metrics["unaligned"]["fictional"]["refusal_rate"]
    rtuning = [json.loads(line) for line in (run.dir / "predictions" / "rtuning" / "test.jsonl").open()]
    assert all(0.0 <= r["confidence"] <= 1.0 for r in rtuning)
    assert (run.dir / "knowledge.jsonl").exists() and (run.dir / "data" / "absolute.jsonl").exists()
    assert (run.dir / "models" / "absolute" / "model.safetensors").exists()
    assert (run.dir / "report.html").exists()
    manifest = json.loads((run.dir / "manifest.json").read_text())
    assert manifest["versions"]["transformers"] and manifest["seed"] == 0
    assert all(rec["status"] == "done" for rec in manifest["stages"].values())

    before = artifacts(run.dir)
    logs.clear()
    run_loop(cfg, log=logs.append)
    # Every stage was skipped: none logged work, and every artifact is unchanged.
    assert not [line for line in logs if line.startswith(("probe", "train", "eval", "build", "label", "questions"))]
    assert artifacts(run.dir) == before

    # Adding an eval set to the finished run evaluates only that set, then rescores.
    grown = mini_config(world_root, tmp_path, "mini")
    grown["data"] = {"eval": {**{s: {"source": f"world:{s}"} for s in ("test", "paraphrase", "fictional", "popular")},
                              "extra": {"source": "world:test", "limit": 10}}}
    logs.clear()
    run_loop(parse_config(grown), log=logs.append)
    worked = [line for line in logs if line.startswith(("questions", "probe", "label", "build", "train", "eval"))]
    assert worked[0] == "questions: extra: 10 from world:test"
    assert sorted(": ".join(line.split(": ")[:2]) for line in worked[1:]) == sorted(
        [f"eval: {m} on extra" for m in ["unaligned", *METHODS]] + ["eval: samples on extra"])
    assert set(json.loads((run.dir / "metrics.json").read_text())["absolute"]) == {
        "test", "paraphrase", "fictional", "popular", "extra"}
    after = artifacts(run.dir)
    assert {k: v for k, v in after.items() if k in before and k != "metrics.json"} == {
        k: v for k, v in before.items() if k != "metrics.json"}


def _run_cli(config: Path, crash_at: str | None = None) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "KNOWBOUND_CRASH_AT"}
    if crash_at:
        env["KNOWBOUND_CRASH_AT"] = crash_at
    return subprocess.run([sys.executable, "-m", "knowbound", "run", str(config)], env=env,
                          capture_output=True, text=True, timeout=900)


def test_killed_run_resumes_to_the_same_artifacts(world_root, tmp_path):
    reference = tmp_path / "reference.yaml"
    reference.write_text(yaml.safe_dump(mini_config(world_root, tmp_path, "reference")))
    done = _run_cli(reference)
    assert done.returncode == 0, done.stderr

    killed = tmp_path / "killed.yaml"
    killed.write_text(yaml.safe_dump(mini_config(world_root, tmp_path, "killed")))
    manifest = tmp_path / "killed" / "manifest.json"
    # Kill once after the second optimiser step of the first model, and once while rtuning's
    # answers to the test set are in memory but not yet on disk.
    for crash_at, stage in (("train.step:2", "train/absolute"), ("eval/rtuning/test:1", "eval/rtuning/test")):
        proc = _run_cli(killed, crash_at)
        assert proc.returncode == -signal.SIGKILL, proc.stderr
        stages = json.loads(manifest.read_text())["stages"]
        assert stages[stage]["status"] == "running"
    assert not (tmp_path / "killed" / "predictions" / "rtuning" / "test.jsonl").exists()
    done = _run_cli(killed)
    assert done.returncode == 0, done.stderr
    assert artifacts(tmp_path / "killed") == artifacts(tmp_path / "reference")


def test_a_served_model_is_probed_over_http_and_its_pik_head_reads_hf_states(world_root, tmp_path):
    """model.backend=openai: the unaligned model answers through a real HTTP server (here the world's
    chat model behind knowbound's test server); the P(IK) head still needs hidden states, which it
    reads through hf on the same model, and max-probability (log-probs) is left out."""
    from knowbound.backends import get_backend
    from knowbound.testing.server import ChatServer
    from knowbound.world.build import build_world
    from knowbound.world.config import preset

    chat = build_world(preset("micro"), world_root, log=lambda _: None).chat_model
    config = mini_config(world_root, tmp_path, "served")
    config["methods"] = ["pik"]
    config["data"] = {"train": {"source": "world:train", "limit": 60},
                      "eval": {"test": {"source": "world:test", "limit": 30}}}
    with ChatServer(backend=get_backend("hf", model=str(chat), threads=1)) as server:
        config["model"].update(backend="openai", base_url=server.base_url, extra_body={"top_k": 0})
        logs: list[str] = []
        run = run_loop(parse_config(config), log=logs.append)
        requests = list(server.requests)
    assert requests and all(body["top_k"] == 0 for body in requests)
    metrics = json.loads((run.dir / "metrics.json").read_text())
    assert "pik" in metrics and "max-probability" not in metrics
    assert any(line.startswith("eval: baseline max-probability left out: a server need not") for line in logs)
    head = json.loads((run.dir / "models" / "pik" / "pik_head.json").read_text())
    rows = [json.loads(line) for line in (run.dir / "predictions" / "pik" / "test.jsonl").read_text().splitlines()]
    assert len(rows) == 30
    graded = [r for r in rows if r["confidence"] is not None]
    assert graded and all(0.0 <= r["confidence"] <= 1.0 for r in graded)
    assert all((r["label"] == "idk") == (r["confidence"] < head["threshold"]) for r in graded)


def test_answers_that_fail_in_eval_leave_it_not_done_and_a_rerun_asks_again(world_root, tmp_path):
    """A server that goes down after the probe: eval is an error naming the failures, not a done
    output that scores them as missing answers; back up, the same command finishes it."""
    from knowbound.backends import get_backend
    from knowbound.errors import KnowboundError
    from knowbound.testing.server import ChatServer, Faults
    from knowbound.world.build import build_world
    from knowbound.world.config import preset

    chat = build_world(preset("micro"), world_root, log=lambda _: None).chat_model
    config = mini_config(world_root, tmp_path, "down")
    config["methods"] = ["prompt"]
    config["data"] = {"train": {"source": "world:train", "limit": 20},
                      "eval": {"test": {"source": "world:test", "limit": 10}}}
    config["eval"] = {**config["eval"], "baselines": ["oracle", "self-consistency"], "consistency_samples": 2}
    with ChatServer(backend=get_backend("hf", model=str(chat), threads=1)) as server:
        config["model"].update(backend="openai", base_url=server.base_url)
        cfg = parse_config(config)
        run_loop(cfg, until="label", log=lambda _: None)
        server.faults = Faults(fail_every=1, fail_status=401)  # every request refused from here on
        with pytest.raises(KnowboundError, match=r"^eval: .*: 10 of 10 answers failed \(HTTP 401"):
            run_loop(cfg, log=lambda _: None)
        manifest = json.loads((tmp_path / "down" / "manifest.json").read_text())["stages"]
        assert manifest["eval/unaligned/test"]["status"] == "running"
        assert "metrics" not in manifest
        server.faults = Faults()
        run = run_loop(cfg, log=lambda _: None)
    rows = [json.loads(line) for line in (run.dir / "predictions" / "unaligned" / "test.jsonl").read_text().splitlines()]
    assert len(rows) == 10 and all(r["label"] is not None and "error" not in r for r in rows)
    assert json.loads((run.dir / "metrics.json").read_text())["unaligned"]["test"]["failed"] == 0


def test_a_pik_head_with_samples_learns_from_them_and_is_scored_on_greedy_answers(world_root, tmp_path):
    """build.pik_samples: the head's data holds each question's probe samples after its greedy
    answer; the head competes sample-weighted candidates, and its threshold is fitted on the
    greedy answers alone. Turning it on redoes the head and what reads it, nothing else."""
    config = mini_config(world_root, tmp_path, "samples")
    config["methods"] = ["pik"]
    config["data"] = {"train": {"source": "world:train", "limit": 60},
                      "eval": {"test": {"source": "world:test", "limit": 30}}}
    plain = run_loop(parse_config(config), log=lambda _: None)
    plain_data = (plain.dir / "data" / "pik.jsonl").read_text().splitlines()
    plain_head = json.loads((plain.dir / "models" / "pik" / "pik_head.json").read_text())
    config["build"] = {"pik_samples": True}
    logs: list[str] = []
    run = run_loop(parse_config(config), log=logs.append)
    ran = {key for result in run.results.values() for key in result.ran}
    assert {"build/pik", "train/pik", "eval/pik/test"} <= ran
    assert not ran & {"probe", "label", "eval/unaligned/test", "build/unaligned"}
    data = [json.loads(line) for line in (run.dir / "data" / "pik.jsonl").read_text().splitlines()]
    greedy = [r for r in data if not r.get("sample")]
    assert len(greedy) == 60 and len(data) == 60 * 5  # greedy + m = 4 samples each
    head = json.loads((run.dir / "models" / "pik" / "pik_head.json").read_text())
    assert head["fit"]["n"] == 60
    assert sum("samples weighted" in k for k in head["fit"]["oof_auroc_by_features"]) == 9
    assert any("features of 60 greedy and 240 sampled answers" in line for line in logs)
    # The same run without the key offered the head no sample candidate.
    assert plain.dir == run.dir and 60 == sum(1 for _ in plain_data)
    assert not any("samples" in k for k in plain_head["fit"]["oof_auroc_by_features"])


def test_a_pik_head_with_entity_features_reads_the_asked_name(world_root, tmp_path, monkeypatch):
    """build.pik_entity: the head's rows carry the question's meta.name, the train stage appends
    the model's surprise at that name to each row's features and competes every candidate with
    them, and the eval stage computes the same two features for each answer when the head reads
    them. Turning it on redoes the head and what reads it, nothing else; a key the questions lack
    is an error naming the question and the field."""
    import numpy as np

    import knowbound.pik
    from knowbound.backends import open_backend
    from knowbound.errors import KnowboundError
    from knowbound.pik import PikHead
    from knowbound.prompts import render_prompt

    config = mini_config(world_root, tmp_path, "entity")
    config["methods"] = ["pik"]
    config["data"] = {"train": {"source": "world:train", "limit": 60},
                      "eval": {"test": {"source": "world:test", "limit": 30}}}
    run_loop(parse_config(config), log=lambda _: None)
    fitted: list[tuple[np.ndarray, str | None]] = []
    fit_head = knowbound.pik.fit_head

    swaps: list = []

    def recording_fit_head(x, *args, **kwargs):
        fitted.append((x, kwargs.get("entity_key")))
        swaps.append(kwargs.get("swap"))
        return fit_head(x, *args, **kwargs)

    monkeypatch.setattr(knowbound.pik, "fit_head", recording_fit_head)
    config["build"] = {"pik_entity": "name"}
    run = run_loop(parse_config(config), log=lambda _: None)
    ran = {key for result in run.results.values() for key in result.ran}
    assert {"build/pik", "train/pik", "eval/pik/test"} <= ran
    assert not ran & {"probe", "label", "eval/unaligned/test"}
    data = [json.loads(line) for line in (run.dir / "data" / "pik.jsonl").read_text().splitlines()]
    questions = {q["id"]: q for q in map(json.loads, (run.dir / "questions" / "train.jsonl").read_text().splitlines())}
    assert len(data) == 60 and all(r["entity"] == questions[r["question_id"]]["meta"]["name"] for r in data)
    # The head was fitted on the answer's features followed by the name's, with the key.
    backend = open_backend("hf", run.model_path, model_settings=run.cfg.model)
    (x, key), = fitted
    surprise = np.array(backend.entity_logprobs([r["prompt"] for r in data], [r["entity"] for r in data]))
    assert key == "name" and np.allclose(x[:, -2:], surprise) and surprise[:, 0].std() > 0
    head = json.loads((run.dir / "models" / "pik" / "pik_head.json").read_text())
    by_features = head["fit"]["oof_auroc_by_features"]
    assert sum(k.startswith("log-probabilities + entity surprise, l2") for k in by_features) == 1
    assert sum("entity surprise" in k for k in by_features) == 6  # 4 + 2 with pairwise products
    # It records the key exactly when it reads the last two columns.
    assert head["entity_key"] == ("name" if head["columns"][-1] >= x.shape[1] - 2 else None)
    # A head that reads only the name's surprise: the eval stage computes it for each answer.
    width = x.shape[1]
    PikHead(threshold=0.5, fit=head["fit"], columns=[width - 2, width - 1], entity_key="name",
            members=[{"mean": [0.0, 0.0], "std": [1.0, 1.0], "weights": [0.5, 0.25], "bias": 3.0}]).save(
        run.dir / "models" / "pik")
    (run.dir / "predictions" / "pik" / "test.jsonl").unlink()
    run = run_loop(parse_config(config), log=lambda _: None)
    rows = [json.loads(line) for line in (run.dir / "predictions" / "pik" / "test.jsonl").read_text().splitlines()]
    graded = [r for r in rows if r["confidence"] is not None]
    assert len(rows) == 30 and graded
    tests = {q.id: q for q in run.questions("test")}
    prompts = [render_prompt(run.cfg.prompt, tests[r["id"]]) for r in graded]
    pair = np.array(backend.entity_logprobs(prompts, [tests[r["id"]].meta["name"] for r in graded]))
    expected = 1 / (1 + np.exp(-(pair @ [0.5, 0.25] + 3.0)))
    assert np.allclose([r["confidence"] for r in graded], expected, atol=1e-6) and expected.std() > 0.01
    assert all((r["label"] == "idk") == (r["confidence"] < 0.5) for r in graded)
    # build.pik_swaps: the train stage appends the contrast, over the training names' surnames with
    # the run's seed; the build is kept.
    from knowbound.pik import entity_features, swap_tails

    config["build"] = {"pik_entity": "name", "pik_swaps": 2}
    run = run_loop(parse_config(config), log=lambda _: None)
    ran = {key for result in run.results.values() for key in result.ran}
    assert {"train/pik", "eval/pik/test"} <= ran and "build/pik" not in ran
    x3, key = fitted[-1]
    pool = swap_tails([r["entity"] for r in data])
    assert swaps[-1] == (pool, 2, run.cfg.seed) and len(pool) > 2
    block = entity_features(backend, [r["prompt"] for r in data], [r["answer"] for r in data],
                            [r["entity"] for r in data], pool, 2, run.cfg.seed)
    assert key == "name" and x3.shape[1] == x.shape[1] + 1 and np.allclose(x3[:, -3:], block)
    assert block[:, 2].std() > 0
    # A head that reads only the contrast: the eval stage draws the same tails for each answer.
    width = x3.shape[1]
    PikHead(threshold=0.5, fit=head["fit"], columns=[width - 1], entity_key="name", swap_tails=pool, swaps=2,
            swap_seed=run.cfg.seed,
            members=[{"mean": [0.0], "std": [1.0], "weights": [1.0], "bias": 0.5}]).save(run.dir / "models" / "pik")
    (run.dir / "predictions" / "pik" / "test.jsonl").unlink()
    run = run_loop(parse_config(config), log=lambda _: None)
    rows = [json.loads(line) for line in (run.dir / "predictions" / "pik" / "test.jsonl").read_text().splitlines()]
    graded = [r for r in rows if r["confidence"] is not None]
    answers = {r["id"]: r["pred_text"] for r in
               map(json.loads, (run.dir / "predictions" / "unaligned" / "test.jsonl").read_text().splitlines())}
    contrast = entity_features(backend, prompts, [answers[r["id"]] for r in graded],
                               [tests[r["id"]].meta["name"] for r in graded], pool, 2, run.cfg.seed)[:, 2]
    assert np.allclose([r["confidence"] for r in graded], 1 / (1 + np.exp(-(contrast + 0.5))), atol=1e-6)
    assert contrast.std() > 0
    config["build"] = {"pik_entity": "nickname"}
    with pytest.raises(KnowboundError, match=r"question train-\S+: build.pik_entity reads meta.nickname"):
        run_loop(parse_config(config), log=lambda _: None)
