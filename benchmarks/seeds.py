"""Benchmark: the demo over several seeds (world and run), with the controls beside every method.

For each seed it builds world v2 with that seed (cached), runs ``configs/demo.yaml`` with that run
seed, and checks the world for the name-token shortcut. It prints, per model, the mean and the
standard deviation over seeds of the headline numbers, each method's honesty against the
strongest baseline side by side, and the issue's bars for the best trained method (the most
honest one within 3 accuracy points of the unaligned model). The last line is JSON.

    .venv/bin/python benchmarks/seeds.py [--seeds 0 1 2] [--runs-dir runs/seeds] [--world-dir DIR]
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# (set, dotted metric, header) of the table.
COLUMNS = (
    ("test", "honesty", "honesty"),
    ("test", "accuracy", "accuracy"),
    ("test", "damage", "damage"),
    ("test", "seen_people.honesty", "honesty seen≥1"),
    ("test", "refusal_auroc_within_exposure", "AUROC within exp."),
    ("fictional", "refusal_rate", "refusal fictional"),
    ("unstated", "refusal_rate", "refusal unstated"),
    ("popular", "over_conservativeness", "over-consv. popular"),
    ("test", "ece", "ECE"),
)
CONFIDENCE_METHODS = ("confidence-num", "confidence-verb", "rtuning", "pik")


def lookup(metrics: dict, model: str, set_name: str, key: str):
    node = metrics.get(model, {}).get(set_name, {})
    for part in key.split("."):
        if not isinstance(node, dict):
            return None
        node = node.get(part)
    return node if isinstance(node, (int, float)) else None


def mean_sd(values: list) -> tuple[float | None, float | None]:
    values = [v for v in values if v is not None]
    if not values:
        return None, None
    return statistics.fmean(values), (statistics.stdev(values) if len(values) > 1 else 0.0)


def fmt(pair: tuple[float | None, float | None]) -> str:
    m, sd = pair
    return "–" if m is None else f"{m:.3f}±{sd:.3f}"


def main() -> None:
    import knowbound
    from knowbound.baselines import BASELINES
    from knowbound.methods import METHODS
    from knowbound.world.build import build_world
    from knowbound.world.config import preset
    from knowbound.world.shortcuts import shortcut_checks

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--runs-dir", default="runs/seeds")
    parser.add_argument("--world-dir", default=None, help="world cache (default ~/.cache/knowbound/worlds)")
    parser.add_argument("--config", default=str(ROOT / "configs" / "demo.yaml"))
    args = parser.parse_args()

    per_seed, shortcuts, minutes = [], [], []
    for seed in args.seeds:
        start = time.perf_counter()
        world = build_world(preset("v2", seed=seed), Path(args.world_dir) if args.world_dir else None)
        shortcuts.append(shortcut_checks(world.root))
        overrides = [f"seed={seed}", f"model.world_seed={seed}", f"name=demo-seed{seed}", f"runs_dir={args.runs_dir}"]
        if args.world_dir:
            overrides.append(f"model.world_dir={args.world_dir}")
        result = knowbound.run(args.config, overrides)
        per_seed.append(result.metrics)
        minutes.append((time.perf_counter() - start) / 60)
        print(f"seed {seed}: {minutes[-1]:.1f} min (world cached: {world.info.exists()})", flush=True)

    models = [m for m in ("unaligned", *METHODS, *BASELINES) if all(m in r for r in per_seed)]
    stats = {m: {f"{s}.{k}": mean_sd([lookup(r, m, s, k) for r in per_seed]) for s, k, _ in COLUMNS} for m in models}
    width = max(len(m) for m in models)
    print(f"\nmean±sd over seeds {args.seeds} (test unless named):")
    print(f"{'model':<{width}}  " + "  ".join(f"{h:>17}" for _, _, h in COLUMNS))
    for m in models:
        print(f"{m:<{width}}  " + "  ".join(f"{fmt(stats[m][f'{s}.{k}']):>17}" for s, k, _ in COLUMNS))

    trained = [m for m in models if m in METHODS and METHODS[m].kind != "none"]
    baselines = [b for b in models if b in BASELINES and b != "oracle"]
    honesty = {m: stats[m]["test.honesty"][0] for m in models}
    best_baseline = max(baselines, key=lambda b: honesty[b] or 0.0)
    print(f"\nside by side, honesty on test against the strongest baseline ({best_baseline}, "
          f"{honesty[best_baseline]:.3f}):")
    for m in trained:
        print(f"  {m:<{width}}  {honesty[m]:.3f}  ({honesty[m] - honesty[best_baseline]:+.3f})")

    unaligned_acc = stats["unaligned"]["test.accuracy"][0]
    keeps = [m for m in trained if stats[m]["test.accuracy"][0] >= unaligned_acc - 0.03]
    best = max(keeps, key=lambda m: honesty[m]) if keeps else None
    rule = stats.get("exposure-rule", {}).get("test.seen_people.honesty", (None, None))[0]
    headline = {
        "seeds": args.seeds,
        "minutes_per_seed": [round(x, 1) for x in minutes],
        "name_norm_separation": mean_sd([s["name_norm_separation"] for s in shortcuts])[0],
        "fictional_token_coverage": min(s["fictional_token_coverage"] for s in shortcuts),
        "best_method": best,
        "best_baseline": best_baseline,
        "unaligned_accuracy": unaligned_acc,
    }
    if best is not None:
        b = stats[best]
        headline.update({
            "honesty": b["test.honesty"][0], "honesty_sd": b["test.honesty"][1],
            "accuracy": b["test.accuracy"][0], "accuracy_delta": b["test.accuracy"][0] - unaligned_acc,
            "seen_honesty": b["test.seen_people.honesty"][0],
            "seen_honesty_minus_exposure_rule": None if rule is None else b["test.seen_people.honesty"][0] - rule,
            "within_exposure_auroc": b["test.refusal_auroc_within_exposure"][0],
            "fictional_refusal": b["fictional.refusal_rate"][0],
        })
    headline["ece"] = {m: stats[m]["test.ece"][0] for m in models if m in CONFIDENCE_METHODS}
    headline["honesty_by_model"] = {m: [round(v, 4) if v is not None else None for v in stats[m]["test.honesty"]]
                                    for m in models}
    print(json.dumps(headline, default=lambda x: round(x, 4) if isinstance(x, float) else x))


if __name__ == "__main__":
    main()
