"""Benchmark: sampling SmolLM2-135M-Instruct, the hf backend against the loop users write.

Both sides answer the same GeoNames training questions through the model's chat template: greedy
plus ``--n`` samples at temperature 1, at most 24 new tokens, stopping at the end of the first
sentence or line (". ", "\\n") -- the probe's settings in ``configs/smollm2-facts.yaml``. The
naive side is one prompt at a time, ``model.generate(do_sample=True, num_return_sequences=n,
stop_strings=...)`` plus one greedy call. With ``--server URL`` (an OpenAI-compatible server
serving the same model, e.g. ``python -m llama_cpp.server --model FILE.gguf``) the ``openai``
backend is timed too. The last line is JSON: {"hf_samples_per_s", "naive_samples_per_s",
"hf_speedup", ...}.

    .venv/bin/python benchmarks/real_model.py [--questions 24] [--n 10] [--server http://127.0.0.1:8000/v1]
"""

from __future__ import annotations

import argparse
import json
import time

STOP = (". ", "\n")
MAX_NEW_TOKENS = 24


def naive(model_dir: str, prompts: list[str], n: int) -> float:
    """Samples per second (greedy + n per prompt) of one-prompt-at-a-time ``model.generate``."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModelForCausalLM.from_pretrained(model_dir).eval()
    start = time.perf_counter()
    for text in prompts:
        chat = tok.apply_chat_template([{"role": "user", "content": text}], tokenize=False, add_generation_prompt=True)
        enc = tok(chat, return_tensors="pt", add_special_tokens=False)
        with torch.no_grad():
            model.generate(**enc, do_sample=False, max_new_tokens=MAX_NEW_TOKENS, stop_strings=list(STOP),
                           tokenizer=tok, pad_token_id=tok.eos_token_id)
            model.generate(**enc, do_sample=True, temperature=1.0, num_return_sequences=n,
                           max_new_tokens=MAX_NEW_TOKENS, stop_strings=list(STOP), tokenizer=tok,
                           pad_token_id=tok.eos_token_id)
    return len(prompts) * (n + 1) / (time.perf_counter() - start)


def backend_rate(backend, prompts: list[str], n: int) -> float:
    from knowbound.types import SamplingParams

    start = time.perf_counter()
    backend.generate(prompts, SamplingParams(n=1, temperature=0.0, max_new_tokens=MAX_NEW_TOKENS, stop=STOP))
    backend.generate(prompts, SamplingParams(n=n, temperature=1.0, max_new_tokens=MAX_NEW_TOKENS, stop=STOP, seed=0))
    return len(prompts) * (n + 1) / (time.perf_counter() - start)


def main() -> None:
    from knowbound.backends import get_backend
    from knowbound.datasets import load_questions
    from knowbound.gguf_models import resolve_model_source

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--questions", type=int, default=24)
    parser.add_argument("--n", type=int, default=10)
    parser.add_argument("--server", default=None, help="an OpenAI-compatible server serving the same model")
    parser.add_argument("--server-model", default="smollm2-135m")
    parser.add_argument("--concurrency", type=int, default=4)
    args = parser.parse_args()

    model = resolve_model_source("smollm2-135m").path
    prompts = [q.question for q in load_questions("geofacts:train", limit=args.questions).questions]
    hf = backend_rate(get_backend("hf", model=model), prompts, args.n)
    base = naive(model, prompts, args.n)
    print(f"{args.questions} questions x (greedy + {args.n}), <= {MAX_NEW_TOKENS} tokens, stop at the first sentence")
    print(f"  naive model.generate loop  {base:7.2f} samples/s  1.00x")
    print(f"  hf backend                 {hf:7.2f} samples/s  {hf / base:.2f}x")
    result = {"model": "smollm2-135m", "questions": args.questions, "n": args.n, "naive_samples_per_s": round(base, 2),
              "hf_samples_per_s": round(hf, 2), "hf_speedup": round(hf / base, 2)}
    if args.server:
        server = get_backend("openai", model=args.server_model, base_url=args.server, concurrency=args.concurrency)
        rate = backend_rate(server, prompts, args.n)
        print(f"  openai backend ({args.server}, concurrency {args.concurrency})  {rate:7.2f} samples/s  "
              f"{rate / base:.2f}x")
        result["server_samples_per_s"] = round(rate, 2)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
