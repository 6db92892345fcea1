"""A real OpenAI-compatible chat-completions server on 127.0.0.1, with fault injection.

It answers ``POST /v1/chat/completions`` either from a backend (e.g. the ``hf`` backend on a tiny
model) or from canned replies, and can misbehave on purpose: HTTP errors (500, 429 with
Retry-After, ...), dropped connections (the socket closed with no response), added latency and
fewer choices than asked for. Tests and benchmarks run it in a thread::

    with ChatServer(replies="Paris", faults=Faults(fail_first=2)) as server:
        backend = get_backend("openai", model="m", base_url=server.base_url)

or in its own process: ``python -m knowbound.testing.server --reply Paris --latency 0.05``.
"""

from __future__ import annotations

import argparse
import json
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable, Mapping, Union

from knowbound.types import SamplingParams

Replies = Union[str, Mapping[str, str], Callable[[str, dict], str]]


@dataclass
class Faults:
    """What goes wrong, by request number (1-based, counted over all requests to the server)."""

    fail_first: int = 0  # the first k requests answer `fail_status`
    fail_every: int = 0  # every k-th request answers `fail_status`
    fail_status: int = 500
    retry_after: float | None = None  # sent as Retry-After with the failures
    drop_first: int = 0  # the first k requests get the connection closed without a response
    drop_every: int = 0  # every k-th request is dropped
    latency: float = 0.0  # seconds added to every request
    slow_first: int = 0  # the first k requests wait `slow_delay` seconds more
    slow_delay: float = 0.0
    hang_first: int = 0  # the first k requests never get an answer (until the server stops): client timeouts
    max_choices: int | None = None  # answer with at most this many choices

    def action(self, number: int) -> str:
        """'hang', 'drop', 'fail' or 'ok' for request ``number``."""
        if number <= self.hang_first:
            return "hang"
        if number <= self.drop_first or (self.drop_every and number % self.drop_every == 0):
            return "drop"
        if number <= self.fail_first or (self.fail_every and number % self.fail_every == 0):
            return "fail"
        return "ok"


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 256  # the default 5 makes bursts of connections wait for SYN retries


class ChatServer:
    """The server. ``backend`` answers with a model; otherwise ``replies`` gives canned text: one
    string, a mapping from a substring of the user message to a reply, or ``fn(message, body)``."""

    def __init__(self, backend: Any = None, replies: Replies = "", faults: Faults | None = None,
                 host: str = "127.0.0.1", port: int = 0, api_key: str | None = None):
        self.backend = backend
        self.replies = replies
        self.faults = faults or Faults()
        self.api_key = api_key
        self.requests: list[dict] = []  # every request body received, in order
        self.count = 0
        self._lock = threading.Lock()
        self._model_lock = threading.Lock()  # one generate at a time on the model
        self._httpd = _Server((host, port), _handler(self))
        self._thread: threading.Thread | None = None
        self._stopping = threading.Event()  # releases the requests that hang

    @property
    def base_url(self) -> str:
        host, port = self._httpd.server_address[:2]
        return f"http://{host}:{port}/v1"

    def start(self) -> "ChatServer":
        """Serve in a background thread."""
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and close the socket."""
        self._stopping.set()
        self._httpd.shutdown()
        self._httpd.server_close()

    def __enter__(self) -> "ChatServer":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    def next_action(self, body: dict) -> tuple[str, float]:
        """Count the request and decide what happens to it: (action, seconds to wait first)."""
        with self._lock:
            self.count += 1
            self.requests.append(body)
            number = self.count
        delay = self.faults.latency + (self.faults.slow_delay if number <= self.faults.slow_first else 0.0)
        return self.faults.action(number), delay

    def answer(self, body: dict) -> dict:
        """The chat.completion object for a request body."""
        message = next((m["content"] for m in reversed(body["messages"]) if m["role"] == "user"), "")
        n = int(body.get("n") or 1)
        if self.faults.max_choices is not None:
            n = min(n, self.faults.max_choices)
        if self.backend is not None:
            params = SamplingParams(n=n, temperature=float(body.get("temperature", 1.0)),
                                    top_p=float(body.get("top_p", 1.0)),
                                    max_new_tokens=int(body.get("max_tokens") or 16),
                                    stop=tuple(body.get("stop") or ()), seed=body.get("seed"))
            with self._model_lock:
                completions = self.backend.generate([message], params)[0]
            outs = [(c.text, c.finish_reason, c.logprob) for c in completions]
        else:
            outs = [(self._canned(message, body), "stop", None)] * n
        choices = []
        for i, (text, reason, logprob) in enumerate(outs):
            choice: dict[str, Any] = {"index": i, "message": {"role": "assistant", "content": text},
                                      "finish_reason": reason}
            if body.get("logprobs") and logprob is not None:
                choice["logprobs"] = {"content": [{"token": text, "logprob": logprob, "top_logprobs": []}]}
            choices.append(choice)
        return {"id": f"chatcmpl-{self.count}", "object": "chat.completion", "created": int(time.time()),
                "model": body.get("model", ""), "choices": choices,
                "usage": {"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0}}

    def _canned(self, message: str, body: dict) -> str:
        if callable(self.replies):
            return self.replies(message, body)
        if isinstance(self.replies, Mapping):
            return next((r for k, r in self.replies.items() if k in message), "")
        return self.replies


def _handler(server: ChatServer):
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive, as real servers do

        def log_message(self, *args) -> None:  # quiet: tests read results, not logs
            pass

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length)
            if not self.path.rstrip("/").endswith("/chat/completions"):
                return self._send(404, {"error": {"message": "not found"}})
            if server.api_key and self.headers.get("Authorization") != f"Bearer {server.api_key}":
                return self._send(401, {"error": {"message": "invalid API key"}})
            try:
                body = json.loads(raw)
            except ValueError:
                return self._send(400, {"error": {"message": "invalid JSON"}})
            action, delay = server.next_action(body)
            if delay:
                time.sleep(delay)
            if action == "hang":
                server._stopping.wait()
                self.close_connection = True
                return None
            if action == "drop":
                self.close_connection = True  # no response at all: the client sees a dropped socket
                return None
            if action == "fail":
                headers = {}
                if server.faults.retry_after is not None:
                    headers["Retry-After"] = f"{server.faults.retry_after:g}"
                return self._send(server.faults.fail_status, {"error": {"message": "injected fault"}}, headers)
            return self._send(200, server.answer(body))

        def _send(self, status: int, obj: dict, headers: Mapping[str, str] | None = None) -> None:
            data = json.dumps(obj).encode("utf-8")
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            for key, value in (headers or {}).items():
                self.send_header(key, value)
            self.end_headers()
            self.wfile.write(data)

    return Handler


def main(argv: list[str] | None = None) -> None:
    """Run a canned-reply server in the foreground; prints its base URL on the first line."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reply", default="Paris", help="the text of every answer")
    parser.add_argument("--latency", type=float, default=0.0, help="seconds added to each request")
    parser.add_argument("--port", type=int, default=0)
    args = parser.parse_args(argv)
    server = ChatServer(replies=args.reply, faults=Faults(latency=args.latency), port=args.port)
    print(server.base_url, flush=True)
    try:
        server._httpd.serve_forever()
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
