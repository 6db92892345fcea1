"""Sampling throughput, side by side on this machine.

1. The ``hf`` backend against the loop users write -- one prompt at a time,
   ``model.generate(..., do_sample=True, num_return_sequences=n)`` -- on the same randomly
   initialised Llama (hidden 256, 4 layers, ~2.6k words: ~4M parameters), the same chat-formatted
   prompts, ``max_new_tokens=16`` for both. (The random model rarely writes its end token, so both
   sides generate ~16 tokens per sample; the mean is printed for each.)
2. The ``openai`` backend at concurrency 1, 8 and 32 against the local test server
   (``knowbound.testing.server``, run in its own process) answering a canned sentence after 50 ms.

Usage: ``.venv/bin/python benchmarks/sampling.py [--questions 200] [--n 10] [--threads 1]``.
The last line is JSON with the headline figures.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

QUESTION = "What is the capital of w{a} and w{b}?"
CANNED_ANSWER = "The capital of Norway is Oslo, a city on the Oslofjord."
MAX_NEW_TOKENS = 16


def prompts(count: int) -> list[str]:
    from knowbound.prompts import TYPICAL_PROMPT

    return [TYPICAL_PROMPT.format(question=QUESTION.format(a=k, b=k + 7)) for k in range(count)]


def naive_loop(model_dir: Path, texts: list[str], n: int) -> tuple[float, float]:
    """(samples/s, mean new tokens) for one-prompt-at-a-time ``model.generate``."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModelForCausalLM.from_pretrained(model_dir).eval()
    lengths = []

    def one(text: str) -> None:
        chat = tok.apply_chat_template([{"role": "user", "content": text}], tokenize=False, add_generation_prompt=True)
        enc = tok(chat, return_tensors="pt", add_special_tokens=False)
        with torch.no_grad():
            out = model.generate(**enc, do_sample=True, temperature=1.0, num_return_sequences=n,
                                 max_new_tokens=MAX_NEW_TOKENS, pad_token_id=tok.pad_token_id)
        new = out[:, enc["input_ids"].shape[1]:]
        is_end = (new == tok.eos_token_id).int()
        ended = is_end.any(1)
        lengths.extend(torch.where(ended, is_end.argmax(1), torch.full_like(ended, new.shape[1], dtype=torch.long)).tolist())

    one(texts[0])  # warm-up
    lengths.clear()
    start = time.perf_counter()
    for text in texts:
        one(text)
    seconds = time.perf_counter() - start
    return len(texts) * n / seconds, sum(lengths) / len(lengths)


def hf_backend(model_dir: Path, texts: list[str], n: int, threads: int | None) -> tuple[float, float]:
    """(samples/s, mean new tokens) for the hf backend, all prompts in one call."""
    from knowbound.backends import get_backend
    from knowbound.types import SamplingParams

    backend = get_backend("hf", model=str(model_dir), threads=threads)
    params = SamplingParams(n=n, temperature=1.0, max_new_tokens=MAX_NEW_TOKENS, seed=0)
    backend.generate(texts[:2], params)  # warm-up
    start = time.perf_counter()
    out = backend.generate(texts, params)
    seconds = time.perf_counter() - start
    tokens = [len(backend.tokenizer(c.text, add_special_tokens=False)["input_ids"]) for o in out for c in o]
    return len(texts) * n / seconds, sum(tokens) / len(tokens)


def openai_rates(texts: list[str], n: int, latency: float) -> dict[int, float]:
    """Samples/s of the openai backend at concurrency 1, 8, 32 against a server in its own process."""
    from knowbound.backends import get_backend
    from knowbound.types import SamplingParams

    server = subprocess.Popen([sys.executable, "-m", "knowbound.testing.server", "--reply", CANNED_ANSWER,
                               "--latency", str(latency)], stdout=subprocess.PIPE, text=True)
    try:
        base_url = server.stdout.readline().strip()
        rates = {}
        for concurrency in (1, 8, 32):
            backend = get_backend("openai", model="canned", base_url=base_url, concurrency=concurrency)
            params = SamplingParams(n=n, temperature=1.0, max_new_tokens=MAX_NEW_TOKENS, seed=0)
            start = time.perf_counter()
            out = backend.generate(texts, params)
            seconds = time.perf_counter() - start
            assert all(c.text == CANNED_ANSWER for o in out for c in o), "a request failed"
            rates[concurrency] = len(texts) * n / seconds
        return rates
    finally:
        server.terminate()
        server.wait()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--questions", type=int, default=200)
    parser.add_argument("--n", type=int, default=10, help="samples per question")
    parser.add_argument("--threads", type=int, default=1,
                        help="torch CPU threads for both hf sides (default 1: best on a shared 2-core box)")
    parser.add_argument("--latency", type=float, default=0.05, help="server latency per request, seconds")
    args = parser.parse_args()

    import torch

    from knowbound.testing.tiny import make_tiny_model

    if args.threads:
        torch.set_num_threads(args.threads)  # the same for both sides
    texts = prompts(args.questions)
    with tempfile.TemporaryDirectory() as tmp:
        model_dir = make_tiny_model(Path(tmp) / "model", hidden_size=256, num_layers=4, num_heads=4,
                                    vocab_padding=2500, seed=0)
        from transformers import AutoConfig

        config = AutoConfig.from_pretrained(model_dir)
        params = config.num_hidden_layers * (4 * config.hidden_size**2 + 3 * config.hidden_size
                                             * config.intermediate_size) + 2 * config.vocab_size * config.hidden_size
        naive_rate, naive_len = naive_loop(model_dir, texts, args.n)
        hf_rate, hf_len = hf_backend(model_dir, texts, args.n, args.threads)
    api = openai_rates(texts, args.n, args.latency)

    print(f"model: Llama hidden {config.hidden_size}, {config.num_hidden_layers} layers, vocab {config.vocab_size} "
          f"(~{params / 1e6:.1f}M parameters); {args.questions} questions x {args.n} samples, "
          f"max_new_tokens={MAX_NEW_TOKENS}, torch threads={torch.get_num_threads()}")
    print(f"{'':34}{'samples/s':>12}{'new tokens/sample':>20}")
    print(f"{'naive loop (generate per prompt)':34}{naive_rate:12.1f}{naive_len:20.2f}")
    print(f"{'hf backend':34}{hf_rate:12.1f}{hf_len:20.2f}")
    print(f"hf speedup: {hf_rate / naive_rate:.1f}x (target >= 3x)")
    print(f"openai backend, {args.latency * 1000:.0f} ms per request, {args.n} choices per request:")
    for concurrency, rate in api.items():
        print(f"  concurrency {concurrency:>2}: {rate:10.1f} samples/s ({rate / api[1]:.1f}x)")
    print(f"openai speedup at 32: {api[32] / api[1]:.1f}x (target >= 20x)")
    print(json.dumps({
        "hf_speedup": round(hf_rate / naive_rate, 2),
        "openai_speedup_32": round(api[32] / api[1], 2),
        "hf_samples_per_s": round(hf_rate, 1),
        "naive_samples_per_s": round(naive_rate, 1),
        "openai_samples_per_s": {str(c): round(r, 1) for c, r in api.items()},
    }))


if __name__ == "__main__":
    main()
