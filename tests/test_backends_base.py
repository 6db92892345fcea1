"""The backend interface, the retry/concurrency wrapper and the scripted backend (no network)."""

from __future__ import annotations

import subprocess
import sys
import threading

import pytest

from knowbound.backends import BACKENDS, RequestBackend, RequestError, RetryPolicy, get_backend
from knowbound.backends.base import cut_at_stop, row_seed
from knowbound.errors import KnowboundError
from knowbound.types import Completion, SamplingParams


class FlakyBackend(RequestBackend):
    """Fails according to a script of exceptions, then answers with at most ``max_choices``."""

    name = "flaky"

    def __init__(self, failures=(), max_choices=None, barrier=None, **kw):
        super().__init__(**kw)
        self.failures = list(failures)
        self.max_choices = max_choices
        self.barrier = barrier  # requests wait here until that many are in flight at once
        self.seen = []
        self.active = 0
        self.peak = 0
        self._guard = threading.Lock()

    def request(self, prompt, params, n, seed):
        with self._guard:
            self.seen.append((prompt, n, seed))
            self.active += 1
            self.peak = max(self.peak, self.active)
            failure = self.failures.pop(0) if self.failures else None
        try:
            if self.barrier is not None:
                self.barrier.wait()
            if failure is not None:
                raise failure
            k = n if self.max_choices is None else min(n, self.max_choices)
            return [Completion(text=f"{prompt}:{seed}:{i}") for i in range(k)]
        finally:
            with self._guard:
                self.active -= 1


NO_WAIT = RetryPolicy(max_attempts=4, backoff_base=0.0, backoff_max=0.0)


def test_retryable_failures_are_retried_until_success():
    b = FlakyBackend([RequestError("HTTP 500"), RequestError("dropped")], retry=NO_WAIT, concurrency=1)
    out = b.generate(["p"], SamplingParams(n=3, temperature=1.0, seed=1))
    assert [c.finish_reason for c in out[0]] == ["stop"] * 3
    assert b.stats == {"requests": 3, "retries": 2, "failed_requests": 0}


def test_persistent_failure_becomes_error_completions_not_text():
    b = FlakyBackend([RequestError("HTTP 503: busy")] * 10, retry=NO_WAIT, concurrency=1)
    out = b.generate(["p"], SamplingParams(n=2))
    assert all(c.failed and c.text == "" for c in out[0])
    assert out[0][0].error == "HTTP 503: busy (gave up after 4 attempts)"
    assert b.stats["requests"] == 4 and b.stats["failed_requests"] == 1


def test_non_retryable_error_is_tried_once():
    b = FlakyBackend([RequestError("HTTP 400: bad", retryable=False)], retry=NO_WAIT)
    out = b.generate(["p"], SamplingParams(n=1))
    assert out[0][0].failed and "HTTP 400" in out[0][0].error
    assert b.stats["requests"] == 1


def test_retry_after_is_honoured_and_backoff_grows():
    waits = []
    b = FlakyBackend([RequestError("429", retry_after=2.5), RequestError("500"), RequestError("500")],
                     retry=RetryPolicy(max_attempts=4, backoff_base=1.0, backoff_max=10.0),
                     sleep=waits.append, concurrency=1)
    b.generate(["p"], SamplingParams(n=1))
    assert 2.5 <= waits[0] <= 2.75  # Retry-After plus at most 10% jitter
    assert 1.0 <= waits[1] <= 2.0 and 2.0 <= waits[2] <= 4.0  # equal jitter on 2, 4


def test_short_answers_are_topped_up_with_fresh_seeds():
    b = FlakyBackend(max_choices=2, retry=NO_WAIT, concurrency=1)
    out = b.generate(["p"], SamplingParams(n=5, temperature=1.0, seed=7))
    assert len(out[0]) == 5
    assert [n for _, n, _ in b.seen] == [5, 3, 1]
    assert len({seed for _, _, seed in b.seen}) == 3  # no repeated seed: no repeated answers


def test_concurrency_is_bounded_and_order_kept():
    # Each request waits until three are in flight: with fewer workers than 3 the barrier breaks
    # (its timeout), and with more the peak exceeds 3. No sleeps, so no dependence on timing.
    b = FlakyBackend(retry=NO_WAIT, concurrency=3, barrier=threading.Barrier(3, timeout=30))
    prompts = [f"p{k}" for k in range(12)]
    out = b.generate(prompts, SamplingParams(n=1, seed=0))
    assert [o[0].text.split(":")[0] for o in out] == prompts
    assert all(c.finish_reason == "stop" for o in out for c in o)
    assert b.peak == 3


def test_params_are_validated():
    with pytest.raises(KnowboundError, match="top_p"):
        FlakyBackend().generate(["p"], SamplingParams(top_p=0.0))
    with pytest.raises(KnowboundError, match="n must be"):
        FlakyBackend().generate(["p"], SamplingParams(n=0))


def test_row_seed_depends_on_every_part():
    base = row_seed(0, "prompt", 1)
    assert base == row_seed(0, "prompt", 1)
    assert len({base, row_seed(1, "prompt", 1), row_seed(0, "prompt!", 1), row_seed(0, "prompt", 2)}) == 4
    assert 0 <= base < 2**63


def test_cut_at_stop_uses_the_earliest_stop_string():
    assert cut_at_stop("Paris\nQ: next\n", ("Q:", "\n")) == ("Paris", True)
    assert cut_at_stop("Paris", ("\n",)) == ("Paris", False)
    assert cut_at_stop("Paris", ()) == ("Paris", False)


def test_registry_is_lazy_and_names_backends():
    assert set(BACKENDS.names()) >= {"hf", "openai", "scripted"}
    with pytest.raises(KnowboundError, match="unknown backend 'nope'"):
        get_backend("nope")
    # Naming the backends imports none of them, nor torch, in a fresh interpreter.
    code = ("import sys; from knowbound.backends import BACKENDS; BACKENDS.names(); "
            "print(sorted(m for m in sys.modules if m in ('torch', 'transformers') "
            "or m.startswith('knowbound.backends.') and m != 'knowbound.backends.base'))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_scripted_backend_replies_and_records_calls():
    b = get_backend("scripted", script={"Norway": "Oslo"}, default="I don't know")
    params = SamplingParams(n=2, temperature=1.0)
    out = b.generate(["capital of Norway?", "capital of Mars?"], params)
    assert [[c.text for c in o] for o in out] == [["Oslo", "Oslo"], ["I don't know", "I don't know"]]
    assert b.calls == [(["capital of Norway?", "capital of Mars?"], params)]
