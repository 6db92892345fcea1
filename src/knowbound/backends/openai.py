"""The ``openai`` backend: any OpenAI-compatible chat-completions server.

vLLM, SGLang, TGI, Ollama, llama.cpp's server and hosted APIs all speak this protocol. Each
prompt is sent as the user message of one ``POST {base_url}/chat/completions`` asking for ``n``
choices; retries, concurrency and topping up short answers come from ``RequestBackend``.

The API key is read from the environment variable named by ``api_key_env`` when the backend is
built, kept in a private attribute, sent only in the Authorization header, and never printed,
logged or written anywhere (``repr`` leaves it out; error messages never include headers).
"""

from __future__ import annotations

import http.client
import json
import os
import threading
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

from knowbound.backends.base import RequestBackend, RequestError, RetryPolicy
from knowbound.errors import KnowboundError
from knowbound.types import Completion, SamplingParams

DEFAULT_BASE_URL = "https://api.openai.com/v1"
# Statuses worth another try: rate limiting and every server-side error. Other 4xx mean the
# request itself is wrong; repeating it cannot help.
RETRYABLE_STATUS = frozenset({429}) | frozenset(range(500, 600))
# The request fields knowbound sets itself; extra_body may add any other.
OWN_FIELDS = frozenset({"model", "messages", "n", "temperature", "top_p", "max_tokens", "stop", "seed", "logprobs"})


def parse_retry_after(value: str | None) -> float | None:
    """Seconds from a Retry-After header (the delta-seconds form); None when absent or a date."""
    if not value:
        return None
    try:
        return max(0.0, float(value.strip()))
    except ValueError:
        return None


class OpenAIBackend(RequestBackend):
    """Chat completions over HTTP (``get_backend("openai", model=..., base_url=...)``).

    ``concurrency`` requests run at once; ``logprobs=True`` asks the server for token log-probs and
    records their sum; ``system_prompt`` is sent before each user message when given.
    ``extra_body`` adds server-specific fields to every request (the OpenAI client's ``extra_body``),
    for example ``{"top_k": 0, "min_p": 0.0, "repeat_penalty": 1.0}``: llama.cpp's server otherwise
    samples with top-k 40, min-p 0.05 and a repetition penalty of 1.1, not from the model's own
    distribution at the temperature asked. They cannot override the fields knowbound sets.
    """

    name = "openai"

    def __init__(
        self,
        model: str,
        *,
        base_url: str = DEFAULT_BASE_URL,
        api_key_env: str = "OPENAI_API_KEY",
        concurrency: int = 8,
        timeout: float = 120.0,
        logprobs: bool = False,
        system_prompt: str | None = None,
        retry: RetryPolicy | None = None,
        extra_body: Mapping[str, Any] | None = None,
        **kwargs: Any,
    ):
        super().__init__(concurrency=concurrency, retry=retry, **kwargs)
        if not model:
            raise KnowboundError("the openai backend needs a model name (--model)")
        parts = urlsplit(base_url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise KnowboundError(f"base URL must be http(s)://host[:port]/path, got '{base_url}'")
        self.model = model
        self.base_url = base_url
        self.api_key_env = api_key_env
        self.timeout = timeout
        self.logprobs = logprobs
        self.system_prompt = system_prompt
        self.extra_body = dict(extra_body or {})
        clash = sorted(set(self.extra_body) & OWN_FIELDS)
        if clash:
            raise KnowboundError(f"extra_body may not set {', '.join(clash)}: knowbound sets "
                                 f"{'it' if len(clash) == 1 else 'them'} from the sampling parameters")
        self._scheme, self._host, self._port = parts.scheme, parts.hostname, parts.port
        self._path = parts.path.rstrip("/") + "/chat/completions"
        self.__api_key = os.environ.get(api_key_env) if api_key_env else None
        self._local = threading.local()  # one keep-alive connection per worker thread

    def __repr__(self) -> str:
        return f"OpenAIBackend(model={self.model!r}, base_url={self.base_url!r}, concurrency={self.concurrency})"

    # -- one try of one request ------------------------------------------------------------------

    def request(self, prompt: str, params: SamplingParams, n: int, seed: int | None) -> list[Completion]:
        """POST one chat completion asking for ``n`` choices; raise ``RequestError`` on failure."""
        messages = [{"role": "user", "content": prompt}]
        if self.system_prompt:
            messages.insert(0, {"role": "system", "content": self.system_prompt})
        body: dict[str, Any] = {
            **self.extra_body,
            "model": self.model,
            "messages": messages,
            "n": n,
            "temperature": params.temperature,
            "top_p": params.top_p,
            "max_tokens": params.max_new_tokens,
        }
        if params.stop:
            body["stop"] = list(params.stop)
        if seed is not None:
            body["seed"] = seed
        if self.logprobs:
            body["logprobs"] = True
        status, retry_after, data = self._post(json.dumps(body).encode("utf-8"))
        if status != 200:
            detail = data[:200].decode("utf-8", "replace").strip()
            raise RequestError(f"HTTP {status}: {detail}", retryable=status in RETRYABLE_STATUS,
                               retry_after=retry_after)
        try:
            choices = json.loads(data)["choices"]
            return [self._completion(choice) for choice in choices]
        except (ValueError, KeyError, TypeError) as exc:
            raise RequestError(f"malformed response: {type(exc).__name__}: {exc}") from None

    def _completion(self, choice: dict) -> Completion:
        text = (choice.get("message") or {}).get("content") or ""
        reason = choice.get("finish_reason") or "stop"
        logprob = None
        content = (choice.get("logprobs") or {}).get("content")
        if self.logprobs and content:
            logprob = float(sum(tok["logprob"] for tok in content))
        if reason in ("stop", "length", "eos"):
            return Completion(text=text, finish_reason="length" if reason == "length" else "stop", logprob=logprob)
        # content_filter, tool_calls, ...: whatever text came back is not an answer to grade.
        return Completion(text="", finish_reason="error", error=f"finish_reason '{reason}'")

    def _post(self, payload: bytes) -> tuple[int, float | None, bytes]:
        headers = {"Content-Type": "application/json", "Accept": "application/json"}
        if self.__api_key:
            headers["Authorization"] = f"Bearer {self.__api_key}"
        conn = self._connection()
        try:
            conn.request("POST", self._path, body=payload, headers=headers)
            resp = conn.getresponse()
            data = resp.read()
        except (OSError, http.client.HTTPException) as exc:
            # Timeouts, refused and dropped connections: worth another try on a fresh connection.
            self._local.conn = None
            conn.close()
            raise RequestError(f"connection failed: {type(exc).__name__}: {exc}".rstrip(": ")) from None
        if resp.will_close:
            self._local.conn = None
            conn.close()
        return resp.status, parse_retry_after(resp.getheader("Retry-After")), data

    def _connection(self) -> http.client.HTTPConnection:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            cls = http.client.HTTPSConnection if self._scheme == "https" else http.client.HTTPConnection
            conn = cls(self._host, self._port, timeout=self.timeout)
            self._local.conn = conn
        return conn
