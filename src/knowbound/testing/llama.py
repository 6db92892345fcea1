"""llama.cpp's OpenAI-compatible server (``llama-cpp-python[server]``) on a loopback port, for the
slow test and ``benchmarks/llama_server.py``.

llama-cpp-python compiles llama.cpp when it is installed, so it lives in its own environment
(``make llama-server`` builds ``.venv-llama``, for AVX2 CPUs: a native build of 0.3.36 crashed in
its first ``llama_decode`` on an AVX-512/AMX machine). ``LLAMA_PYTHON`` (or the argument) names that
environment's Python::

    with llama_server(python, "model.gguf", alias="smollm2-135m") as base_url:
        backend = get_backend("openai", model="smollm2-135m", base_url=base_url)
"""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

from knowbound.errors import KnowboundError

DEFAULT_PYTHON = Path(__file__).resolve().parents[3] / ".venv-llama" / "bin" / "python"
# llama.cpp's server samples with top-k 40, min-p 0.05 and a repetition penalty of 1.1 unless told
# otherwise; these request fields make it sample from the model's own distribution, as hf does.
PLAIN_SAMPLING = {"top_k": 0, "min_p": 0.0, "repeat_penalty": 1.0}


def llama_python(python: str | os.PathLike | None = None) -> Path | None:
    """The Python with llama-cpp-python: the argument, $LLAMA_PYTHON, or .venv-llama; None if absent."""
    for candidate in (python, os.environ.get("LLAMA_PYTHON"), DEFAULT_PYTHON):
        if candidate and Path(candidate).is_file():
            return Path(candidate)
    return None


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def llama_server(python: str | os.PathLike, gguf: str | os.PathLike, *, alias: str = "model", threads: int = 2,
                 log: str | os.PathLike | None = None, timeout: float = 120.0) -> Iterator[str]:
    """Run ``python -m llama_cpp.server`` on ``gguf`` until the block ends; yields its base URL."""
    port = free_port()
    cmd = [str(python), "-m", "llama_cpp.server", "--model", str(gguf), "--model_alias", alias,
           "--host", "127.0.0.1", "--port", str(port), "--n_threads", str(threads), "--n_ctx", "2048"]
    out = open(log, "wb") if log else subprocess.DEVNULL
    try:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT)
    finally:
        if log:
            out.close()
    url = f"http://127.0.0.1:{port}/v1"
    try:
        deadline = time.monotonic() + timeout
        while True:
            if proc.poll() is not None:
                raise KnowboundError(f"llama.cpp server exited with status {proc.returncode}"
                                     + (f"; see {log}" if log else ""))
            try:
                with urllib.request.urlopen(f"{url}/models", timeout=2):
                    break
            except OSError:
                if time.monotonic() > deadline:
                    raise KnowboundError(f"llama.cpp server did not answer within {timeout:.0f} s") from None
                time.sleep(0.25)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
