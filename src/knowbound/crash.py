"""Crash points: kill the process at a chosen, repeatable point, to test resume after a crash.

A test that kills a run with a timer lands somewhere different on every machine. Instead, the
stages call ``crash_point(name)`` where a real crash would hurt most, and the environment
variable ``KNOWBOUND_CRASH_AT`` names which pass to die at:

    KNOWBOUND_CRASH_AT="jsonl.write:3"          # SIGKILL on the 3rd batch appended, mid-line
    KNOWBOUND_CRASH_AT="train.step:2"           # SIGKILL after the 2nd optimiser step
    KNOWBOUND_CRASH_AT="eval/rtuning/test:1"    # SIGKILL before that prediction file is written

Several points may be given, separated by commas. Counts are per process. Unset (the normal
case), a crash point costs one environment lookup.
"""

from __future__ import annotations

import os
import signal

ENV = "KNOWBOUND_CRASH_AT"
_passes: dict[str, int] = {}


def _targets() -> dict[str, int]:
    spec = os.environ.get(ENV, "")
    out = {}
    for item in filter(None, (s.strip() for s in spec.split(","))):
        point, sep, count = item.rpartition(":")
        if not sep or not count.isdigit():
            raise ValueError(f"{ENV}: '{item}' is not point:count")
        out[point] = int(count)
    return out


def crash_due(name: str) -> bool:
    """Count one pass through ``name``; True when this is the pass to die at."""
    if ENV not in os.environ:
        return False
    target = _targets().get(name)
    if target is None:
        return False
    _passes[name] = _passes.get(name, 0) + 1
    return _passes[name] == target


def crash() -> None:
    """Die now, as a power cut or the OOM killer would: no cleanup, no exit handlers."""
    os.kill(os.getpid(), signal.SIGKILL)


def crash_point(name: str) -> None:
    """Die here when ``KNOWBOUND_CRASH_AT`` says this is the pass to die at."""
    if crash_due(name):
        crash()
