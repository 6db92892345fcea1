"""Portable CPU kernels (knowbound.cpu): what importing knowbound sets, what it keeps, and how worlds
built with other kernels are kept apart."""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys

import pytest

from knowbound import cpu
from knowbound.errors import KnowboundError
from knowbound.world.config import preset


@pytest.fixture
def clean_env(monkeypatch):
    for key in (*cpu.PORTABLE_ENV, cpu.ENV):
        monkeypatch.delenv(key, raising=False)
    return monkeypatch


def test_pin_sets_every_variable_the_user_has_not(clean_env):
    clean_env.setenv("MKL_CBWR", "COMPATIBLE")
    done = cpu.pin()
    assert done == {"ATEN_CPU_CAPABILITY": "avx2", "MKL_ENABLE_INSTRUCTIONS": "AVX2", "ONEDNN_MAX_CPU_ISA": "AVX2",
                    "OPENBLAS_CORETYPE": "Haswell"}
    assert os.environ["MKL_CBWR"] == "COMPATIBLE"
    assert os.environ["ATEN_CPU_CAPABILITY"] == "avx2"
    assert cpu.mode() == "portable"


def test_native_mode_sets_nothing(clean_env):
    clean_env.setenv(cpu.ENV, "Native")
    assert cpu.pin() == {}
    assert not any(key in os.environ for key in cpu.PORTABLE_ENV)
    assert cpu.mode() == "native"
    # (cpu.summary() is not called here: asking torch for its kernels fixes them for the process.)


def test_an_unknown_mode_names_the_variable(clean_env):
    clean_env.setenv(cpu.ENV, "fast")
    with pytest.raises(KnowboundError, match="KNOWBOUND_CPU='fast': expected one of portable, native"):
        cpu.mode()


def test_worlds_built_with_native_kernels_keep_their_old_cache_key(clean_env):
    from knowbound.world.generator import language_lines

    cfg = preset("v2")
    legacy = __import__("hashlib").sha256(json.dumps([cfg.to_dict(), language_lines()], sort_keys=True)
                                          .encode()).hexdigest()[:12]
    portable = cfg.hash()
    clean_env.setenv(cpu.ENV, "native")
    assert cfg.hash() == legacy
    assert portable != legacy and len(portable) == 12


@pytest.mark.skipif(platform.machine() not in ("x86_64", "AMD64"), reason="the AVX2 kernels are x86-64's")
def test_importing_knowbound_makes_torch_compute_with_avx2_kernels(clean_env):
    code = ("import knowbound, torch, json; from knowbound import cpu; "
            "print(json.dumps([torch.backends.cpu.get_cpu_capability(), cpu.describe()]))")
    env = {k: v for k, v in os.environ.items() if k not in (*cpu.PORTABLE_ENV, cpu.ENV)}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    capability, described = json.loads(out.stdout.strip().splitlines()[-1])
    assert capability == "AVX2"
    assert described == {"mode": "portable", "torch_capability": "AVX2",
                         "env": {"ATEN_CPU_CAPABILITY": "avx2", "MKL_CBWR": "AVX2,STRICT",
                                 "MKL_ENABLE_INSTRUCTIONS": "AVX2", "ONEDNN_MAX_CPU_ISA": "AVX2",
                                 "OPENBLAS_CORETYPE": "Haswell"}}
    # Opting out leaves torch to pick its kernels by the CPU.
    code += "; print(cpu.summary())"
    out = subprocess.run([sys.executable, "-c", code], env={**env, cpu.ENV: "native"}, capture_output=True,
                         text=True, check=True)
    *_, line, summary = out.stdout.strip().splitlines()
    _, described = json.loads(line)
    assert described["mode"] == "native" and set(described["env"].values()) == {None}
    assert summary.startswith("cpu: native kernels (torch ") and summary.endswith("the numbers are this CPU's")


def _weights(root) -> dict[str, str]:
    import hashlib
    from pathlib import Path

    files = sorted(Path(root).rglob("*.safetensors"))
    return {f"{f.parent.name}/{f.name}": hashlib.sha256(f.read_bytes()).hexdigest() for f in files}


def test_a_world_trains_to_the_same_bits_with_another_number_of_threads(micro_world, tmp_path):
    # The fixture built the micro world in this process (torch's default threads); build it again in
    # a process with another thread count. MKL_CBWR's STRICT mode is what makes them equal.
    import torch

    threads = "3" if torch.get_num_threads() == 1 else "1"
    env = {**os.environ, "OMP_NUM_THREADS": threads, "KNOWBOUND_CACHE": str(tmp_path)}
    subprocess.run([sys.executable, "-m", "knowbound", "world", "build", "--preset", "micro"], env=env,
                   capture_output=True, text=True, check=True)
    (built,) = (tmp_path / "worlds").iterdir()
    (fixture,) = [d for d in micro_world.iterdir() if d.name == built.name]
    ours, theirs = _weights(built), _weights(fixture)
    assert set(ours) == {"base/model.safetensors", "chat/model.safetensors"}
    assert ours == theirs
