"""Benchmark: the P(IK) head's forward pass (``HFBackend.answer_states``), shared prompts vs one pass per pair.

On a finished run with a ``pik`` method built with ``build.pik_samples``, it takes the head's
training rows (``data/pik.jsonl``: each question's greedy answer, then its probe samples) for the
first ``--questions`` questions and computes their states twice, on the same loaded model:

* baseline: one full forward pass per (prompt, answer) pair (``share_prompts=False``), padded
  batches sorted by length, the way the head ran before;
* knowbound: each distinct prompt once, then its distinct answers on its KV cache
  (``share_prompts=True``, the default).

It prints rows/s for both, the ratio, the share of distinct answers, and the largest difference
between the two in any feature the head reads (the token log-probs and the five hidden rows). It
checks a second time on the greedy rows alone (one answer per prompt: nothing to share, so the
ratio shows the cost of the split pass).

Then the eval's scoring pass (``logprobs_of``: the refusal's opening words after each of the
first ``--questions`` x 3 `test` prompts, as the eval scores ``p_refusal``): the same batches with
logits at every position (the baseline, the code before) against logits for the continuation's
tail only (``logits_to_keep``, the code now); the values must be equal bit for bit. The last line
is JSON. Both parts run whole prompts (no shared prompt prefix: see ``benchmarks/shared_prefix.py``).

    .venv/bin/python benchmarks/answer_states.py runs/smollm2-facts [--questions 60]
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path


def main() -> None:
    import torch

    from knowbound.backends import open_backend
    from knowbound.config import load_config
    from knowbound.io import read_jsonl
    from knowbound.loop.rundir import RunDir, resolve_model

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("run_dir")
    parser.add_argument("--questions", type=int, default=60, help="training questions to take (greedy + samples each)")
    args = parser.parse_args()
    run = Path(args.run_dir)
    cfg = load_config(run / "config.yaml")
    rows = read_jsonl(run / "data" / "pik.jsonl")
    groups = list(dict.fromkeys(r["group"] for r in rows))[:args.questions]
    keep = set(groups)
    rows = [r for r in rows if r["group"] in keep]
    if not any(r.get("sample") for r in rows):
        raise SystemExit(f"{run}/data/pik.jsonl has no sample rows: build the run with build.pik_samples: true")
    import knowbound.backends.hf as hf

    # Both comparisons here run whole prompts: the shared prompt prefix (the chat template's system
    # prompt, run once per batch) is measured on its own by benchmarks/shared_prefix.py.
    hf.SHARED_PREFIX_MIN = 10**9
    resolved = RunDir(cfg, log=lambda message: None)
    resolve_model(resolved)
    backend = open_backend("hf", resolved.model_path, model_settings=cfg.model)
    threads = torch.get_num_threads()

    def timed(subset: list[dict], share: bool) -> tuple[list[dict], float]:
        t = time.perf_counter()
        states = backend.answer_states([r["prompt"] for r in subset], [r["answer"] for r in subset],
                                       share_prompts=share)
        return states, time.perf_counter() - t

    def largest_difference(a: list[dict], b: list[dict]) -> tuple[float, float]:
        hidden = max(float((x["hidden"] - y["hidden"]).abs().max()) for x, y in zip(a, b))
        assert all(len(x["token_logprobs"]) == len(y["token_logprobs"]) for x, y in zip(a, b))
        logp = max((abs(u - v) for x, y in zip(a, b) for u, v in zip(x["token_logprobs"], y["token_logprobs"])),
                   default=0.0)
        return hidden, logp

    timed(rows[:8], True)  # warm-up: the first pass allocates
    figures = {}
    for label, subset in (("greedy + samples", rows), ("greedy only", [r for r in rows if not r.get("sample")])):
        distinct = len({(r["prompt"], r["answer"]) for r in subset})
        flat, t_flat = timed(subset, False)
        shared, t_shared = timed(subset, True)
        hidden, logp = largest_difference(flat, shared)
        print(f"{label}: {len(subset)} rows, {len({r['prompt'] for r in subset})} prompts, {distinct} distinct answers")
        print(f"  one pass per pair  {len(subset) / t_flat:8.1f} rows/s  ({t_flat:.1f} s)")
        print(f"  shared prompts     {len(subset) / t_shared:8.1f} rows/s  ({t_shared:.1f} s)   {t_flat / t_shared:.2f}x")
        print(f"  largest difference: hidden {hidden:.2e}, token log-prob {logp:.2e}")
        figures[label] = {"rows": len(subset), "distinct": distinct, "flat_rows_per_s": round(len(subset) / t_flat, 2),
                          "shared_rows_per_s": round(len(subset) / t_shared, 2),
                          "speedup": round(t_flat / t_shared, 3), "max_hidden_diff": hidden, "max_logprob_diff": logp}
    # The eval's scoring: every position's logits (before) against the tail's (now).
    from knowbound.datasets import load_questions
    from knowbound.loop.eval import refusal_start
    from knowbound.prompts import render_prompt
    from knowbound.methods.phrases import REFUSAL

    def every_position(self, batch) -> list[float]:
        ids, mask = self._left_pad([ctx + cont for _, _, ctx, cont in batch])
        positions = (mask.cumsum(-1) - 1).clamp(min=0)
        logits = self.model(input_ids=ids, attention_mask=mask, position_ids=positions).logits.float()
        logp = logits[:, :-1].log_softmax(-1).gather(2, ids[:, 1:, None]).squeeze(2)
        return [float(logp[r, logp.shape[1] - len(cont):].sum()) if cont else 0.0 for r, (_, _, _, cont) in enumerate(batch)]

    questions = load_questions(str(run / "questions" / "test.jsonl")).questions[:3 * args.questions]
    prompts = [render_prompt(cfg.prompt, q) for q in questions]
    continuation = [[refusal_start(REFUSAL)]] * len(prompts)
    tail_only = hf.HFBackend._score_batch
    timings, values = {}, {}
    for label, method in (("every position", every_position), ("tail only", tail_only)):
        hf.HFBackend._score_batch = method
        t = time.perf_counter()
        values[label] = backend.logprobs_of(prompts, continuation)
        timings[label] = time.perf_counter() - t
    hf.HFBackend._score_batch = tail_only
    same = values["every position"] == values["tail only"]
    score_speedup = timings["every position"] / timings["tail only"]
    print(f"scoring {len(prompts)} prompts' refusal start: every position {len(prompts) / timings['every position']:.1f} "
          f"prompts/s, tail only {len(prompts) / timings['tail only']:.1f} prompts/s, {score_speedup:.2f}x; "
          f"equal bit for bit: {same}")
    both, greedy = figures["greedy + samples"], figures["greedy only"]
    print(json.dumps({"run": run.name, "questions": len(groups), "threads": threads, "rows": both["rows"],
                      "distinct_share": round(both["distinct"] / both["rows"], 3),
                      "flat_rows_per_s": both["flat_rows_per_s"], "shared_rows_per_s": both["shared_rows_per_s"],
                      "speedup": both["speedup"], "greedy_only_speedup": greedy["speedup"],
                      "max_hidden_diff": max(both["max_hidden_diff"], greedy["max_hidden_diff"]),
                      "max_logprob_diff": max(both["max_logprob_diff"], greedy["max_logprob_diff"]),
                      "score_prompts": len(prompts), "score_speedup": round(score_speedup, 3),
                      "score_bitwise_equal": same, "torch": torch.__version__}))


if __name__ == "__main__":
    main()
