"""Errors a user can act on. The CLI prints them as one line and exits 1; never a traceback."""

from __future__ import annotations


class KnowboundError(Exception):
    """Base class: the message is complete and meant for the user."""


class DataError(KnowboundError):
    """Bad input: names the file, the line (1-based, when there is one) and the field."""

    def __init__(self, path: str, message: str, line: int | None = None, field: str | None = None):
        self.path = str(path)
        self.line = line
        self.field = field
        self.message = message
        where = self.path if line is None else f"{self.path}:{line}"
        what = f"field '{field}': {message}" if field else message
        super().__init__(f"{where}: {what}")


class MissingExtra(KnowboundError):
    """An optional dependency is not installed; the message is the one-line install hint."""

    def __init__(self, module: str, extra: str):
        super().__init__(
            f"'{module}' is not installed; install it with: pip install 'knowbound[{extra}]'"
        )


def require(module: str, extra: str):
    """Import an optional heavy dependency, or raise a one-line install hint."""
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise MissingExtra(module, extra) from exc
