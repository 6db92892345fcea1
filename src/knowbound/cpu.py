"""Portable CPU arithmetic: the same floating-point results on every Intel x86-64 CPU with AVX2
(the default), or on every x86-64 CPU with AVX2 (``KNOWBOUND_CPU=compatible``).

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

MKL honours a named branch such as AVX2 only on Intel CPUs: on any other CPU (AMD's EPYC, say)
it silently computes with its AUTO branch instead (Intel's CNR guide says so, and
``mkl_branch`` reads it back: ``AUTO`` on an AMD EPYC). There the portable mode gives that CPU's
numbers, not an Intel machine's: world v2's seed-0 chat model answered 73% of the facts stated
once on an AMD EPYC, against 83% on Intel CPUs. ``summary`` says so in a run's log. MKL's
COMPATIBLE branch (SSE2 without rcpps/rsqrtps) is the one it runs alike on Intel and non-Intel
CPUs: ``KNOWBOUND_CPU=compatible`` is the portable mode with that branch, for numbers that do not
depend on the CPU's vendor, at the cost of MKL's slower kernels (BENCHMARKS.md, "Floating point
across CPUs").

Every run's manifest and every world's ``world.json`` record the mode, the kernels torch used and
MKL's branch (``describe``); a world is cached apart for each mode, and for each MKL branch
(``world_tag``).
"""

from __future__ import annotations

import os

ENV = "KNOWBOUND_CPU"
MODES = ("portable", "compatible", "native")
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
# The compatible mode: the same, with MKL on the one branch it runs alike on every vendor's CPU.
COMPATIBLE_ENV = {**PORTABLE_ENV, "MKL_CBWR": "COMPATIBLE,STRICT"}
# MKL's code branches by the value ``mkl_cbwr_get(MKL_CBWR_BRANCH)`` returns (mkl_service.h).
MKL_BRANCHES = {1: "OFF", 2: "AUTO", 3: "COMPATIBLE", 4: "SSE2", 6: "SSSE3", 7: "SSE4_1", 8: "SSE4_2", 9: "AVX",
                10: "AVX2", 11: "AVX512_MIC", 12: "AVX512", 13: "AVX512_MIC_E1", 14: "AVX512_E1"}


def mode() -> str:
    """``portable`` (the default) or ``native``, from ``$KNOWBOUND_CPU``."""
    value = os.environ.get(ENV, "").strip().lower() or "portable"
    if value not in MODES:
        from knowbound.errors import KnowboundError

        raise KnowboundError(f"{ENV}={os.environ[ENV]!r}: expected one of {', '.join(MODES)}")
    return value


def pin() -> dict[str, str]:
    """In portable mode, set each of ``PORTABLE_ENV`` the user has not set (in compatible mode, of
    ``COMPATIBLE_ENV``); returns what it set.

    Takes effect for libraries that have not computed anything yet (they read these variables at
    their first use, not at import), and for every process started afterwards."""
    chosen = os.environ.get(ENV, "").strip().lower()
    if chosen == "native":
        return {}
    done = {}
    for key, value in (COMPATIBLE_ENV if chosen == "compatible" else PORTABLE_ENV).items():
        if key not in os.environ:
            os.environ[key] = done[key] = value
    return done


def world_tag() -> str:
    """What a world's cache key adds for the mode: ``avx2`` in portable mode, so a world built with
    native kernels (by this mode or by a knowbound before it) is never taken for a portable one;
    ``avx2-mkl-auto`` (say) where MKL does not take its AVX2 branch (a non-Intel CPU), so a cache
    shared by two vendors' machines keeps their different worlds apart; ``compatible`` in that mode."""
    chosen = mode()
    if chosen == "native":
        return ""
    if chosen == "compatible":
        return "compatible"
    branch = mkl_branch()
    return "avx2" if branch in (None, "AVX2") else f"avx2-mkl-{branch.lower()}"


def mkl_branch() -> str | None:
    """The code branch MKL computes with, as MKL itself reports it (``mkl_cbwr_get``, read from the
    MKL that torch links): ``AVX2`` where the portable mode's request holds, ``AUTO`` where MKL does
    not honour it (a non-Intel CPU), ``COMPATIBLE`` in compatible mode; ``OFF`` without
    ``MKL_CBWR``. None where torch links no MKL (ARM) or its MKL does not say. MKL reads its
    variables once per process, at the first such question or computation: ask after ``pin``."""
    import ctypes
    from pathlib import Path

    try:
        import torch

        libs = sorted((Path(torch.__file__).parent / "lib").glob("libtorch_cpu.*"))
        get = ctypes.CDLL(str(libs[0])).mkl_serv_cbwr_get if libs else None
    except (ImportError, OSError, AttributeError):
        return None
    if get is None:
        return None
    get.restype, get.argtypes = ctypes.c_int, [ctypes.c_int]
    value = get(1)  # MKL_CBWR_BRANCH; an error is negative
    if value <= 0:
        return None
    value &= 0xFFFF  # without the STRICT flag
    return MKL_BRANCHES.get(value, str(value))


def describe() -> dict:
    """The mode, the variables in effect, the kernels torch dispatches to (None without torch) and
    MKL's branch (``mkl_branch``)."""
    out: dict = {"mode": mode(), "env": {k: os.environ.get(k) for k in PORTABLE_ENV}}
    try:
        import torch

        out["torch_capability"] = torch.backends.cpu.get_cpu_capability()
    except ImportError:  # pragma: no cover - torch is a core dependency
        out["torch_capability"] = None
    out["mkl_branch"] = mkl_branch()
    return out


def summary() -> str:
    """One line for a run's log: which kernels compute, and whether the numbers are portable."""
    d = describe()
    cap = d["torch_capability"]
    if d["mode"] == "native":
        return f"cpu: native kernels (torch {cap}, {ENV}=native): the numbers are this CPU's"
    name = d["mode"]
    if cap is not None and cap != "AVX2":
        return (f"cpu: {name} kernels asked for, but torch computes with {cap} "
                f"(ATEN_CPU_CAPABILITY={os.environ.get('ATEN_CPU_CAPABILITY')}): the numbers are this CPU's")
    branch, asked = d["mkl_branch"], os.environ.get("MKL_CBWR", "")
    if branch is not None and branch != asked.split(",")[0].strip().upper().removeprefix("BRANCH="):
        hint = f"; {ENV}=compatible gives numbers that do not depend on it" if name == "portable" else ""
        return (f"cpu: {name} kernels asked for, but MKL computes with its {branch} branch, not MKL_CBWR={asked} "
                f"(MKL takes a named branch such as AVX2 only on Intel CPUs): the numbers are this CPU's{hint}")
    return f"cpu: {name} kernels (torch {cap}, MKL_CBWR={asked})"
