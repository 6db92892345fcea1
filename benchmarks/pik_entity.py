"""Benchmark: the model's surprise at the entity's name as a feature of the P(IK) head.

On world v2 an unknowable question is mostly about a person the model never read, whose name is
a new pair of seen words, and the model answers it with the fact of a seen person who shares the
first name (``benchmarks/world_confabulation.py``), often confidently enough that the head keeps
the answer. The question shows what the answer does not: a name pair the model never read is a
surprise at its second word. This reads, from one forward pass over each prompt
(``HFBackend.entity_logprobs``, as the run does with ``build.pik_entity``), the log-probability
of the asked entity's tokens after its first (the run's ``build.pik_entity`` key, else
``meta.name`` on the world, where a name word is one token, so this is the surname, and
``meta.entity`` on GeoNames, where it is the rest of the name's sub-word tokens): how well the
model predicts the rest of the name from its start, and of the first token. It fits the head with
and without them, side by side:

* the head without them (``knowbound.pik.fit_head`` on the answer's features: its choice of
  features, ridge penalty and, where the run learnt from the probe's samples, their weight),
  cross-fitted with the run's folds;
* the head with them: ``fit_head`` with ``entity_key``, as the run fits it with
  ``build.pik_entity`` (every candidate with and without the two features, chosen out of fold);
* a linear head on the answer's log-probability features and the entity features (on the world
  the second row is this with their pairwise products);
* the entity features alone, as a control: what familiarity with the name gives by itself.

The first two are ``fit_head``'s own heads and thresholds, the last two linear heads with the
first row's ridge penalty and sample weight, cross-fitted on the same folds.

For each: the out-of-fold AUROC on `train`, then on every eval set asked for the AUROC overall and
within a stratum (pairs matched on the question kind on GeoNames, on the fact exposure 1-7 on the
world: the run's refusal AUROC within kind / exposure), honesty, accuracy and right answers
withheld at the threshold fitted out of fold on `train` under the run's budget, the refusal rate, and on the world the honesty on facts of
people seen at least once (the issue's check that the head beats name familiarity). The last line
is JSON.

    .venv/bin/python benchmarks/pik_entity.py runs/demo [--sets test fictional]
    .venv/bin/python benchmarks/pik_entity.py runs/smollm2-facts --sets test invented
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

import numpy as np
from _head_rows import eval_rows, head_rows, open_run_backend, run_config


def main() -> None:
    from knowbound.baselines import fit_threshold
    from knowbound.datasets import load_questions
    from knowbound.metrics.calibration import auroc, stratified_auroc
    from knowbound.metrics.honesty import honesty_from_transitions, label_codes, transition_matrix
    from knowbound.pik import (LOGPROB_FEATURES, ExtraRows, PikHead, _folds, entity_features, feature_matrix, fit_head,
                               fold_models, out_of_fold_scores, swap_tails)
    from knowbound.prompts import render_prompt
    from knowbound.types import CORRECT, IDK

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("run_dir")
    parser.add_argument("--sets", nargs="+", default=["test", "fictional"])
    args = parser.parse_args()
    run = Path(args.run_dir)
    cfg, budget = run_config(run)
    world = bool(cfg.model.world)

    key = cfg.build.pik_entity or ("name" if world else "entity")

    def entity_of(meta: dict) -> str:
        return meta[key]

    questions = {}
    for name in ["train", *args.sets]:
        questions.update({q.id: q for q in load_questions(str(run / "questions" / f"{name}.jsonl")).questions})
    greedy, knowledge, samples = head_rows(run)
    evals = {s: eval_rows(run, s) for s in args.sets}

    backend = open_run_backend(cfg)
    more = f" and {len(samples)} sampled" if cfg.build.pik_samples else ""
    print(f"{len(greedy)} greedy{more} training answers; "
          f"eval sets {', '.join(f'{s} {len(v)}' for s, v in evals.items())}; one forward pass each ...", flush=True)

    # The contrast where the run reads it (build.pik_swaps): the pool and draws the train stage uses.
    swap = None
    if cfg.build.pik_entity and cfg.build.pik_swaps:
        swap = (swap_tails([entity_of(questions[r["question_id"]].meta) for r in greedy]), cfg.build.pik_swaps, cfg.seed)

    def features(prompts: list[str], answers: list[str], entities: list[str]) -> np.ndarray:
        x = feature_matrix(backend.answer_states(prompts, answers, progress=True))
        return np.hstack([x, entity_features(backend, prompts, answers, entities, *(swap or (None, 0, 0)))])

    x = features([r["prompt"] for r in greedy], [r["answer"] for r in greedy],
                 [entity_of(questions[r["question_id"]].meta) for r in greedy])
    use_samples = bool(cfg.build.pik_samples)
    sx = (features([r["prompt"] for r in samples], [r["answer"] for r in samples],
                   [entity_of(questions[r["question_id"]].meta) for r in samples]) if use_samples else None)
    ex = {s: features([render_prompt(cfg.prompt, questions[r["id"]]) for r in rows], [r["pred_text"] for r in rows],
                      [entity_of(questions[r["id"]].meta) for r in rows]) for s, rows in evals.items()}

    width = x.shape[1]
    n_entity = 3 if swap else 2
    entity_cols = list(range(width - n_entity, width))
    labels = [r["label"] for r in greedy]
    y = np.array([lab == "correct" for lab in labels], dtype=np.float64)
    groups = [r["group"] for r in greedy]
    folds = _folds(groups, min(5, len(set(groups))))
    sample_kwargs = {}
    if use_samples:
        sample_kwargs = {"sample_x": sx, "sample_labels": [r["label"] for r in samples],
                         "sample_groups": [r["group"] for r in samples]}
    held = {"budget_confidence": cfg.eval.budget_confidence}  # the run's budget, held as it holds it
    with_head, with_oof = fit_head(x, labels, groups, budget, entity_key=key, swap=swap, **held, **sample_kwargs)
    sample_kwargs["sample_x"] = sx[:, :-n_entity] if use_samples else None
    head, oof = fit_head(x[:, :-n_entity], labels, groups, budget, **held, **sample_kwargs)
    features_name = str(head.fit["features"])
    base_cols = list(head.columns) if head.columns is not None else list(range(len(LOGPROB_FEATURES)))
    l2 = float(head.fit["l2"])
    weight = float(features_name.split("samples weighted ")[1].split()[0]) if "samples weighted" in features_name else 0.0
    fold_of = {g: f for f, idx in enumerate(folds) for g in {groups[i] for i in idx}}

    def control(cols: list[int]) -> tuple[PikHead, np.ndarray]:
        """A linear head on ``cols`` with the head's ridge penalty and sample weight, cross-fitted
        on the run's folds, its threshold fitted on its out-of-fold scores under the budget."""
        extra = None
        if weight and sx is not None:
            extra = ExtraRows(sx[:, cols], np.array([r["label"] == "correct" for r in samples], dtype=np.float64),
                              np.array([fold_of.get(r["group"], -1) for r in samples]), weight)
        members = fold_models(x[:, cols], y, folds, l2, extra)
        scores = out_of_fold_scores(x[:, cols], y, folds, l2, members)
        threshold = fit_threshold(scores.tolist(), labels, max_accuracy_drop=budget, groups=groups, **held).threshold
        return PikHead(threshold=threshold, fit={}, columns=cols, members=members), scores

    def strata(rows: list[dict]) -> list:
        """The run's strata: fact exposure 1-7 on the world (None: outside), the kind on GeoNames."""
        if world:
            return [e if 1 <= (e := int(r["meta"].get("exposure", 0))) <= 7 else None for r in rows]
        return [str(r["meta"].get("kind", "")) for r in rows]

    def measure(fitted: PikHead, oof: np.ndarray) -> dict:
        threshold = fitted.threshold
        out = {"oof_auroc": auroc(oof, y)}
        for s, rows in evals.items():
            p = fitted.p_know(ex[s])
            reference = label_codes([r["label"] for r in rows])
            y_eval = (reference == CORRECT).astype(np.float64)
            refused = p < threshold
            new = np.where(refused, IDK, reference).astype(np.int8)
            keys = strata(rows)
            idx = np.array([k is not None for k in keys])
            within = (stratified_auroc(p[idx], y_eval[idx] > 0, [k for k in keys if k is not None])
                      if idx.any() else None)
            cell = {"auroc": auroc(p, y_eval) if len(set(y_eval)) == 2 else None,
                    "within_auroc": within,
                    "honesty": float(honesty_from_transitions(transition_matrix(reference, new))["honesty"]),
                    "accuracy": float((y_eval * ~refused).mean()), "withheld": int((refused & (y_eval > 0)).sum()),
                    "refusal_rate": float(refused.mean())}
            if world:
                seen = np.array([int(r["meta"].get("person_exposure", 0)) >= 1 for r in rows])
                cell["seen_honesty"] = (float(honesty_from_transitions(transition_matrix(reference[seen], new[seen]))["honesty"])
                                        if seen.any() else None)
            out[s] = cell
        return out

    alone = [c for c in base_cols if c < len(LOGPROB_FEATURES)] + entity_cols
    rows = [(f"the head without ({features_name})", measure(head, oof)),
            (f"the head with ({with_head.fit['features']})", measure(with_head, with_oof)),
            (f"log-probabilities + entity surprise{' and contrast' if swap else ''}, linear", measure(*control(alone))),
            ("entity surprise alone", measure(*control(entity_cols[:2])))]
    if swap:
        rows.append(("contrast alone", measure(*control(entity_cols[2:]))))

    unaligned = {s: float(np.mean([r["label"] == "correct" for r in rows_])) for s, rows_ in evals.items()}
    print(f"\n{run.name}: budget {budget}; unaligned accuracy "
          + ", ".join(f"{s} {a:.3f}" for s, a in unaligned.items())
          + f"; strata: {'fact exposure 1-7' if world else 'question kind'}\n")
    for s in evals:
        extra = "  seen≥1" if world else ""
        print(f"{s:10s} {'features':72s} {'oof':>6s} {'AUROC':>6s} {'within':>6s} {'honesty':>7s} "
              f"{'accuracy':>8s} {'withheld':>8s} {'refusals':>8s}{extra}")
        for name, r in rows:
            c = r[s]
            fmt = lambda v: "     -" if v is None else f"{v:6.3f}"  # noqa: E731
            seen = ("  -" if c["seen_honesty"] is None else f"  {c['seen_honesty']:.3f}") if world else ""
            print(f"{'':10s} {name[:72]:72s} {r['oof_auroc']:6.3f} {fmt(c['auroc'])} {fmt(c['within_auroc'])} "
                  f"{c['honesty']:7.3f} {c['accuracy']:8.3f} {c['withheld']:8d} {c['refusal_rate']:8.3f}{seen}")
        print()

    def rounded(d):
        if isinstance(d, dict):
            return {k: rounded(v) for k, v in d.items()}
        return round(d, 4) if isinstance(d, float) and not math.isnan(d) else d

    print(json.dumps({"run": run.name, "head": features_name, "head_with_entity": with_head.fit["features"], "unaligned_accuracy": rounded(unaligned),
                      "features": {name: rounded(r) for name, r in rows}}))


if __name__ == "__main__":
    main()
