"""The ``scripted`` backend: canned replies, for unit tests of logic that only needs *some* text.

It records every call, so a test can assert what was asked (prompts and parameters) as well as
what came back.
"""

from __future__ import annotations

from typing import Callable, Mapping, Union

from knowbound.backends.base import check_params
from knowbound.types import Completion, SamplingParams

Reply = Union[str, Completion]
Script = Union[str, Mapping[str, Reply], Callable[[str, int], Reply]]


class ScriptedBackend:
    """Answers from a script: one string for everything; a mapping from a substring of the prompt
    to a reply (first match wins, ``default`` otherwise); or a function ``(prompt, index) -> reply``.
    A reply may be a ``Completion`` (e.g. an error) instead of text."""

    name = "scripted"

    def __init__(self, script: Script = "", *, default: Reply = ""):
        self.script = script
        self.default = default
        self.calls: list[tuple[list[str], SamplingParams]] = []

    def reply(self, prompt: str, index: int) -> Completion:
        """The scripted completion number ``index`` for ``prompt``."""
        if callable(self.script):
            out = self.script(prompt, index)
        elif isinstance(self.script, Mapping):
            out = next((r for key, r in self.script.items() if key in prompt), self.default)
        else:
            out = self.script
        return out if isinstance(out, Completion) else Completion(text=out, finish_reason="stop")

    def generate(self, prompts: list[str], params: SamplingParams) -> list[list[Completion]]:
        """``params.n`` scripted completions per prompt (indices from ``params.first_index``); the
        call is recorded in ``calls``."""
        check_params(params)
        self.calls.append((list(prompts), params))
        return [[self.reply(p, params.first_index + j) for j in range(params.n)] for p in prompts]
