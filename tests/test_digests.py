"""Each stage's digest covers exactly what the stage reads: change one config key, and exactly the
outputs that depend on it are redone (docs/run-directory.md)."""

from __future__ import annotations

import copy
import fnmatch

import pytest

from knowbound.config import parse_config, to_dict
from knowbound.loop import prepare
from knowbound.loop.rundir import stage_digests

pytestmark = pytest.mark.model

SETS = ("test", "paraphrase", "fictional", "popular")
METHODS = ["prompt", "absolute", "rtuning"]  # one prompt-only method, two trained ones
BASELINES = ["always-abstain", "oracle", "exposure-rule", "max-probability", "self-consistency"]


def base_config(world_dir, runs_dir) -> dict:
    return {
        "name": "digests", "runs_dir": str(runs_dir), "seed": 0,
        "model": {"world": "micro", "world_dir": str(world_dir), "threads": 1},
        "data": {"train": {"source": "world:train"}, "eval": {s: {"source": f"world:{s}"} for s in SETS}},
        "probe": {"m": 4, "max_new_tokens": 16, "batch_size": 40},
        "methods": METHODS,
        "train": {"epochs": 4, "lr": 3e-3, "batch_size": 16, "max_length": 96, "logging_steps": 1000},
        "eval": {"max_new_tokens": 40, "bootstrap": 50},
    }


# Groups of stage outputs, as glob patterns over the digests' keys.
FROM_PROBE = ["probe", "label", "build/*", "train/*", "eval/*", "metrics", "report"]
TRAINED_ON = ["build/*", "train/*", "eval/absolute/*", "eval/rtuning/*", "metrics", "report"]
FITTED = ["eval/exposure-rule/*", "eval/max-probability/*", "eval/self-consistency/*"]  # fitted on the probe
PROBE_ON = ["probe", "label", *TRAINED_ON, *FITTED]
SAMPLES = ["eval/samples/*"]  # the unaligned model's samples for self-consistency
SCORES = ["metrics", "report"]
# Every eval output that reads the unaligned model's answers (all but the samples and the fits).
ANSWERS = ["eval/unaligned/*", "eval/prompt/*", "eval/absolute/*", "eval/rtuning/*", "eval/always-abstain/*",
           "eval/oracle/*", *(f"eval/{b}/[!_]*" for b in ("exposure-rule", "max-probability", "self-consistency"))]

