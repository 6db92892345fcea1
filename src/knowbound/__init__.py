"""knowbound: teach a language model to say "I don't know" when it doesn't know.

The Python API (``knowbound.api``) is imported on first use, so ``import knowbound`` stays cheap:
``knowbound.run``, ``knowbound.score``, ``knowbound.load_questions``, ``knowbound.get_backend``,
``knowbound.write_report`` and the result type ``knowbound.RunResult``.
"""

from knowbound import cpu as _cpu

__version__ = "0.1.0"

# The same floating-point results on every x86-64 CPU: pin the math libraries' kernels before any of
# them first computes (knowbound.cpu; KNOWBOUND_CPU=native opts out).
_cpu.pin()

_API = ("run", "score", "load_questions", "get_backend", "write_report", "RunResult")
__all__ = ["__version__", *_API]


def __getattr__(name: str):
    if name in _API:
        from knowbound import api

        return getattr(api, name)
    raise AttributeError(f"module 'knowbound' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(__all__)
