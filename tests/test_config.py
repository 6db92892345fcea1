"""The run config: YAML, overrides, typed errors that name the file and the key."""

from pathlib import Path

import pytest

from knowbound.config import config_hash, dump_config, load_config, parse_config
from knowbound.errors import DataError, KnowboundError
from knowbound.loop.train import method_train_config

ROOT = Path(__file__).resolve().parents[1]


def test_shipped_configs_load():
    demo = load_config(ROOT / "configs" / "demo.yaml")
    assert demo.model.world == "v2" and demo.probe.m == 10 and demo.build.tau == 0.1
    assert list(demo.data.eval) == ["test", "paraphrase", "fictional", "unstated", "popular"]
    assert demo.methods[0] == "sft-baseline" and demo.methods[-1] == "pik"
    assert demo.eval.max_accuracy_drop == 0.03 and demo.build.known_rule == "official"
    paper = load_config(ROOT / "configs" / "paper-triviaqa.yaml")
    assert paper.build.select == 8000 and paper.build.balance is True
    assert paper.train.lora is not None and paper.train.lora.r == 16
    # make demo-real trains on train-more; ABSOLUTE for one epoch (as many steps as two on train).
    real = load_config(ROOT / "configs" / "smollm2-facts.yaml")
    assert real.data.train.source == "geofacts:train-more" and real.methods == ("prompt", "absolute", "pik")
    assert method_train_config(real, "absolute").epochs == 1 and method_train_config(real, "pik").epochs == 2


def test_overrides_and_method_train():
    cfg = parse_config({"train": {"lr": 0.001}, "method_train": {"dpo": {"lr": 1e-5, "dpo_beta": 0.2}}},
                       overrides=["probe.m=5", "methods=[absolute, dpo]", "build.tau=0.3"])
    assert (cfg.probe.m, cfg.methods, cfg.build.tau) == (5, ("absolute", "dpo"), 0.3)
    dpo = method_train_config(cfg, "dpo")
    assert (dpo.kind, dpo.lr, dpo.dpo_beta, dpo.seed) == ("dpo", 1e-5, 0.2, 0)
    assert method_train_config(cfg, "absolute").lr == 0.001
    # the dump is itself a valid config that resolves to the same thing
    import yaml

    assert config_hash(parse_config(yaml.safe_load(dump_config(cfg)))) == config_hash(cfg)


def test_errors_name_file_and_key(tmp_path):
    bad = tmp_path / "run.yaml"
    bad.write_text("probe:\n  mm: 3\n")
    with pytest.raises(DataError) as exc:
        load_config(bad)
    assert str(exc.value).startswith(f"{bad}:2: field 'probe.mm': unknown key")
    bad.write_text("name: x\nprobe:\n  m: three\n")
    with pytest.raises(DataError, match=r":3: field 'probe.m': expected int"):
        load_config(bad)
    bad.write_text("probe: [1, 2\n")
    with pytest.raises(DataError, match=r"invalid YAML") as exc:
        load_config(bad)
    assert exc.value.line is not None
    with pytest.raises(KnowboundError, match="not key=value"):
        parse_config({}, overrides=["probe.m"])


