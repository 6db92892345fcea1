"""Analysis: where the world model's answers about people it never saw come from.

On world v2 a never-seen or fictional person's name is a new combination of name words that seen
people carry, so the model has no fact about the person, but it has facts about the people who
share each word. This reads a finished world run (no model, no generation) and asks, for every
question whose asked fact the model cannot know (the person never seen, or the fact never stated
about them), whether the unaligned model's answer states the same fact of a *name mate*: a seen
person, not the one asked about, who shares the first name or the surname and whose fact of that
kind the corpus states.

The control is a permutation: the same check against the mates of a random other first name (or
surname) of the same pools, averaged over 20 draws, which is how often an answer names one of
that many seen people's facts by chance. The categories put a first-name mate first; the shares
of answers that state any first-name mate's and any surname mate's fact are printed too, without
that precedence, beside their controls. Then, per category, how often each method refuses: a
confabulation that repeats a name mate's fact is the recall of a real fact, and a refusal that
reads the answer's confidence can tell it from true recall only as far as it is less confident.

    .venv/bin/python benchmarks/world_confabulation.py runs/demo [--sets fictional test unstated]
        [--methods pik absolute max-probability]

The last line is JSON.
"""

from __future__ import annotations

import argparse
import json
import random
import re
from collections import defaultdict
from pathlib import Path

CATEGORIES = ("a first-name mate's fact", "a surname mate's fact (only)", "neither")
DRAWS = 20


def main() -> None:
    from knowbound.config import load_config
    from knowbound.io import read_jsonl
    from knowbound.world.build import world_dir
    from knowbound.world.config import preset

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("run_dir")
    parser.add_argument("--sets", nargs="+", default=["fictional", "test", "unstated"])
    parser.add_argument("--methods", nargs="+", default=["pik", "absolute", "max-probability", "exposure-rule"])
    args = parser.parse_args()
    run = Path(args.run_dir)
    cfg = load_config(run / "config.yaml")
    if not cfg.model.world:
        raise SystemExit(f"{run}: not a knowledge-world run (model.world is not set)")
    paths = world_dir(preset(cfg.model.world, seed=cfg.model.world_seed),
                      Path(cfg.model.world_dir) if cfg.model.world_dir else None)
    people_file = paths.root / "people.jsonl"
    if not people_file.exists():
        raise SystemExit(f"{people_file}: not found; build the world first (knowbound world build)")
    people = list(read_jsonl(people_file))
    by_word: dict[tuple[int, str], list[dict]] = defaultdict(list)  # (0 first / 1 surname, word) -> seen people
    for p in people:
        if p["exposure"] > 0:
            words = p["name"].split()
            by_word[(0, words[0])].append(p)
            by_word[(1, words[-1])].append(p)
    pools = [sorted({w for (part, w) in by_word if part == i}) for i in (0, 1)]

    def states(text: str, value: str) -> bool:
        return re.search(rf"(?<!\w){re.escape(value)}(?!\w)", text) is not None

    def mate_fact(text: str, person: str, attribute: str, part: int, word: str) -> bool:
        return any(m["id"] != person and m["fact_exposure"][attribute] > 0 and states(text, m["facts"][attribute])
                   for m in by_word.get((part, word), ()))

    rng = random.Random(0)
    summary: dict = {}
    for set_name in args.sets:
        file = run / "predictions" / "unaligned" / f"{set_name}.jsonl"
        if not file.exists():
            print(f"{set_name}: no predictions in {run}; skipped")
            continue
        rows = [r for r in read_jsonl(file) if r.get("label") is not None]
        lacking = [r["id"] for r in rows if "person_exposure" not in r["meta"] or "fact_exposure" not in r["meta"]]
        if lacking:
            raise SystemExit(f"{file}: {len(lacking)} rows without meta.person_exposure / meta.fact_exposure "
                             f"(first: {lacking[0]}): not a world v2 set")
        rows = [r for r in rows if r["meta"]["person_exposure"] == 0 or r["meta"]["fact_exposure"] == 0]
        refusals = {m: {r["id"]: r["label"] == "idk" for r in read_jsonl(run / "predictions" / m / f"{set_name}.jsonl")}
                    for m in args.methods if (run / "predictions" / m / f"{set_name}.jsonl").exists()}
        counts = {c: [] for c in CATEGORIES}
        any_mate = [0, 0]  # answers stating any first-name / any surname mate's fact
        control = [0.0, 0.0]
        for r in rows:
            words = r["meta"]["name"].split()
            person, attribute, text = r["meta"]["person"], r["meta"]["attribute"], r["pred_text"] or ""
            first = mate_fact(text, person, attribute, 0, words[0])
            last = mate_fact(text, person, attribute, 1, words[-1])
            counts[CATEGORIES[0] if first else CATEGORIES[1] if last else CATEGORIES[2]].append(r["id"])
            any_mate[0] += first
            any_mate[1] += last
            for part in (0, 1):
                others = [w for w in pools[part] if w != words[0 if part == 0 else -1]]
                control[part] += sum(mate_fact(text, person, attribute, part, rng.choice(others))
                                     for _ in range(DRAWS)) / DRAWS
        n = len(rows)
        if not n:
            continue
        right = sum(r["label"] == "correct" for r in rows)
        print(f"\n{set_name}: {n} questions the model cannot know (person never seen or fact never stated); "
              f"the unaligned model is right on {right}")
        print(f"  any first-name mate's fact {any_mate[0] / n:.3f} (control: a random other first name's mates "
              f"{control[0] / n:.3f}); any surname mate's fact {any_mate[1] / n:.3f} (control {control[1] / n:.3f})")
        header = f"  {'the answer states':32s} {'questions':>9s} {'share':>6s}" + "".join(f" {m[:16]:>16s}" for m in refusals)
        print(header + "   (refusal rate)")
        out = {"questions": n, "right": right, "any_first": round(any_mate[0] / n, 4),
               "any_surname": round(any_mate[1] / n, 4), "control_first": round(control[0] / n, 4),
               "control_surname": round(control[1] / n, 4), "categories": {}}
        for c in CATEGORIES:
            ids = counts[c]
            rates = {}
            for m, ref in refusals.items():
                known = [ref[i] for i in ids if i in ref]
                rates[m] = sum(known) / len(known) if known else None
            cells = "".join(f" {'-' if v is None else f'{v:.3f}':>16s}" for v in rates.values())
            print(f"  {c:32s} {len(ids):9d} {len(ids) / n:6.3f}{cells}")
            out["categories"][c] = {"questions": len(ids), "share": round(len(ids) / n, 4),
                                    "refusal": {m: (None if v is None else round(v, 4)) for m, v in rates.items()}}
        summary[set_name] = out
    print(json.dumps({"run": run.name, "world": paths.root.name, "sets": summary}))


if __name__ == "__main__":
    main()
