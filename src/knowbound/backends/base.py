"""The backend interface, the registry of backends, and the one wrapper that gives request
backends retries and concurrency.

A backend is anything with ``generate(prompts, params) -> list[list[Completion]]``: a list of
*user-message* texts in, exactly ``params.n`` completions per prompt out, in order. Backends wrap
the text in the chat template themselves. Failures are data: a completion that could not be
produced is ``finish_reason='error'`` with ``error`` set and empty text, never an answer.

``RequestBackend`` is the single place where retries (exponential backoff with jitter,
``Retry-After``), bounded concurrency and topping up short answers live. A backend that talks to
a server only implements ``request`` — one try of one HTTP call — and inherits the rest.
"""

from __future__ import annotations

import hashlib
import random
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Callable, Protocol, runtime_checkable

from knowbound.errors import KnowboundError
from knowbound.registry import Registry
from knowbound.types import Completion, SamplingParams

# Backends by name, imported on first use (so `knowbound --help` never imports torch).
BACKENDS = Registry("backend")
BACKENDS.register("hf", "knowbound.backends.hf:HFBackend", extra="hf",
                  help="any transformers causal LM (local path or Hub name), optional PEFT adapter")
BACKENDS.register("openai", "knowbound.backends.openai:OpenAIBackend",
                  help="any OpenAI-compatible chat-completions server (vLLM, SGLang, TGI, Ollama, ...)")
BACKENDS.register("scripted", "knowbound.backends.scripted:ScriptedBackend",
                  help="canned replies, for tests of pure logic")


@runtime_checkable
class Backend(Protocol):
    """What every backend offers: batch-first generation, ``params.n`` completions per prompt."""

    name: str

    def generate(self, prompts: list[str], params: SamplingParams) -> list[list[Completion]]:
        """Return ``params.n`` completions for each prompt, in prompt order."""
        ...


def get_backend(name: str, **options) -> "Backend":
    """Construct the backend registered as ``name`` with its keyword ``options``."""
    return BACKENDS.get(name)(**options)


def check_params(params: SamplingParams) -> None:
    """Reject settings no backend can honour, before any work is done."""
    if params.n < 1:
        raise KnowboundError(f"n must be at least 1, got {params.n}")
    if params.first_index < 0:
        raise KnowboundError(f"first_index must be >= 0, got {params.first_index}")
    if params.temperature < 0:
        raise KnowboundError(f"temperature must be >= 0, got {params.temperature}")
    if not 0 < params.top_p <= 1:
        raise KnowboundError(f"top_p must be in (0, 1], got {params.top_p}")
    if params.max_new_tokens < 1:
        raise KnowboundError(f"max_new_tokens must be at least 1, got {params.max_new_tokens}")


def row_seed(seed: int, prompt: str, index: int) -> int:
    """A 63-bit seed for completion ``index`` of ``prompt`` under the run seed ``seed``.

    Deriving every row's randomness from (seed, prompt, index) alone makes a completion
    independent of which other prompts share its batch and of how a run was split or resumed.
    """
    digest = hashlib.blake2b(f"{seed}\x00{index}\x00{prompt}".encode("utf-8"), digest_size=8).digest()
    return int.from_bytes(digest, "little") & (2**63 - 1)


def cut_at_stop(text: str, stop: tuple[str, ...] | list[str]) -> tuple[str, bool]:
    """Cut ``text`` before the earliest stop string; returns (text, whether one was found)."""
    cut = min((i for i in (text.find(s) for s in stop if s) if i >= 0), default=-1)
    return (text[:cut], True) if cut >= 0 else (text, False)


def error_completions(message: str, n: int) -> list[Completion]:
    """``n`` failed completions carrying ``message``."""
    return [Completion(text="", finish_reason="error", error=message) for _ in range(n)]


class RequestError(Exception):
    """One failed try of a request. ``retryable`` says whether trying again can help;
    ``retry_after`` is the server's requested wait in seconds, when it sent one."""

    def __init__(self, message: str, *, retryable: bool = True, retry_after: float | None = None):
        super().__init__(message)
        self.retryable = retryable
        self.retry_after = retry_after


