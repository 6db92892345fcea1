"""Benchmark: the P(IK) head with test-time samples beside it. Does sampling close the budget gap?

The P(IK) head reads one forward pass over the unaligned model's greedy answer. The
self-consistency baseline samples k more answers and reads how much they agree with the greedy
one (k + 1 generations per question). They read different things, so the question is whether the
two together rank right above wrong answers better than the head alone, and whether that better
ranking holds the accuracy budget on an eval set that the threshold was not fitted on.

On a finished run with a ``pik`` method and the self-consistency samples (``eval.consistency_samples``
in ``samples/eval-<set>.jsonl``), it:

* fits the head as the run does (``knowbound.pik.fit_head`` with the probe's samples where the run
  learnt from them), and takes its out-of-fold P(IK) on `train` and its P(IK) on the eval set;
* scores each answer's agreement with its first k samples in two ways: the self-consistency
  baseline's own score (``grading.agreement.consistency``: the share of samples that say the same
  as the greedy answer) and the label stage's label-free agreement (``grading.agreement.support``:
  the mean overlap of what they say, not all or nothing). On `train` the samples are the probe's
  first k (drawn like the eval's samples: same temperature, tokens and stop), on the eval set the
  self-consistency samples; failed samples are left out, as the run leaves them out;
* fits a logistic regression on (logit P(IK), support) with the head's folds: out of fold on
  `train`, the fold models' mean on the eval set. (The head's out-of-fold scores that it learns
  from come from fold models that saw the other folds, so its out-of-fold AUROC on `train` is a
  little optimistic; the eval set's figures are not affected.)
* for each score, the threshold fitted out of fold on `train` under the run's accuracy budget (as
  the run fits it), the AUROC overall and within question kind, honesty, accuracy and the right
  answers withheld, and, for analysis only, the best honesty any threshold reaches within the
  budget, fitted on the eval set's own labels.

The features of the head's forward passes take minutes; ``--cache FILE.npz`` keeps them (the
format of ``benchmarks/pik_samples.py --cache``, so one cache serves both). The last line is JSON.

    .venv/bin/python benchmarks/pik_consistency.py runs/smollm2-facts [--set test] [--cache FILE.npz]
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

import numpy as np
from _head_rows import eval_kinds, eval_rows, head_features, head_rows, run_config, within_kind_auroc


def main() -> None:
    from knowbound.baselines import fit_threshold
    from knowbound.datasets import load_questions
    from knowbound.grading.agreement import consistency, support
    from knowbound.io import read_jsonl
    from knowbound.loop.label import group_samples
    from knowbound.metrics.calibration import auroc
    from knowbound.metrics.honesty import honesty_from_transitions, label_codes, transition_matrix
    from knowbound.pik import PikHead, _folds, fit_head, fold_models, out_of_fold_scores
    from knowbound.prompts import render_prompt
    from knowbound.types import CORRECT, IDK

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("run_dir")
    parser.add_argument("--set", default="test", help="the eval set to measure on")
    parser.add_argument("--cache", default=None, help="keep the feature rows in this .npz file and read them from it")
    args = parser.parse_args()
    run = Path(args.run_dir)
    cfg, budget = run_config(run)
    if cfg.build.pik_entity:
        raise SystemExit(f"{run}: the run's head may read the entity features (build.pik_entity), which this "
                         "benchmark does not compute; it fits the head on the answer's features only")

    greedy, knowledge, samples = head_rows(run)
    evals = eval_rows(run, args.set)
    questions = {q.id: q for q in load_questions(str(run / "questions" / f"{args.set}.jsonl")).questions}
    train_questions = {q.id: q for q in load_questions(str(run / "questions" / "train.jsonl")).questions}
    sample_file = run / "samples" / f"eval-{args.set}.jsonl"
    grouped = group_samples(read_jsonl(sample_file)) if sample_file.exists() else {}
    eval_samples = {qid: [s.text for i, s in sorted(rows.items()) if i > 0 and s.finish_reason != "error"]
                    for qid, rows in grouped.items()}
    missing = [r["id"] for r in evals if not eval_samples.get(r["id"])]
    if missing:
        raise SystemExit(f"{sample_file}: no self-consistency samples for {len(missing)} of {len(evals)} questions "
                         f"(first: {missing[0]}); run the eval stage with eval.consistency_samples")
    k = min(len(eval_samples[r["id"]]) for r in evals)

    x, sx, ex = head_features(cfg, greedy, samples, evals,
                              [render_prompt(cfg.prompt, questions[r["id"]]) for r in evals],
                              Path(args.cache) if args.cache else None, args.set)

    labels = [r["label"] for r in greedy]
    y = np.array([lab == "correct" for lab in labels], dtype=np.float64)
    groups = [r["group"] for r in greedy]
    folds = _folds(groups, min(5, len(set(groups))))  # fit_head's folds
    reference = label_codes([r["label"] for r in evals])
    y_eval = (reference == CORRECT).astype(np.float64)
    kinds = eval_kinds(evals)
    allowed = int(math.floor(budget * len(evals) + 1e-9))

    # The head, as the run fits it.
    sample_kwargs = {}
    if cfg.build.pik_samples:
        sample_kwargs = {"sample_x": sx, "sample_labels": [r["label"] for r in samples],
                         "sample_groups": [r["group"] for r in samples]}
    head, oof = fit_head(x, labels, groups, budget, budget_confidence=cfg.eval.budget_confidence, **sample_kwargs)
    p_eval = head.p_know(ex)

    def agreement(score, reference_text: str, texts: list[str], question: str) -> float:
        value = score(reference_text, texts, question)
        return 0.0 if value is None else float(value)

    def train_agreement(score) -> np.ndarray:
        return np.array([agreement(score, knowledge[r["question_id"]]["greedy"] or "",
                                   knowledge[r["question_id"]]["samples"][:k], train_questions[r["question_id"]].question)
                         for r in greedy])

    def eval_agreement(score) -> np.ndarray:
        return np.array([agreement(score, r["pred_text"] or "", eval_samples[r["id"]][:k], questions[r["id"]].question)
                         for r in evals])

    train_agree, eval_agree = train_agreement(support), eval_agreement(support)

    def logit(p: np.ndarray) -> np.ndarray:
        p = np.clip(p, 1e-6, 1 - 1e-6)
        return np.log(p / (1 - p))

    z_train = np.stack([logit(oof), train_agree], 1)
    z_eval = np.stack([logit(p_eval), eval_agree], 1)
    members = fold_models(z_train, y, folds, 1e-2)
    combo_oof = out_of_fold_scores(z_train, y, folds, 1e-2, members)
    combo_eval = PikHead(threshold=0.5, fit={}, columns=None, members=members).p_know(z_eval)

    def within(scores: np.ndarray) -> float:
        return within_kind_auroc(scores, y_eval, kinds)

    def scored(s: np.ndarray, threshold: float) -> dict:
        refused = s < threshold
        new = np.where(refused, IDK, reference).astype(np.int8)
        return {"honesty": float(honesty_from_transitions(transition_matrix(reference, new))["honesty"]),
                "accuracy": float((y_eval * ~refused).mean()), "withheld": int((refused & (y_eval > 0)).sum()),
                "refused": int(refused.sum())}

    def measure(train_scores: np.ndarray, eval_scores: np.ndarray) -> dict:
        fit = fit_threshold(train_scores.tolist(), labels, max_accuracy_drop=budget,
                            budget_confidence=cfg.eval.budget_confidence, groups=groups)
        ceiling = fit_threshold(eval_scores.tolist(), [r["label"] for r in evals], max_accuracy_drop=allowed / len(evals))
        train_refused = train_scores < fit.threshold
        return {"train_auroc": auroc(train_scores, y), "auroc": auroc(eval_scores, y_eval),
                "within_kind_auroc": within(eval_scores), "train_withheld": int((train_refused & (y > 0)).sum()),
                **scored(eval_scores, fit.threshold), "eval_fitted_honesty": scored(eval_scores, ceiling.threshold)["honesty"]}

    rows = [("the head (one pass)", 1, measure(oof, p_eval)),
            (f"{k} samples: share agreeing (the baseline)", k + 1,
             measure(train_agreement(consistency), eval_agreement(consistency))),
            (f"{k} samples: mean overlap (support)", k + 1, measure(train_agree, eval_agree)),
            (f"the head + {k} samples' support", k + 1, measure(combo_oof, combo_eval))]

    print(f"\n{args.set}: unaligned accuracy {y_eval.mean():.3f}, {int(y_eval.sum())} right answers of {len(evals)}; "
          f"budget {budget} ({allowed} withheld; on train {int(math.floor(budget * len(y) + 1e-9))} of {len(y)}); "
          f"head: {head.fit['features']}, l2 {head.fit['l2']:g}\n")
    print(f"{'score':40s} {'generations':>11s} {'train AUROC':>11s} {'AUROC':>6s} {'in kind':>7s} {'honesty':>7s} "
          f"{'accuracy':>8s} {'withheld':>8s} {'(train)':>7s} {'eval-fitted':>11s}")
    for name, cost, r in rows:
        print(f"{name:40s} {cost:>10d}x {r['train_auroc']:11.3f} {r['auroc']:6.3f} {r['within_kind_auroc']:7.3f} "
              f"{r['honesty']:7.3f} {r['accuracy']:8.3f} {r['withheld']:8d} {r['train_withheld']:7d} "
              f"{r['eval_fitted_honesty']:11.3f}")

    def rounded(d: dict) -> dict:
        return {key: (round(v, 4) if isinstance(v, float) else v) for key, v in d.items()}

    print(json.dumps({"run": run.name, "set": args.set, "k": k, "unaligned_accuracy": round(float(y_eval.mean()), 4),
                      "allowed_withheld": allowed,
                      "scores": {name: dict(rounded(r), generations=cost) for name, cost, r in rows}}))


if __name__ == "__main__":
    main()
