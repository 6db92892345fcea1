"""Model backends by name: ``get_backend("hf", model=...)``, ``get_backend("openai", ...)``.

Each backend is imported only when asked for, so ``knowbound --help`` stays instant and a missing
optional dependency gives a one-line install hint.
"""

from __future__ import annotations

from typing import Any

from knowbound.backends.base import Backend, RequestBackend, RequestError, RetryPolicy
from knowbound.registry import Registry

BACKENDS = Registry("backend")
BACKENDS.register("hf", "knowbound.backends.hf:HFBackend", extra="hf",
                  help="any transformers causal LM (local path or Hub name), optional PEFT adapter")
BACKENDS.register("openai", "knowbound.backends.openai:OpenAIBackend",
                  help="any OpenAI-compatible chat-completions server (vLLM, SGLang, TGI, Ollama, ...)")
BACKENDS.register("scripted", "knowbound.backends.scripted:ScriptedBackend",
                  help="canned replies, for tests of pure logic")


def get_backend(name: str, **options: Any) -> Backend:
    """Construct the backend registered as ``name`` with its keyword ``options``."""
    return BACKENDS.get(name)(**options)


__all__ = ["BACKENDS", "Backend", "RequestBackend", "RequestError", "RetryPolicy", "get_backend"]