# Every config key: the value it is changed to, and the outputs that must be redone.
CASES: dict[str, tuple[object, list[str]]] = {
    "name": ("other", []),
    "runs_dir": ("<tmp>/elsewhere", []),
    "seed": (1, PROBE_ON + SAMPLES),  # greedy answers of the unaligned model use no seed
    "prompt": ("honest", FROM_PROBE),
    "grading": ("paper", ["label", "build/*", "train/*", *ANSWERS, *FITTED, *SCORES]),
    "model.path": ("/nowhere", []),  # ignored while model.world is set
    "model.world_dir": ("<tmp>/worlds2", []),  # the same world, rebuilt elsewhere: identical files
    "model.backend": ("openai", FROM_PROBE),
    "model.base_url": ("http://127.0.0.1:9/v1", FROM_PROBE),
    "model.api_key_env": ("OTHER_KEY", []),
    "model.prompt_format": ("plain", FROM_PROBE),
    "model.dtype": ("float32", FROM_PROBE),
    "model.device": ("cpu", []),
    "model.max_batch_size": (7, []),
    "model.threads": (2, []),
    "model.gguf_file": ("other.gguf", []),  # ignored while model.world is set
    "model.stop": (["\n"], FROM_PROBE),
    "model.extra_body": ({"top_k": 0}, []),  # request fields of a server backend: an hf run sends none
    "data.train.source": ("world:popular", ["questions/train", *PROBE_ON]),
    "data.train.adapter": ("knowbound", ["questions/train", *PROBE_ON]),
    "data.train.split": ("train", ["questions/train", *PROBE_ON]),
    "data.train.limit": (50, ["questions/train", *PROBE_ON]),
    "data.train.role": ("in-domain", []),  # a role only changes the report's summary, of eval sets
    **{f"data.eval.{s}.role": ("known", ["report"]) for s in SETS},
    **{f"data.eval.{s}.{k}": (v, [f"questions/{s}", f"eval/*/{s}", *SCORES]) for s in SETS
       for k, v in (("source", "world:train"), ("adapter", "knowbound"), ("split", "test"), ("limit", 9))},
    "probe.m": (3, PROBE_ON + SAMPLES),
    "probe.temperature": (0.7, PROBE_ON + SAMPLES),
    "probe.top_p": (0.9, PROBE_ON + SAMPLES),
    "probe.max_new_tokens": (12, PROBE_ON + SAMPLES),
    "probe.prompt_variants": (["bare"], PROBE_ON),
    "probe.batch_size": (8, []),
    "probe.adaptive": (True, PROBE_ON),  # an adaptive probe draws other samples: all that follows changes
    "probe.round_size": (3, []),  # read only by an adaptive probe (knowbound.adaptive)
    "probe.confidence": (0.9, []),
    "build.tau": (0.3, TRAINED_ON),
    "build.select": (20, TRAINED_ON),
    "build.balance": (True, TRAINED_ON),
    "build.balance_within": ("person", TRAINED_ON),
    "build.multisample_max": (2, []),  # only multisample reads it, and this run has none
    "build.known_rule": ("samples", TRAINED_ON),  # absolute and rtuning read it
    "build.confidence_target": ("samples", []),  # only the CONFIDENCE methods read it
    "build.pik_samples": (True, []),  # only pik reads it (tests/test_loop.py runs one)
    "build.pik_entity": ("name", []),  # only pik reads it (tests/test_loop.py runs one)
    "build.pik_swaps": (3, []),  # read only with build.pik_entity
    "methods": (METHODS + ["confidence-num"], ["build/confidence-num", "train/confidence-num",
                                               "eval/confidence-num/*", *SCORES]),
    **{f"train.{k}": (v, ["train/*", "eval/absolute/*", "eval/rtuning/*", *SCORES]) for k, v in (
        ("epochs", 2.0), ("lr", 1e-3), ("batch_size", 8), ("grad_accum", 2), ("warmup_ratio", 0.0),
        ("scheduler", "linear"), ("weight_decay", 0.1), ("max_length", 64), ("qlora", True),
        ("lora", {"r": 4}), ("freeze_embeddings", True), ("precision", "bf16"), ("extra", {"max_grad_norm": 0.5}))},
    "train.kind": ("dpo", []),  # each method sets its own kind
    "train.seed": (5, []),  # the run's seed is used
    "train.logging_steps": (1, []),
    "train.dpo_beta": (0.5, []),  # no DPO method in this run
    "train.sft_weight": (1.0, []),
    # No GRPO method in this run (tests/test_grpo.py checks a run with one).
    "train.grpo_generations": (4, []),
    "train.grpo_max_new_tokens": (16, []),
    "train.grpo_beta": (0.04, []),
    "train.grpo_init": ("unaligned", []),
    "train.grpo_threshold": (0.25, []),
    "method_train": ({"absolute": {"epochs": 1}}, ["train/absolute", "eval/absolute/*", *SCORES]),
    "eval.max_new_tokens": (20, ANSWERS + SCORES),
    "eval.bootstrap": (10, SCORES),
    "eval.ece_bins": (5, SCORES),
    # Fewer baselines: the others' outputs are gone (their digests differ: they are absent).
    "eval.baselines": (["oracle"], [f"eval/{b}/*" for b in BASELINES if b != "oracle"] + SAMPLES + SCORES),
    "eval.consistency_samples": (3, SAMPLES + ["eval/self-consistency/*", *SCORES]),
    "eval.max_accuracy_drop": (0.03, ["eval/rtuning/*", *FITTED, *SCORES]),
    "eval.budget_confidence": (0.9, []),  # read only with eval.max_accuracy_drop (below)
}


def leaf_keys(data: dict, prefix: str = "") -> set[str]:
    out = set()
    for key, value in data.items():
        if isinstance(value, dict) and value and key not in ("extra",):
            out |= leaf_keys(value, f"{prefix}{key}.")
        else:
            out.add(prefix + key)
    return out


def set_key(data: dict, dotted: str, value) -> None:
    *parents, last = dotted.split(".")
    for key in parents:
        data = data.setdefault(key, {})
    data[last] = value


@pytest.fixture(scope="module")
def base(micro_world, tmp_path_factory):
    root = tmp_path_factory.mktemp("digests")
    config = base_config(micro_world, root / "runs")
    return root, config, prepare(parse_config(config), log=lambda _: None).digests


def digests_with(root, config: dict, key: str, value) -> dict[str, str]:
    changed = copy.deepcopy(config)
    if isinstance(value, str) and value.startswith("<tmp>"):
        value = str(root / value.removeprefix("<tmp>/"))
    set_key(changed, key, value)
    return prepare(parse_config(changed), log=lambda _: None).digests


def test_every_config_key_has_a_case(base):
    _, config, _ = base
    keys = leaf_keys(to_dict(parse_config(config)))
    # model.world and model.world_seed pick the model itself: test_another_model_redoes_... below.
    missing = sorted(keys - set(CASES) - {"model.world", "model.world_seed"})
    assert not missing, f"config keys with no digest case: {missing}"


@pytest.mark.parametrize("key", sorted(CASES))
def test_a_changed_key_redoes_exactly_what_reads_it(base, key):
    root, config, before = base
    value, patterns = CASES[key]
    after = digests_with(root, config, key, value)
    redone = {k for k in before.keys() | after.keys() if before.get(k) != after.get(k)}
    expected = {k for k in before.keys() | after.keys() if any(fnmatch.fnmatchcase(k, p) for p in patterns)}
    assert redone == expected