@dataclass(frozen=True)
class RetryPolicy:
    """How hard to try: ``max_attempts`` tries per request, waits doubling from ``backoff_base``
    seconds up to ``backoff_max`` with random jitter; a server's Retry-After wins (up to
    ``retry_after_max``)."""

    max_attempts: int = 6
    backoff_base: float = 0.5
    backoff_max: float = 30.0
    retry_after_max: float = 120.0

    def delay(self, attempt: int, rng: random.Random, retry_after: float | None = None) -> float:
        """Seconds to wait after failed try number ``attempt`` (1-based)."""
        if retry_after is not None:
            # Honour the server, plus up to 10% so that many clients do not return at once.
            return min(retry_after, self.retry_after_max) * (1.0 + 0.1 * rng.random())
        ceiling = min(self.backoff_max, self.backoff_base * 2 ** (attempt - 1))
        return ceiling * (0.5 + 0.5 * rng.random())  # "equal jitter"


class RequestBackend:
    """Base class for backends that answer one prompt per request (HTTP APIs).

    Subclasses implement ``request``; ``generate`` runs prompts ``concurrency`` at a time, retries
    retryable failures, tops up when a server returns fewer than the requested completions (with a
    fresh seed per extra request), and turns a request that still fails into error completions.
    """

    name = "request"

    def __init__(
        self,
        *,
        concurrency: int = 8,
        retry: RetryPolicy | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ):
        if concurrency < 1:
            raise KnowboundError(f"concurrency must be at least 1, got {concurrency}")
        self.concurrency = concurrency
        self.retry = retry or RetryPolicy()
        self._sleep = sleep
        self._rng = random.Random()  # jitter only: it never influences an answer
        self._lock = threading.Lock()
        self.stats = {"requests": 0, "retries": 0, "failed_requests": 0}

    def request(self, prompt: str, params: SamplingParams, n: int, seed: int | None) -> list[Completion]:
        """One try: ask for ``n`` completions of ``prompt``; raise ``RequestError`` on failure."""
        raise NotImplementedError

    def generate(self, prompts: list[str], params: SamplingParams) -> list[list[Completion]]:
        """``params.n`` completions per prompt; failed requests come back as error completions."""
        check_params(params)
        if not prompts:
            return []
        workers = min(self.concurrency, len(prompts))
        if workers == 1:
            return [self._complete(p, params) for p in prompts]
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix=f"kb-{self.name}") as pool:
            return list(pool.map(lambda p: self._complete(p, params), prompts))

    def _complete(self, prompt: str, params: SamplingParams) -> list[Completion]:
        out: list[Completion] = []
        extra = 0
        while len(out) < params.n:
            need = params.n - len(out)
            # Each extra request gets its own seed: the same seed would repeat the same answers.
            seed = None if params.seed is None else row_seed(params.seed, prompt, params.first_index + extra) % 2**31
            extra += 1
            got = self._with_retries(prompt, params, need, seed)
            if isinstance(got, str):
                out.extend(error_completions(got, need))
                break
            out.extend(got[:need])
        return out

    def _with_retries(self, prompt: str, params: SamplingParams, n: int, seed: int | None) -> list[Completion] | str:
        """The completions, or the last error message when every try failed."""
        message = "no attempt made"
        for attempt in range(1, self.retry.max_attempts + 1):
            self._count("requests")
            try:
                got = self.request(prompt, params, n, seed)
                if not got:
                    raise RequestError("server returned no choices")
                return got
            except RequestError as exc:
                message = str(exc)
                if not exc.retryable or attempt == self.retry.max_attempts:
                    break
                self._count("retries")
                self._sleep(self.retry.delay(attempt, self._rng, exc.retry_after))
        self._count("failed_requests")
        return f"{message} (gave up after {attempt} attempt{'s' if attempt > 1 else ''})"

    def _count(self, key: str) -> None:
        with self._lock:
            self.stats[key] += 1
