"""Lazy registries: backends, datasets and methods are looked up by name and imported on use,
so ``knowbound --help`` stays instant and a missing optional extra gives a one-line hint."""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Any

from knowbound.errors import KnowboundError, MissingExtra


@dataclass(frozen=True)
class Entry:
    name: str
    target: str  # "package.module:attribute"
    extra: str | None = None  # the pip extra that provides its heavy dependencies
    help: str = ""


class Registry:
    """Name -> ``module:attribute``, resolved only when asked for."""

    def __init__(self, kind: str):
        self.kind = kind
        self._entries: dict[str, Entry] = {}

    def register(self, name: str, target: str, extra: str | None = None, help: str = "") -> None:
        self._entries[name] = Entry(name, target, extra, help)

    def names(self) -> list[str]:
        return list(self._entries)

    def entry(self, name: str) -> Entry:
        try:
            return self._entries[name]
        except KeyError:
            known = ", ".join(self._entries) or "none"
            raise KnowboundError(f"unknown {self.kind} '{name}' (known: {known})") from None

    def __contains__(self, name: str) -> bool:
        return name in self._entries

    def get(self, name: str) -> Any:
        """Import and return the registered object."""
        entry = self.entry(name)
        module_name, _, attr = entry.target.partition(":")
        try:
            module = importlib.import_module(module_name)
        except ImportError as exc:
            missing = getattr(exc, "name", None) or str(exc)
            if entry.extra and missing and not missing.startswith("knowbound"):
                raise MissingExtra(missing, entry.extra) from exc
            raise
        return getattr(module, attr) if attr else module
