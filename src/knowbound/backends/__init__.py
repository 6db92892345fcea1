"""Model backends by name: ``get_backend("hf", model=...)``, ``get_backend("openai", ...)``.

Each backend is imported only when asked for, so ``knowbound --help`` stays instant and a missing
optional dependency gives a one-line install hint.
"""

from __future__ import annotations

from typing import Any

from knowbound.backends.base import (
    BACKENDS,
    Backend,
    RequestBackend,
    RequestError,
    RetryPolicy,
    get_backend,
)

__all__ = ["BACKENDS", "Backend", "RequestBackend", "RequestError", "RetryPolicy", "get_backend", "open_backend"]


def open_backend(kind: str, model: str, *, model_settings: Any, adapter: str | None = None) -> Backend:
    """The backend ``kind`` on ``model`` with the settings that apply to it, read from
    ``model_settings`` (the run config's ``model`` section, or the flags of ``knowbound sample``):
    hf reads prompt_format, dtype, device, max_batch_size and threads; a server backend reads
    base_url and api_key_env, and concurrency and max_attempts where the settings have them."""
    s = model_settings
    if kind == "hf":
        return get_backend("hf", model=model, adapter=adapter, prompt_format=s.prompt_format, dtype=s.dtype,
                           device=s.device, max_batch_size=s.max_batch_size, threads=s.threads)
    options: dict[str, Any] = {}
    if getattr(s, "concurrency", None) is not None:
        options["concurrency"] = s.concurrency
    if getattr(s, "extra_body", None):
        options["extra_body"] = dict(s.extra_body)
    if getattr(s, "max_attempts", None) is not None:
        options["retry"] = RetryPolicy(max_attempts=s.max_attempts)
    return get_backend(kind, model=model, base_url=s.base_url, api_key_env=s.api_key_env, **options)
