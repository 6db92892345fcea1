"""Benchmark: build knowledge world v2 from an empty cache, and check it for the name shortcut.

Prints the wall time of each build step, the unaligned chat model's greedy accuracy by fact
exposure, pretraining throughput in fp32 against bf16 autocast, and, side by side with world v1
(``--baseline tiny``), the shortcut checks of ``knowbound.world.shortcuts``: how well the norm of
the name-token embeddings separates never-seen from seen people (max(AUROC, 1 - AUROC); 0.5 is
no shortcut) and the share of fictional-name tokens that occur in the corpus. Ends with one JSON
line: {"build_seconds", "accuracy_by_exposure", "name_norm_separation", "fictional_token_coverage",
"baseline": {...}, ...}.

    .venv/bin/python benchmarks/world.py [--preset v2] [--baseline tiny] [--seed 0] [--cache DIR]
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path



def throughput(bf16: bool, steps: int = 6) -> float:
    """Training tokens per second of the tiny preset's model on random batches."""
    import torch

    from knowbound.world.config import preset
    from knowbound.world.tokenizer import train_word_tokenizer
    from knowbound.world.pretrain import build_model

    cfg = preset("v2")
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
    from knowbound.world.shortcuts import shortcut_checks

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="v2")
    parser.add_argument("--baseline", default="tiny", help="the world to compare the shortcut checks with")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--cache", default=None, help="reuse worlds in this cache (default: a fresh temporary one)")
    args = parser.parse_args()

    fp32 = throughput(bf16=False)
    bf16 = throughput(bf16=True)
    print(f"pretraining throughput: fp32 {fp32:,.0f} tokens/s | bf16 autocast {bf16:,.0f} tokens/s "
          f"| fp32/bf16 = {fp32 / bf16:.2f}x")

    with tempfile.TemporaryDirectory() as tmp:
        cache = Path(args.cache or tmp)
        start = time.perf_counter()
        paths = build_world(preset(args.preset, seed=args.seed), cache)
        seconds = time.perf_counter() - start
        info = paths.load_info()
        checks = shortcut_checks(paths.root)
        base_paths = build_world(preset(args.baseline, seed=args.seed), cache)
        base_checks = shortcut_checks(base_paths.root)
    timings = info["timings"]
    print(f"build {args.preset}: {timings['total']} s (this call: {seconds:.1f} s): " + ", ".join(f"{k} {v} s" for k, v in timings.items() if k != "total"))
    ev = info["evaluation"]
    print("accuracy by fact exposure: " + ", ".join(
        f"{k} {'-' if v is None else f'{v:.3f}'}" for k, v in ev["accuracy_by_exposure"].items()))
    print(f"shortcut checks        {args.preset:>8} {args.baseline:>8}")
    for key in ("name_norm_separation", "fictional_token_coverage"):
        print(f"  {key:<22} {checks[key]:>8.3f} {base_checks[key]:>8.3f}")
    print(json.dumps({
        "preset": args.preset,
        # world.json's own timing: the build's, also when --cache found the world built
        "build_seconds": info["timings"]["total"],
        "accuracy_by_exposure": {k: (None if v is None else round(v, 4)) for k, v in ev["accuracy_by_exposure"].items()},
        "accuracy_unstated": None if ev.get("accuracy_unstated") is None else round(ev["accuracy_unstated"], 4),
        "chance": round(ev["chance"], 4),
        "refusal_rate": round(ev["refusal_rate"], 4),
        "name_norm_separation": round(checks["name_norm_separation"], 4),
        "fictional_token_coverage": round(checks["fictional_token_coverage"], 4),
        "pretrain_tokens_per_second": info["pretrain"].get("tokens_per_second"),
        "fp32_over_bf16": round(fp32 / bf16, 2),
        "baseline": {"preset": args.baseline, "name_norm_separation": round(base_checks["name_norm_separation"], 4),
                     "fictional_token_coverage": round(base_checks["fictional_token_coverage"], 4)},
    }))


if __name__ == "__main__":
    main()
