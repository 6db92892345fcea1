"""Benchmark: what the P(IK) head gains from the probe's sampled answers, and what else was tried.

On a finished run with a ``pik`` method, it runs the head's forward pass (``answer_states``, as
the train stage does) over the unaligned model's greedy answers to ``train``, over the probe's
sampled answers to the same questions (``knowledge.jsonl``), and over the unaligned model's
answers to one eval set, and fits side by side, all on the answer band with the log-probability
features (``knowbound.pik``), cross-fitted with the run's folds:

* the target the head uses (is the greedy answer right?) at several ridge penalties;
* a soft target: the share of the question's samples that are right (k / M), as P(IK) is defined
  by Kadavath et al., and its blend with the greedy label, (greedy + k) / (M + 1);
* the greedy rows plus the sampled answers as rows of their own, at weights 1, 0.3 and 0.1
  (``build.pik_samples``), each sample in its question's fold.

Columns: the out-of-fold AUROC on the greedy training answers (what the head chooses by), the
AUROC on the eval set overall and averaged within question kind, and honesty, accuracy and the
right answers withheld at the threshold fitted out of fold on ``train`` under the run's accuracy
budget, as the run fits it. Then, for analysis only, the best honesty any threshold reaches on the
eval set within the budget (fitted on the eval set's own labels: how far the ranking can go, not a
method). The ratios are against the head without samples. Then ``knowbound.pik.fit_head`` itself,
without and with the samples: the candidate it chooses and its figures. The last line is JSON.

    .venv/bin/python benchmarks/pik_samples.py runs/smollm2-facts [--set test] [--cache FILE.npz]
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

import numpy as np
from _head_rows import eval_kinds, eval_rows, head_features, head_rows, within_kind_auroc


def main() -> None:
    from knowbound.baselines import fit_threshold
    from knowbound.config import load_config
    from knowbound.datasets import load_questions
    from knowbound.metrics.calibration import auroc
    from knowbound.metrics.honesty import honesty_from_transitions, label_codes, transition_matrix
    from knowbound.pik import (HIDDEN_PARTS, LOGPROB_FEATURES, ExtraRows, PikHead, _folds, columns,
                               fit_head, fold_models, out_of_fold_scores)
    from knowbound.prompts import render_prompt
    from knowbound.types import CORRECT, IDK

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("run_dir")
    parser.add_argument("--set", default="test", help="the eval set to measure on")
    parser.add_argument("--cache", default=None, help="keep the feature rows in this .npz file and read them from it")
    args = parser.parse_args()
    run = Path(args.run_dir)
    cfg = load_config(run / "config.yaml")
    budget = cfg.eval.max_accuracy_drop

    greedy, knowledge, samples = head_rows(run)
    evals = eval_rows(run, args.set)
    questions = {q.id: q for q in load_questions(str(run / "questions" / f"{args.set}.jsonl")).questions}

    x, sx, ex = head_features(cfg, greedy, samples, evals,
                              [render_prompt(cfg.prompt, questions[r["id"]]) for r in evals],
                              Path(args.cache) if args.cache else None, args.set)

    hidden = (x.shape[1] - len(LOGPROB_FEATURES)) // len(HIDDEN_PARTS)
    cols = columns(("answer_band",), hidden)
    labels = [r["label"] for r in greedy]
    y = np.array([lab == "correct" for lab in labels], dtype=np.float64)
    soft = np.array([knowledge[r["question_id"]]["expected_accuracy"] for r in greedy], dtype=np.float64)
    m = np.array([knowledge[r["question_id"]]["n_samples"] for r in greedy], dtype=np.float64)
    groups = [r["group"] for r in greedy]
    folds = _folds(groups, 5)
    fold_of = {g: f for f, idx in enumerate(folds) for g in {groups[i] for i in idx}}
    sample_fold = np.array([fold_of[r["group"]] for r in samples])
    sample_y = np.array([r["label"] == "correct" for r in samples], dtype=np.float64)
    reference = label_codes([r["label"] for r in evals])
    y_eval = (reference == CORRECT).astype(np.float64)
    kinds = eval_kinds(evals)
    allowed = int(math.floor(budget * len(evals) + 1e-9))

    def within(scores: np.ndarray) -> float:
        return within_kind_auroc(scores, y_eval, kinds)

    def scored(p: np.ndarray, threshold: float) -> dict:
        refused = p < threshold
        new = np.where(refused, IDK, reference).astype(np.int8)
        return {"honesty": float(honesty_from_transitions(transition_matrix(reference, new))["honesty"]),
                "accuracy": float((y_eval * ~refused).mean()), "withheld": int((refused & (y_eval > 0)).sum())}

    def measure(members: list[dict], oof: np.ndarray) -> dict:
        threshold = fit_threshold(oof.tolist(), labels, max_accuracy_drop=budget,
                                  budget_confidence=cfg.eval.budget_confidence, groups=groups).threshold
        p = PikHead(threshold=threshold, fit={}, columns=cols, members=members).p_know(ex)
        ceiling = fit_threshold(p.tolist(), [r["label"] for r in evals], max_accuracy_drop=allowed / len(evals))
        return {"oof_auroc": auroc(oof, y), "auroc": auroc(p, y_eval), "within_kind_auroc": within(p),
                **scored(p, threshold), "eval_fitted_honesty": scored(p, ceiling.threshold)["honesty"]}

    def fit(target: np.ndarray, l2: float, weight: float = 0.0) -> dict:
        extra = ExtraRows(sx[:, cols], sample_y, sample_fold, weight) if weight else None
        members = fold_models(x[:, cols], target, folds, l2, extra)
        return measure(members, out_of_fold_scores(x[:, cols], target, folds, l2, members))

    rows: list[tuple[str, dict]] = [("greedy label, l2 0.1 (the head without samples)", fit(y, 0.1))]
    rows += [(f"greedy label, l2 {l2:g}", fit(y, l2)) for l2 in (0.01, 1.0, 10.0)]
    rows += [(f"soft k/M, l2 {l2:g}", fit(soft, l2)) for l2 in (0.01, 0.1, 1.0)]
    blend = (y + soft * m) / (m + 1)
    rows += [(f"blend (greedy + k)/(M + 1), l2 {l2:g}", fit(blend, l2)) for l2 in (0.01, 0.1, 1.0)]
    rows += [(f"+ samples weighted {w:g}, l2 {l2:g}", fit(y, l2, w)) for w in (1.0, 0.3, 0.1) for l2 in (0.01, 0.1, 1.0)]

    print(f"\n{args.set}: unaligned accuracy {y_eval.mean():.3f}, {int(y_eval.sum())} right answers of {len(evals)}; "
          f"budget {budget} ({allowed} withheld); {len(greedy)} greedy and {len(samples)} sampled training answers\n")
    base = rows[0][1]
    print(f"{'head (answer band + log-probabilities)':48s} {'oof AUROC':>9s} {'AUROC':>6s} {'(vs base)':>9s} "
          f"{'in kind':>7s} {'honesty':>7s} {'(vs base)':>9s} {'accuracy':>8s} {'withheld':>8s} {'eval-fitted':>11s}")
    for name, r in rows:
        print(f"{name:48s} {r['oof_auroc']:9.3f} {r['auroc']:6.3f} {r['auroc'] / base['auroc']:8.3f}x "
              f"{r['within_kind_auroc']:7.3f} {r['honesty']:7.3f} {r['honesty'] / base['honesty']:8.3f}x "
              f"{r['accuracy']:8.3f} {r['withheld']:8d} {r['eval_fitted_honesty']:11.3f}")

    chosen = {}
    for name, kwargs in (("without_samples", {}),
                         ("with_samples", {"sample_x": sx, "sample_labels": [r["label"] for r in samples],
                                           "sample_groups": [r["group"] for r in samples]})):
        head, oof = fit_head(x, labels, groups, budget, budget_confidence=cfg.eval.budget_confidence, **kwargs)
        p = head.p_know(ex)
        chosen[name] = {"features": head.fit["features"], "l2": head.fit["l2"], "oof_auroc": head.fit["oof_auroc"],
                        "auroc": auroc(p, y_eval), "within_kind_auroc": within(p), **scored(p, head.threshold)}
        c = chosen[name]
        print(f"\nfit_head {name.replace('_', ' ')}: {c['features']}, l2 {c['l2']:g}: out-of-fold AUROC "
              f"{c['oof_auroc']:.3f}, {args.set} AUROC {c['auroc']:.3f} (within kind {c['within_kind_auroc']:.3f}), "
              f"honesty {c['honesty']:.3f} at accuracy {c['accuracy']:.3f} ({c['withheld']} right answers withheld)")

    def rounded(d: dict) -> dict:
        return {k: (round(v, 4) if isinstance(v, float) else v) for k, v in d.items()}

    print(json.dumps({"run": run.name, "set": args.set, "unaligned_accuracy": round(float(y_eval.mean()), 4),
                      "allowed_withheld": allowed, "fit_head": {k: rounded(v) for k, v in chosen.items()},
                      "grid": {name: rounded(r) for name, r in rows}}))


if __name__ == "__main__":
    main()
