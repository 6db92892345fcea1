"""Portable CPU arithmetic: the same floating-point results on every x86-64 CPU with AVX2.

PyTorch's own CPU kernels and the math libraries under it (MKL, oneDNN, numpy's OpenBLAS) choose
their code by the processor: AVX2, AVX-512, AMX. The paths add numbers in different orders, so the
last bits of a result differ from one CPU to the next, and training amplifies them. World v2's
seed-0 chat model, pretrained from the same corpus with the same seed, answered 85% of the facts
stated once in its corpus on one AVX-512 machine, 81% on a newer one with native kernels, and 44%
with the AVX2 kernels (BENCHMARKS.md, "Floating point across CPUs"). A number measured on one
machine was therefore not what a fresh clone on another computed.

So knowbound pins every one of those libraries to its AVX2 code path, which any x86-64 CPU of the
last decade runs, and MKL to results that do not depend on the number of threads, before any of
them first computes (``pin``, called when ``knowbound`` is
imported): the variables below, each set only where the user has not set it. ``KNOWBOUND_CPU=native``
leaves all of them alone: faster on a CPU with AVX-512 (world v2 builds in about 4 minutes there
against 5), but the numbers are then that CPU's. Other architectures (ARM) have their own kernels
and their own numbers. A GPU computes with its own kernels and is not affected either way.

Every run's manifest and every world's ``world.json`` record the mode and the kernels torch used
(``describe``); a world is cached apart for each mode (``world_tag``).
"""

from __future__ import annotations

import os

ENV = "KNOWBOUND_CPU"
MODES = ("portable", "native")
# What the portable mode sets, before the library reads it (each at its first computation).
PORTABLE_ENV = {
    "ATEN_CPU_CAPABILITY": "avx2",   # PyTorch's vectorised kernels
    # MKL's conditional numerical reproducibility: its AVX2 branch, and STRICT for the same bits
    # whatever the number of threads (without it 1 and 2 threads train different models).
    "MKL_CBWR": "AVX2,STRICT",
    "MKL_ENABLE_INSTRUCTIONS": "AVX2",  # a wider setting here would override MKL_CBWR
    "ONEDNN_MAX_CPU_ISA": "AVX2",    # oneDNN (mkldnn)
    "OPENBLAS_CORETYPE": "Haswell",  # the OpenBLAS that numpy's wheels bundle
}


def mode() -> str:
    """``portable`` (the default) or ``native``, from ``$KNOWBOUND_CPU``."""
    value = os.environ.get(ENV, "").strip().lower() or "portable"
    if value not in MODES:
        from knowbound.errors import KnowboundError

        raise KnowboundError(f"{ENV}={os.environ[ENV]!r}: expected one of {', '.join(MODES)}")
    return value


def pin() -> dict[str, str]:
    """In portable mode, set each of ``PORTABLE_ENV`` the user has not set; returns what it set.

    Takes effect for libraries that have not computed anything yet (they read these variables at
    their first use, not at import), and for every process started afterwards."""
    if os.environ.get(ENV, "").strip().lower() == "native":
        return {}
    done = {}
    for key, value in PORTABLE_ENV.items():
        if key not in os.environ:
            os.environ[key] = done[key] = value
    return done


def world_tag() -> str:
    """What a world's cache key adds for the mode: ``avx2`` in portable mode, so a world built with
    native kernels (by this mode or by a knowbound before it) is never taken for a portable one."""
    return "avx2" if mode() == "portable" else ""


def describe() -> dict:
    """The mode, the variables in effect, and the kernels torch dispatches to (None without torch)."""
    out: dict = {"mode": mode(), "env": {k: os.environ.get(k) for k in PORTABLE_ENV}}
    try:
        import torch

        out["torch_capability"] = torch.backends.cpu.get_cpu_capability()
    except ImportError:  # pragma: no cover - torch is a core dependency
        out["torch_capability"] = None
    return out


def summary() -> str:
    """One line for a run's log: which kernels compute, and whether the numbers are portable."""
    d = describe()
    cap = d["torch_capability"]
    if d["mode"] == "native":
        return f"cpu: native kernels (torch {cap}, {ENV}=native): the numbers are this CPU's"
    if cap is not None and cap != "AVX2":
        return (f"cpu: portable kernels asked for, but torch computes with {cap} "
                f"(ATEN_CPU_CAPABILITY={os.environ.get('ATEN_CPU_CAPABILITY')}): the numbers are this CPU's")
    return f"cpu: portable kernels (torch {cap}, MKL_CBWR={os.environ.get('MKL_CBWR')})"
