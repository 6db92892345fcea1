"""What a run records about where it ran: library versions, the commit and the lock's hash."""

from __future__ import annotations

from pathlib import Path

LOCK_FILE = "requirements.lock"
# The packages whose versions decide the numbers.
PACKAGES = ("knowbound", "torch", "transformers", "trl", "peft", "datasets", "accelerate", "tokenizers", "numpy")


def source_checkout() -> Path | None:
    """The knowbound checkout this package runs from (an editable install), else None.

    A wheel installed inside some other repository must not record that repository's commit.
    """
    root = Path(__file__).resolve().parents[3]
    project = root / "pyproject.toml"
    if project.is_file() and 'name = "knowbound"' in project.read_text(encoding="utf-8"):
        return root
    return None


def environment() -> dict:
    """Versions of Python and the packages that decide the numbers, the CPU kernels
    (``knowbound.cpu.describe``), the commit, and the lock's hash."""
    import hashlib
    import importlib.metadata as md
    import platform
    import subprocess

    from knowbound.cpu import describe as describe_cpu

    out = {"python": platform.python_version(), "machine": platform.machine(), "cpu": describe_cpu()}
    for pkg in PACKAGES:
        try:
            out[pkg] = md.version(pkg)
        except md.PackageNotFoundError:
            out[pkg] = None
    root = source_checkout()
    out["git"] = out["lock_sha256"] = None
    if root is not None:
        try:
            out["git"] = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True,
                                        timeout=5).stdout.strip() or None
        except (OSError, subprocess.SubprocessError):
            pass
        lock = root / LOCK_FILE
        if lock.is_file():
            out["lock_sha256"] = hashlib.sha256(lock.read_bytes()).hexdigest()
    return out