def test_adding_an_eval_set_evaluates_only_that_set(base):
    root, config, before = base
    after = digests_with(root, config, "data.eval.extra", {"source": "world:test", "limit": 5})
    assert set(after) - set(before) == {"questions/extra", "eval/samples/extra",
                                        *(f"eval/{m}/extra" for m in ["unaligned", *METHODS, *BASELINES])}
    assert {k for k in before if before[k] != after[k]} == {"metrics", "report"}


def test_another_model_redoes_everything_but_loading_question_files(base):
    root, config, before = base
    run = prepare(parse_config(config), log=lambda _: None)
    run.model_id = "world:another"
    after = stage_digests(run)
    assert {k for k in before if before[k] != after[k]} == {k for k in before if not k.startswith("questions/")}


def test_editing_a_question_file_in_place_redoes_what_reads_it(base, tmp_path):
    root, config, _ = base
    qfile = tmp_path / "extra.jsonl"
    qfile.write_text('{"id": "1", "question": "Capital of France?", "answers": ["Paris"]}\n')
    spec = {"source": str(qfile), "adapter": "knowbound"}
    first = digests_with(root, config, "data.eval.extra", spec)
    qfile.write_text('{"id": "1", "question": "Capital of France?", "answers": ["Paris", "Paname"]}\n')
    second = digests_with(root, config, "data.eval.extra", spec)
    assert {k for k in first if first[k] != second[k]} == {
        "questions/extra", "eval/samples/extra", *(f"eval/{m}/extra" for m in ["unaligned", *METHODS, *BASELINES]),
        "metrics", "report"}


def test_a_server_backends_request_fields_redo_what_the_server_answers(base):
    root, config, _ = base
    served = copy.deepcopy(config)
    served["model"].update(backend="openai", base_url="http://127.0.0.1:9/v1")
    before = prepare(parse_config(served), log=lambda _: None).digests
    after = digests_with(root, served, "model.extra_body", {"top_k": 0, "min_p": 0.0})
    redone = {k for k in before if before[k] != after[k]}
    assert redone == {k for k in before if any(fnmatch.fnmatchcase(k, p) for p in FROM_PROBE)}


# The P(IK) head's keys, on a run with pik: each redoes the head's outputs only, and only when the
# keys they depend on are set (the base run above has no pik, so its cases cannot show this).
PIK_OUTPUTS = ["build/pik", "train/pik", "eval/pik/*", *SCORES]
HEAD_OUTPUTS = ["train/pik", "eval/pik/*", *SCORES]


@pytest.mark.parametrize(("before", "change", "patterns"), [
    ({}, {"pik_swaps": 3}, []),  # the contrast without the entity: nothing reads it
    ({}, {"pik_entity": "name"}, PIK_OUTPUTS),
    ({}, {"pik_samples": True}, PIK_OUTPUTS),
    ({"pik_entity": "name"}, {"pik_swaps": 3}, HEAD_OUTPUTS),
    ({"pik_entity": "name", "pik_swaps": 3}, {"pik_swaps": 4}, HEAD_OUTPUTS),
])
def test_the_heads_keys_redo_only_the_head(base, before, change, patterns):
    root, config, _ = base
    config = copy.deepcopy(config)
    config["methods"] = [*METHODS, "pik"]
    config["build"] = dict(before)
    first = prepare(parse_config(config), log=lambda _: None).digests
    config["build"] = {**before, **change}
    second = prepare(parse_config(config), log=lambda _: None).digests
    redone = {k for k in first.keys() | second.keys() if first.get(k) != second.get(k)}
    assert redone == {k for k in first if any(fnmatch.fnmatchcase(k, p) for p in patterns)}
    if patterns:
        assert "train/pik" in redone and not redone & {"probe", "label", "build/absolute", "train/absolute"}


@pytest.mark.parametrize(("before", "patterns"), [
    ({}, []),  # without a budget the confidence changes nothing
    ({"max_accuracy_drop": 0.03}, [*HEAD_OUTPUTS, "eval/rtuning/*", *FITTED]),
])
def test_the_budget_s_confidence_redoes_every_fitted_threshold(base, before, patterns):
    """eval.budget_confidence: the head's, R-Tuning's and the fitted baselines' thresholds, and
    what reads them, only where the run has a budget."""
    root, config, _ = base
    config = copy.deepcopy(config)
    config["methods"] = [*METHODS, "pik"]
    config["eval"] = {**config["eval"], **before}
    first = prepare(parse_config(config), log=lambda _: None).digests
    config["eval"]["budget_confidence"] = 0.9
    second = prepare(parse_config(config), log=lambda _: None).digests
    redone = {k for k in first.keys() | second.keys() if first.get(k) != second.get(k)}
    assert redone == {k for k in first if any(fnmatch.fnmatchcase(k, p) for p in patterns)}
