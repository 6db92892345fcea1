"""Analysis: does the P(IK) head need more training questions? Its learning curve on a finished run.

On a finished run with a ``pik`` method, it builds the head's feature rows as the train stage does
(``_head_rows.head_features``: the greedy answers to ``train``, the probe's sampled answers, the
unaligned answers to ``--set``) and refits one head candidate (the answer band with the
log-probability features, the samples at ``--weight``, ridge ``--l2``: by default the candidate
``make demo-real``'s head chooses) on a share of the training questions, 25% to 100%:

* **out of fold on ``train``** (what a decision may read): five outer folds by group; each fold is
  scored by a model fitted on the given share of the other folds' questions (and their samples),
  ``--reps`` random draws of that share. Columns: the pooled AUROC, and the share of wrong answers
  the scores refuse at the accuracy budget (the threshold that withholds ``eval.max_accuracy_drop``
  of all questions as right answers, on these pooled scores): prudence where the budget binds.
* **on ``--set``** (the outcome, reported, never chosen by): the head fitted as the run fits it
  (cross-fitted on five folds of the share, its threshold fitted on their out-of-fold scores
  under the run's budget and ``eval.budget_confidence``), its AUROC, within-kind AUROC, honesty
  and right answers withheld.

Ratios are against the full training set. The last line is JSON.

    .venv/bin/python benchmarks/pik_learning_curve.py runs/smollm2-facts [--set test] [--cache FILE.npz]
"""

from __future__ import annotations

import argparse
import json
import math
import random
import statistics
from pathlib import Path

import numpy as np
from _head_rows import eval_kinds, eval_rows, head_features, head_rows, within_kind_auroc

SHARES = (0.25, 0.5, 0.75, 1.0)


