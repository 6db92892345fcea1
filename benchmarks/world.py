"""Benchmark: build the `tiny` knowledge world from an empty cache.

Prints the wall time of each build step against the 5-minute bar, the unaligned chat model's
greedy accuracy by exposure, and, side by side, pretraining throughput in fp32 (what the build
uses on CPU) against bf16 autocast (what the feasibility study used). Ends with one JSON line:
{"build_seconds", "accuracy_by_exposure", "chance", "refusal_rate", ...}.

    .venv/bin/python benchmarks/world.py [--preset tiny] [--seed 0]
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

BAR_SECONDS = 300


def throughput(bf16: bool, steps: int = 6) -> float:
    """Training tokens per second of the tiny preset's model on random batches."""
    import torch

    from knowbound.world.config import preset
    from knowbound.world.tokenizer import train_word_tokenizer
    from knowbound.world.pretrain import build_model

    cfg = preset("tiny")
    tok = train_word_tokenizer([" ".join(f"w{i}" for i in range(2700))])
    model = build_model(cfg.model, tok, seed=0)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    gen = torch.Generator().manual_seed(0)
    batch = torch.randint(0, len(tok), (cfg.pretrain.batch_size, cfg.pretrain.seq_len), generator=gen)
    for i in range(steps + 2):
        if i == 2:
            start = time.perf_counter()
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            loss = model(input_ids=batch, labels=batch).loss
        loss.backward()
        opt.step()
        opt.zero_grad()
    return steps * batch.numel() / (time.perf_counter() - start)


def main() -> None:
    from knowbound.world.build import build_world
    from knowbound.world.config import preset

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="tiny")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    fp32 = throughput(bf16=False)
    bf16 = throughput(bf16=True)
    print(f"pretraining throughput: fp32 {fp32:,.0f} tokens/s | bf16 autocast {bf16:,.0f} tokens/s "
          f"| fp32/bf16 = {fp32 / bf16:.2f}x")

    with tempfile.TemporaryDirectory() as cache:
        start = time.perf_counter()
        paths = build_world(preset(args.preset, seed=args.seed), Path(cache))
        seconds = time.perf_counter() - start
        info = paths.load_info()
    timings = info["timings"]
    print(f"build: {seconds:.1f} s (bar {BAR_SECONDS} s, {seconds / BAR_SECONDS:.2f}x of it): "
          + ", ".join(f"{k} {v} s" for k, v in timings.items() if k != "total"))
    ev = info["evaluation"]
    print(json.dumps({
        "build_seconds": round(seconds, 1),
        "accuracy_by_exposure": {k: (None if v is None else round(v, 4)) for k, v in ev["accuracy_by_exposure"].items()},
        "chance": round(ev["chance"], 4),
        "refusal_rate": round(ev["refusal_rate"], 4),
        "pretrain_tokens_per_second": info["pretrain"]["tokens_per_second"],
        "fp32_over_bf16": round(fp32 / bf16, 2),
    }))


if __name__ == "__main__":
    main()