def test_an_error_from_an_override_names_the_override_not_the_file(tmp_path):
    path = tmp_path / "run.yaml"
    path.write_text("name: x\nprobe:\n  m: 4\n  temperature: hot\n")
    with pytest.raises(DataError) as exc:  # the file's own mistake still names its line
        load_config(path, ["probe.m=5"])
    assert str(exc.value).startswith(f"{path}:4: field 'probe.temperature': expected float")
    path.write_text("name: x\nprobe:\n  m: 4\n")
    with pytest.raises(DataError) as exc:
        load_config(path, ["probe.m=five"])
    assert str(exc.value) == "--set probe.m=five: field 'probe.m': expected int, got 'five'"
    with pytest.raises(DataError, match=r"^--set probe.mm=5: field 'probe.mm': unknown key"):
        load_config(path, ["probe.mm=5"])
    with pytest.raises(DataError, match=r"^--set method_train=\{dpo: \{lrr: 1\}\}: field 'method_train.dpo.lrr'"):
        load_config(path, ["method_train={dpo: {lrr: 1}}"])
    with pytest.raises(DataError, match=r"^--set probe.m=\[1: field 'probe.m': invalid YAML value"):
        load_config(path, ["probe.m=[1"])
    # method_train is checked when the config is read, not stages later when its method trains
    path.write_text("name: x\nmethod_train:\n  dpo:\n    lr: 1.0e-5\n    epochz: 2\n")
    with pytest.raises(DataError) as exc:
        load_config(path)
    assert str(exc.value).startswith(f"{path}:5: field 'method_train.dpo.epochz': unknown key")


def test_a_float_in_exponent_notation_without_a_dot_is_a_float(tmp_path):
    # YAML 1.1 (PyYAML) reads 1e-3 as a string; users write it, in files and in --set
    path = tmp_path / "run.yaml"
    path.write_text("name: x\ntrain:\n  lr: 1e-3\n")
    cfg = load_config(path, ["eval.max_accuracy_drop=3E-2", "method_train={dpo: {lr: 5e-6}}"])
    assert (cfg.train.lr, cfg.eval.max_accuracy_drop) == (0.001, 0.03)
    assert config_hash(cfg) == config_hash(load_config(path, ["eval.max_accuracy_drop=0.03",
                                                              "method_train={dpo: {lr: 5e-6}}"]))
    assert config_hash(cfg) != config_hash(load_config(path, ["eval.max_accuracy_drop=0.04",
                                                              "method_train={dpo: {lr: 5e-6}}"]))
    assert method_train_config(cfg, "dpo").lr == 5e-6
    with pytest.raises(DataError, match=r"field 'train.lr': expected float, got '1e-3x'"):
        parse_config({"train": {"lr": "1e-3x"}})


def test_a_bounded_key_names_its_field_and_bound(tmp_path):
    path = tmp_path / "run.yaml"
    path.write_text("name: x\neval:\n  max_accuracy_drop: 0.03\n  budget_confidence: 1.0\n")
    with pytest.raises(DataError) as err:
        load_config(path)
    assert (err.value.line, err.value.field) == (4, "eval.budget_confidence")
    assert "must be below 1.0, got 1.0" in str(err.value)
    with pytest.raises(DataError, match="must be at least 0.5, got 0.3"):
        parse_config({"eval": {"budget_confidence": 0.3}})
    assert parse_config({"eval": {"budget_confidence": 0.9}}).eval.budget_confidence == 0.9
    assert parse_config({}).eval.budget_confidence is None


def test_cli_reports_a_bad_config_in_one_line(tmp_path):
    import subprocess
    import sys

    bad = tmp_path / "run.yaml"
    bad.write_text("name: x\ntrain:\n  epochs: 2\n  lrr: 0.1\n")
    out = subprocess.run([sys.executable, "-m", "knowbound", "run", str(bad)], capture_output=True, text=True)
    assert out.returncode == 1
    assert out.stderr.strip().splitlines() == [f"error: {bad}:4: field 'train.lrr': unknown key "
                                               "(known: " + out.stderr.split("(known: ")[1].strip()]
    assert "Traceback" not in out.stderr


def test_choice_keys_name_the_line_of_an_unknown_value(tmp_path):
    path = tmp_path / "run.yaml"
    path.write_text("name: x\nbuild:\n  known_rule: sometimes\n")
    with pytest.raises(DataError) as err:
        load_config(path)
    assert (err.value.line, err.value.field) == (3, "build.known_rule")
    assert "unknown value 'sometimes' (known: official, samples)" in str(err.value)
    with pytest.raises(DataError, match="unknown value 'magic'"):
        parse_config({"eval": {"baselines": ["oracle", "magic"]}})
