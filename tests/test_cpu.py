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
    with pytest.raises(KnowboundError, match="KNOWBOUND_CPU='fast': expected one of portable, compatible, native"):
        cpu.mode()


def test_worlds_built_with_native_kernels_keep_their_old_cache_key(monkeypatch):
    # Only the mode is changed: the portable hash asks MKL for its branch, and MKL reads its
    # variables once per process, at the first such question or computation (so its own variables
    # are left as they are).
    from knowbound.world.generator import language_lines

    monkeypatch.delenv(cpu.ENV, raising=False)

    cfg = preset("v2")
    legacy = __import__("hashlib").sha256(json.dumps([cfg.to_dict(), language_lines()], sort_keys=True)
                                          .encode()).hexdigest()[:12]
    portable = cfg.hash()
    monkeypatch.setenv(cpu.ENV, "native")
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
    # MKL takes the AVX2 branch on Intel CPUs only; elsewhere it says it computes with AUTO.
    assert described == {"mode": "portable", "torch_capability": "AVX2", "mkl_branch": _expected_mkl_branch(),
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


def _vendor() -> str | None:
    try:
        text = open("/proc/cpuinfo", encoding="utf-8").read()
    except OSError:
        return None
    return next((line.split(":", 1)[1].strip() for line in text.splitlines() if line.startswith("vendor_id")), None)


def _expected_mkl_branch() -> str:
    if _vendor() is None:
        pytest.skip("no /proc/cpuinfo: the CPU's vendor is unknown")
    return "AVX2" if _vendor() == "GenuineIntel" else "AUTO"


def test_compatible_mode_sets_mkls_compatible_branch(clean_env):
    clean_env.setenv(cpu.ENV, "compatible")
    assert cpu.pin() == {**cpu.PORTABLE_ENV, "MKL_CBWR": "COMPATIBLE,STRICT"}
    assert cpu.mode() == "compatible" and cpu.world_tag() == "compatible"


@pytest.mark.skipif(platform.machine() not in ("x86_64", "AMD64"), reason="MKL is x86-64's")
def test_the_log_line_says_which_branch_mkl_computes_with(clean_env):
    code = "import knowbound, json; from knowbound import cpu; print(json.dumps([cpu.summary(), cpu.world_tag()]))"
    env = {k: v for k, v in os.environ.items() if k not in (*cpu.PORTABLE_ENV, cpu.ENV)}
    expected = _expected_mkl_branch()

    def run(**extra) -> list[str]:
        out = subprocess.run([sys.executable, "-c", code], env={**env, **extra}, capture_output=True, text=True,
                             check=True)
        return json.loads(out.stdout.strip().splitlines()[-1])

    summary, tag = run()
    if expected == "AVX2":
        assert (summary, tag) == ("cpu: portable kernels (torch AVX2, MKL_CBWR=AVX2,STRICT)", "avx2")
    else:
        assert summary == ("cpu: portable kernels asked for, but MKL computes with its AUTO branch, not "
                           "MKL_CBWR=AVX2,STRICT (MKL takes a named branch such as AVX2 only on Intel CPUs): the "
                           "numbers are this CPU's; KNOWBOUND_CPU=compatible gives numbers that do not depend on it")
        assert tag == "avx2-mkl-auto"
    assert run(**{cpu.ENV: "compatible"}) == ["cpu: compatible kernels (torch AVX2, MKL_CBWR=COMPATIBLE,STRICT)",
                                              "compatible"]


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


def test_compatible_mode_trains_a_world_to_the_same_bits_with_another_number_of_threads(tmp_path):
    # MKL's COMPATIBLE branch is the one Intel documents as the same on every vendor's CPU; here it
    # must at least not depend on the threads, and its world is cached apart from the portable one.
    def build(threads: str) -> tuple[str, dict[str, str]]:
        cache = tmp_path / threads
        env = {**os.environ, "OMP_NUM_THREADS": threads, "KNOWBOUND_CACHE": str(cache), cpu.ENV: "compatible"}
        subprocess.run([sys.executable, "-m", "knowbound", "world", "build", "--preset", "micro"], env=env,
                       capture_output=True, text=True, check=True)
        (built,) = (cache / "worlds").iterdir()
        return built.name, _weights(built)

    one, two = build("1"), build("2")
    assert one == two and len(one[1]) == 2
    clean = {k: v for k, v in os.environ.items() if k != cpu.ENV}
    out = subprocess.run([sys.executable, "-c", "from knowbound.world.config import preset; print(preset('micro').hash())"],
                         env=clean, capture_output=True, text=True, check=True)
    assert not one[0].endswith(out.stdout.strip())
