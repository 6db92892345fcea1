"""Benchmark: the chat template's prefix run once per batch (``SHARED_PREFIX_MIN``) vs whole prompts.

On a finished run, it takes the first ``--questions`` questions of ``--set`` (default ``test``)
and, on one loaded model, runs the eval's passes twice for each prompt in ``--prompts``:

* baseline: every prompt whole, left-padded (``SHARED_PREFIX_MIN`` set out of reach: the code
  before);
* knowbound: the tokens the chat template puts before every user message (its system prompt,
  ``HFBackend.template_prefix``) run once on one row, and their KV cache is copied to each row;
  only the rest of each prompt is left-padded after them (the default). An instruction inside
  the user message (the honest prompt's) is not part of it.

The passes are those of the eval stage:

* greedy answers (``eval.max_new_tokens``, the model's stop strings);
* ``--samples`` answers per question at temperature 1 (the self-consistency baseline), seeded;
* the refusal's opening words scored after each prompt (``p_refusal``);
* the P(IK) head's states of the greedy answers (``answer_states``).

It prints questions/s for both, the ratio, how many greedy and sampled answers are identical
(the shared prefix changes float rounding, not the computation), and the largest difference in
the scores and states. The last line is JSON: ``{prompt}_{pass}_speedup`` for each, and the
agreement figures.

    .venv/bin/python benchmarks/shared_prefix.py runs/smollm2-facts [--questions 120] [--prompts bare honest]
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path


def main() -> None:
    import torch

    import knowbound.backends.hf as hf
    from knowbound.backends import open_backend
    from knowbound.config import load_config
    from knowbound.datasets import load_questions
    from knowbound.loop.eval import refusal_start
    from knowbound.loop.rundir import RunDir, resolve_model
    from knowbound.methods.phrases import REFUSAL
    from knowbound.prompts import render_prompt
    from knowbound.types import SamplingParams

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("run_dir")
    parser.add_argument("--questions", type=int, default=120)
    parser.add_argument("--set", default="test", help="the run's question set to take them from")
    parser.add_argument("--prompts", nargs="+", default=None, help="prompt names (default: the run's, and honest)")
    parser.add_argument("--samples", type=int, default=5, help="sampled answers per question (0: skip)")
    args = parser.parse_args()
    run = Path(args.run_dir)
    cfg = load_config(run / "config.yaml")
    resolved = RunDir(cfg, log=lambda message: None)
    resolve_model(resolved)
    backend = open_backend("hf", resolved.model_path, model_settings=cfg.model)
    questions = load_questions(str(run / "questions" / f"{args.set}.jsonl")).questions[:args.questions]
    stop = tuple(cfg.model.stop or ())
    greedy = SamplingParams(n=1, temperature=0.0, max_new_tokens=cfg.eval.max_new_tokens, stop=stop)
    sampled = SamplingParams(n=max(1, args.samples), temperature=1.0, max_new_tokens=cfg.eval.max_new_tokens,
                             stop=stop, seed=7)
    refusal = [refusal_start(REFUSAL)]
    default_min = hf.SHARED_PREFIX_MIN

    def passes(prompts: list[str]) -> tuple[dict, dict]:
        timings, out = {}, {}
        t = time.perf_counter()
        out["greedy"] = backend.generate(prompts, greedy)
        timings["greedy"] = time.perf_counter() - t
        if args.samples:
            t = time.perf_counter()
            out["samples"] = backend.generate(prompts, sampled)
            timings["samples"] = time.perf_counter() - t
        t = time.perf_counter()
        out["score"] = backend.logprobs_of(prompts, [refusal] * len(prompts))
        timings["score"] = time.perf_counter() - t
        t = time.perf_counter()
        out["states"] = backend.answer_states(prompts, [o[0].text for o in out["greedy"]])
        timings["states"] = time.perf_counter() - t
        return timings, out

    backend.generate([render_prompt(cfg.prompt, q) for q in questions[:8]], greedy)  # warm-up
    figures: dict = {"run": run.name, "set": args.set, "questions": len(questions), "threads": torch.get_num_threads(),
                     "shared_prefix_min": default_min}
    for name in args.prompts or list(dict.fromkeys([cfg.prompt, "honest"])):
        prompts = [render_prompt(name, q) for q in questions]
        encoded = backend.encode_prompts(prompts)
        prefix = backend._prefix_pad(encoded)[0]
        shared = 0 if prefix is None else prefix.shape[1]
        mean_len = sum(map(len, encoded)) / len(encoded)
        hf.SHARED_PREFIX_MIN = 10**9
        t_whole, whole = passes(prompts)
        hf.SHARED_PREFIX_MIN = default_min
        t_pref, pref = passes(prompts)
        print(f"prompt '{name}': {mean_len:.1f} tokens on average, the template's first {shared} run once")
        for key in t_whole:
            ratio = t_whole[key] / t_pref[key]
            print(f"  {key:8s} whole prompts {len(prompts) / t_whole[key]:7.1f} q/s   shared prefix "
                  f"{len(prompts) / t_pref[key]:7.1f} q/s   {ratio:.2f}x")
            figures[f"{name}_{key}_speedup"] = round(ratio, 3)
        same_greedy = sum(a[0].text == b[0].text for a, b in zip(whole["greedy"], pref["greedy"]))
        score_diff = max(abs(a[0] - b[0]) for a, b in zip(whole["score"], pref["score"]))
        hidden_diff = max(float((a["hidden"] - b["hidden"]).abs().max())
                          for a, b in zip(whole["states"], pref["states"]))
        print(f"  identical greedy answers {same_greedy}/{len(prompts)}; largest difference: refusal score "
              f"{score_diff:.1e} (log-prob), head state {hidden_diff:.1e}")
        figures.update({f"{name}_tokens": round(mean_len, 1), f"{name}_shared_tokens": shared,
                        f"{name}_greedy_identical": round(same_greedy / len(prompts), 4),
                        f"{name}_max_score_diff": score_diff, f"{name}_max_hidden_diff": hidden_diff})
        if args.samples:
            total = sum(len(o) for o in whole["samples"])
            same = sum(a.text == b.text for x, y in zip(whole["samples"], pref["samples"]) for a, b in zip(x, y))
            print(f"  identical sampled answers {same}/{total}")
            figures[f"{name}_samples_identical"] = round(same / total, 4)
    figures["torch"] = torch.__version__
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
