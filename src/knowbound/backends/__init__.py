"""Model backends by name: ``get_backend("hf", model=...)``, ``get_backend("openai", ...)``.

Each backend is imported only when asked for, so ``knowbound --help`` stays instant and a missing
optional dependency gives a one-line install hint.
"""

from __future__ import annotations

from knowbound.backends.base import (
    BACKENDS,
    Backend,
    RequestBackend,
    RequestError,
    RetryPolicy,
    get_backend,
)

__all__ = ["BACKENDS", "Backend", "RequestBackend", "RequestError", "RetryPolicy", "get_backend"]