def main() -> None:
    from knowbound.baselines import fit_threshold
    from knowbound.config import load_config
    from knowbound.datasets import load_questions
    from knowbound.metrics.calibration import auroc
    from knowbound.metrics.honesty import honesty_from_transitions, label_codes, transition_matrix
    from knowbound.pik import (HIDDEN_PARTS, LOGPROB_FEATURES, ExtraRows, PikHead, _folds, _member_p, columns,
                               fold_models, logistic_regression, out_of_fold_scores)
    from knowbound.prompts import render_prompt
    from knowbound.types import CORRECT, IDK

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("run_dir")
    parser.add_argument("--set", default="test", help="the eval set to report on")
    parser.add_argument("--cache", default=None, help="keep the feature rows in this .npz file and read them from it")
    parser.add_argument("--l2", type=float, default=0.01)
    parser.add_argument("--weight", type=float, default=0.3, help="a sampled answer's row weight (0: no samples)")
    parser.add_argument("--reps", type=int, default=3, help="random draws of each share below 100%%")
    args = parser.parse_args()
    run = Path(args.run_dir)
    cfg = load_config(run / "config.yaml")
    budget = cfg.eval.max_accuracy_drop
    if budget is None:
        raise SystemExit(f"{run}: the run has no accuracy budget (eval.max_accuracy_drop)")

    greedy, knowledge, samples = head_rows(run)
    evals = eval_rows(run, args.set)
    questions = {q.id: q for q in load_questions(str(run / "questions" / f"{args.set}.jsonl")).questions}
    x, sx, ex = head_features(cfg, greedy, samples, evals,
                              [render_prompt(cfg.prompt, questions[r["id"]]) for r in evals],
                              Path(args.cache) if args.cache else None, args.set)
    head_file = next(run.glob("**/pik_head.json"), None)
    if head_file is not None:
        fit = json.loads(head_file.read_text())["fit"]
        print(f"the run's head: {fit.get('features')}, l2 {fit.get('l2')}, out-of-fold AUROC {fit.get('oof_auroc'):.3f}")
    print(f"refitting: answer band + log-probabilities, l2 {args.l2:g}, samples weighted {args.weight:g}")

    hidden = (x.shape[1] - len(LOGPROB_FEATURES)) // len(HIDDEN_PARTS)
    cols = columns(("answer_band",), hidden)
    x, sx, ex = x[:, cols], sx[:, cols], ex[:, cols]
    labels = [r["label"] for r in greedy]
    y = np.array([lab == "correct" for lab in labels], dtype=np.float64)
    groups = [r["group"] for r in greedy]
    sample_groups = np.array([r["group"] for r in samples], dtype=object)
    sample_y = np.array([r["label"] == "correct" for r in samples], dtype=np.float64)
    group_keys = list(dict.fromkeys(groups))
    group_arr = np.array(groups, dtype=object)
    reference = label_codes([r["label"] for r in evals])
    y_eval = (reference == CORRECT).astype(np.float64)
    kinds = eval_kinds(evals)

    def within(scores: np.ndarray) -> float:
        return within_kind_auroc(scores, y_eval, kinds)

    def single_fit(keep: set) -> dict:
        """One logistic regression on the greedy rows (and samples) of the groups in ``keep``."""
        rows = np.array([g in keep for g in groups])
        if not args.weight:
            mean, std, w, b = logistic_regression(x[rows], y[rows], args.l2)
        else:
            more = np.array([g in keep for g in sample_groups])
            mean, std, w, b = logistic_regression(
                np.vstack([x[rows], sx[more]]), np.concatenate([y[rows], sample_y[more]]), args.l2,
                np.concatenate([np.ones(int(rows.sum())), np.full(int(more.sum()), args.weight)]))
        return {"mean": mean, "std": std, "weights": w, "bias": b}

    def refused_wrong_at_budget(scores: np.ndarray, truth: np.ndarray) -> float:
        """The share of wrong answers below the threshold that withholds at most the budget's right
        answers (``budget`` of all rows), on these scores: the best such threshold, ties kept out."""
        allowed = int(math.floor(budget * len(truth) + 1e-9))
        rights = np.sort(scores[truth > 0])
        cut = rights[allowed] if allowed < len(rights) else math.inf
        return float(((scores < cut) & (truth == 0)).sum() / max(1, (truth == 0).sum()))

    outer = _folds(groups, 5)
    results: dict[float, dict] = {}
    for share in SHARES:
        reps = 1 if share == 1.0 else args.reps
        oof_aurocs, oof_prudence, test = [], [], []
        for rep in range(reps):
            rng = random.Random(f"{share}:{rep}")
            oof = np.zeros(len(y))
            for idx in outer:
                held = set(group_arr[idx])
                rest = [g for g in group_keys if g not in held]
                keep = set(rng.sample(rest, max(2, round(share * len(rest)))))
                oof[idx] = _member_p(single_fit(keep), x[idx])
            oof_aurocs.append(auroc(oof, y))
            oof_prudence.append(refused_wrong_at_budget(oof, y))
            # The head as the run fits it, on the share of all training questions.
            keep = set(rng.sample(group_keys, max(10, round(share * len(group_keys)))))
            rows = np.array([g in keep for g in groups])
            sub_groups = [g for g in groups if g in keep]
            folds = _folds(sub_groups, 5)
            fold_of = {g: f for f, fi in enumerate(folds) for g in {sub_groups[i] for i in fi}}
            more = np.array([g in keep for g in sample_groups])
            extra = (ExtraRows(sx[more], sample_y[more], np.array([fold_of[g] for g in sample_groups[more]]),
                               args.weight) if args.weight else None)
            members = fold_models(x[rows], y[rows], folds, args.l2, extra)
            sub_oof = out_of_fold_scores(x[rows], y[rows], folds, args.l2, members)
            threshold = fit_threshold(sub_oof.tolist(), [lab for lab, k in zip(labels, rows) if k],
                                      max_accuracy_drop=budget, budget_confidence=cfg.eval.budget_confidence,
                                      groups=sub_groups).threshold
            p = PikHead(threshold=threshold, fit={}, members=members).p_know(ex)
            refused = p < threshold
            new = np.where(refused, IDK, reference).astype(np.int8)
            test.append({"auroc": auroc(p, y_eval), "within_kind_auroc": within(p),
                         "honesty": float(honesty_from_transitions(transition_matrix(reference, new))["honesty"]),
                         "withheld_right": int((refused & (y_eval > 0)).sum()),
                         "refused_wrong_at_budget": refused_wrong_at_budget(p, y_eval)})

        def spread(values: list[float]) -> tuple[float, float]:
            return statistics.fmean(values), (statistics.stdev(values) if len(values) > 1 else 0.0)

        results[share] = {"questions": round(share * len(group_keys)),
                          "oof_auroc": spread(oof_aurocs), "oof_refused_wrong_at_budget": spread(oof_prudence),
                          **{f"{args.set}_{k}": spread([t[k] for t in test]) for k in test[0]}}

    full = results[1.0]
    print(f"\n{len(greedy)} training questions ({len(group_keys)} groups), {len(samples)} sampled answers; "
          f"{args.set}: {len(evals)} questions, budget {budget:.0%}; mean ± sd over {args.reps} draws below 100%\n")
    head = (f"{'share':>5s} {'groups':>6s} | {'oof AUROC':>13s} {'ratio':>6s} {'oof refused wrong':>17s} | "
            f"{args.set + ' AUROC':>13s} {'in kind':>13s} {'honesty':>13s} {'ratio':>6s} {'withheld':>8s} "
            f"{'refused wrong':>13s}")
    print(head)
    for share, r in results.items():
        def f(key: str) -> str:
            m, s = r[key]
            return f"{m:.3f} ± {s:.3f}"
        print(f"{share:5.2f} {r['questions']:6d} | {f('oof_auroc'):>13s} {r['oof_auroc'][0] / full['oof_auroc'][0]:5.3f}x "
              f"{f('oof_refused_wrong_at_budget'):>17s} | {f(args.set + '_auroc'):>13s} "
              f"{f(args.set + '_within_kind_auroc'):>13s} {f(args.set + '_honesty'):>13s} "
              f"{r[args.set + '_honesty'][0] / full[args.set + '_honesty'][0]:5.3f}x "
              f"{r[args.set + '_withheld_right'][0]:8.1f} {f(args.set + '_refused_wrong_at_budget'):>13s}")
    print(json.dumps({"run": run.name, "set": args.set, "l2": args.l2, "weight": args.weight, "reps": args.reps,
                      "curve": {f"{share:g}": {k: ([round(v, 4) for v in val] if isinstance(val, tuple) else val)
                                               for k, val in r.items()} for share, r in results.items()}}))


if __name__ == "__main__":
    main()
