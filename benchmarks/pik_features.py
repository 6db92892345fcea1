"""Benchmark: which of the model's computations tell the P(IK) head that an answer is right.

On a finished run with a ``pik`` method, it reads the head's training rows (the unaligned model's
greedy answers to ``train`` and their labels) and the unaligned model's answers to one eval set,
runs one forward pass per (question, answer), and fits the head's logistic regression on each
feature set side by side with the log-probability features alone (the baseline: what the
maximum-sequence-probability score reads):

* the answer's mean hidden state at every third layer (where in the depth the signal is);
* the answer band (the mean over the answer's tokens and the middle 30-70% of the layers), the
  four single-token states, as ``knowbound.pik.CANDIDATES`` offers them;
* the question's own token log-probabilities (the same six statistics over the prompt), alone
  and with the band: how unfamiliar the model finds what it is asked about;
* the last prompt token alone at every third layer, without the answer or its log-probabilities:
  what a policy that decides to refuse before answering (a fine-tuned refusal) has to go on;
* with ``--states-alone``, the answer's states without the log-probabilities (the band, and the
  answer mean and last answer token at every layer): what a decision taken after the answer, as
  R-Tuning's, can read from the positions it attends to.

For each: the out-of-fold AUROC on ``train`` (what the head chooses by), the AUROC on the eval set
overall and averaged within question kind (``meta.kind``; person exposure on the world), and the
honesty and accuracy at the threshold fitted out of fold on ``train`` under the run's accuracy
budget. A popularity control follows where rows carry one (``meta.population`` on GeoNames,
``meta.person_exposure`` on the world): its own AUROC within kind, and the head's within the lower
and upper half of popularity, so a head that only learned "famous entity" shows up. The last line
is JSON.

    .venv/bin/python benchmarks/pik_features.py runs/smollm2-facts [--set test] [--states-alone]
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
from pathlib import Path

import numpy as np
import torch


def layer_states(backend, prompts: list[str], answers: list[str]) -> tuple[np.ndarray, list[list[float]], list[list[float]]]:
    """[rows, layers + 1, 3, hidden] (per layer: the last prompt token, the last answer token, the
    mean over the answer's tokens), each answer's token log-probs and each prompt's (from its second
    token: how surprised the model is by the question). One unpadded pass per row."""
    contexts = backend.encode_prompts(prompts)
    states, logprobs, prompt_logprobs = [], [], []
    with torch.no_grad():
        for i, (prompt, answer) in enumerate(zip(prompts, answers)):
            cont = backend._continuation_ids(backend.format_prompt(prompt), contexts[i], answer) if answer else []
            ids = torch.tensor([contexts[i] + cont], device=backend.device)
            out = backend.model(input_ids=ids, output_hidden_states=True)
            hidden = torch.stack(out.hidden_states)[:, 0].float()  # [layers + 1, tokens, hidden]
            end = len(contexts[i]) - 1
            logp = out.logits[0, :-1].float().log_softmax(-1).gather(1, ids[0, 1:, None]).squeeze(1)
            logprobs.append(logp[end:].tolist() if cont else [])
            prompt_logprobs.append(logp[:end].tolist())
            answer_part = hidden[:, end + 1:] if cont else hidden[:, end:end + 1]
            states.append(torch.stack([hidden[:, end], hidden[:, -1], answer_part.mean(1)], 1).cpu().numpy())
    return np.stack(states), logprobs, prompt_logprobs


def logprob_features(logprobs: list[list[float]]) -> np.ndarray:
    from knowbound.pik import feature_matrix

    return feature_matrix([{"token_logprobs": lp, "hidden": np.zeros(0)} for lp in logprobs])


def main() -> None:
    from knowbound.backends import open_backend
    from knowbound.backends.hf import band_layers
    from knowbound.baselines import fit_threshold
    from knowbound.config import load_config
    from knowbound.io import read_jsonl
    from knowbound.loop.rundir import RunDir, resolve_model
    from knowbound.metrics.calibration import auroc
    from knowbound.metrics.honesty import honesty_from_transitions, label_codes, transition_matrix
    from knowbound.pik import PikHead, _folds, fold_models, out_of_fold_scores
    from knowbound.types import IDK
    from knowbound.prompts import render_prompt
    from knowbound.datasets import load_questions

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("run_dir")
    parser.add_argument("--set", default="test", help="the eval set to measure on")
    parser.add_argument("--model", default=None, help="the unaligned model's path (default: the one the run's config names)")
    parser.add_argument("--states-alone", action="store_true",
                        help="also fit the hidden states without the log-probabilities: the answer band, and the "
                             "answer mean and the last answer token at every layer (what a later position can read)")
    args = parser.parse_args()
    run = Path(args.run_dir)
    cfg = load_config(run / "config.yaml")
    if args.model:
        model_path = args.model
    else:  # the unaligned model the run's config names (the world's chat model, or the converted GGUF)
        resolved = RunDir(cfg, log=lambda message: None)
        resolve_model(resolved)
        model_path = resolved.model_path
    backend = open_backend("hf", model_path, model_settings=cfg.model)
    budget = cfg.eval.max_accuracy_drop

    train = read_jsonl(run / "data" / "pik.jsonl")
    evals = [r for r in read_jsonl(run / "predictions" / "unaligned" / f"{args.set}.jsonl") if r.get("label") is not None]
    questions = {q.id: q for q in load_questions(str(run / "questions" / f"{args.set}.jsonl")).questions}
    print(f"{len(train)} training answers, {len(evals)} answers on {args.set}; one forward pass each ...", flush=True)
    h_train, lp_train, qlp_train = layer_states(backend, [r["prompt"] for r in train], [r["answer"] for r in train])
    h_eval, lp_eval, qlp_eval = layer_states(backend, [render_prompt(cfg.prompt, questions[r["id"]]) for r in evals],
                                             [r["pred_text"] for r in evals])
    y_train = np.array([r["label"] == "correct" for r in train], dtype=np.float64)
    y_eval = np.array([r["label"] == "correct" for r in evals], dtype=np.float64)
    folds = _folds([r["group"] for r in train], 5)
    kinds = [str(r["meta"].get("kind", r["meta"].get("person_exposure", ""))) for r in evals]
    n_layers = h_train.shape[1] - 1
    low, high = band_layers(n_layers)

    def within(scores: np.ndarray, keep: np.ndarray | None = None) -> float:
        values = []
        for kind in sorted(set(kinds)):
            idx = np.array([k == kind for k in kinds]) & (keep if keep is not None else True)
            if len(set(y_eval[idx])) == 2:
                values.append(auroc(scores[idx], y_eval[idx]))
        return statistics.fmean(values) if values else math.nan

    reference = label_codes([r["label"] for r in evals])

    def fit(x_train: np.ndarray, x_eval: np.ndarray, l2: float) -> dict:
        # Cross-fitted as the head is: the fold models' out-of-fold scores fit the threshold, and
        # their mean probability is P(IK) on the eval set.
        members = fold_models(x_train, y_train, folds, l2)
        oof = out_of_fold_scores(x_train, y_train, folds, l2, members)
        threshold = fit_threshold(oof.tolist(), [r["label"] for r in train], max_accuracy_drop=budget,
                                  budget_confidence=cfg.eval.budget_confidence,
                                  groups=[r["group"] for r in train]).threshold
        p = PikHead(threshold=threshold, fit={}, members=members).p_know(x_eval)
        refused = p < threshold
        new = np.where(refused, IDK, reference).astype(np.int8)
        honesty = float(honesty_from_transitions(transition_matrix(reference, new))["honesty"])
        return {"oof_auroc": auroc(oof, y_train), "auroc": auroc(p, y_eval), "within_kind_auroc": within(p),
                "honesty": honesty, "accuracy": float((y_eval * ~refused).mean()), "p": p}

    base_train, base_eval = logprob_features(lp_train), logprob_features(lp_eval)
    rows: list[tuple[str, dict]] = [("log-probabilities (baseline)", fit(base_train, base_eval, 1e-2))]
    for layer in range(0, n_layers + 1, 3):
        rows.append((f"+ answer mean, layer {layer}",
                     fit(np.hstack([base_train, h_train[:, layer, 2]]), np.hstack([base_eval, h_eval[:, layer, 2]]), 1e-1)))
    band_train, band_eval = h_train[:, low:high + 1, 2].mean(1), h_eval[:, low:high + 1, 2].mean(1)
    rows.append((f"+ answer band, layers {low}-{high}",
                 fit(np.hstack([base_train, band_train]), np.hstack([base_eval, band_eval]), 1e-1)))
    # The question's own log-probabilities (the same six statistics over the prompt's tokens): how
    # unfamiliar the model finds the entity it is asked about, beside the answer's.
    question_train, question_eval = logprob_features(qlp_train), logprob_features(qlp_eval)
    rows.append(("+ question log-probabilities",
                 fit(np.hstack([base_train, question_train]), np.hstack([base_eval, question_eval]), 1e-2)))
    rows.append(("+ answer band + question log-probabilities",
                 fit(np.hstack([base_train, band_train, question_train]),
                     np.hstack([base_eval, band_eval, question_eval]), 1e-1)))
    middle = (n_layers + 1) // 2  # hidden_states[len // 2], as answer_states reads it
    token_train = np.hstack([base_train] + [h_train[:, l, pos] for l, pos in
                                            ((middle, 0), (n_layers, 0), (middle, 1), (n_layers, 1))])
    token_eval = np.hstack([base_eval] + [h_eval[:, l, pos] for l, pos in
                                          ((middle, 0), (n_layers, 0), (middle, 1), (n_layers, 1))])
    rows.append(("+ the four single-token states", fit(token_train, token_eval, 1e-1)))
    if args.states_alone:  # what a decision after the answer could read from the answer's states alone
        rows.append((f"answer band alone, layers {low}-{high}", fit(band_train, band_eval, 1e-1)))
        for layer in range(0, n_layers + 1):
            rows.append((f"answer mean alone, layer {layer}", fit(h_train[:, layer, 2], h_eval[:, layer, 2], 1e-1)))
            rows.append((f"last answer token alone, layer {layer}",
                         fit(h_train[:, layer, 1], h_eval[:, layer, 1], 1e-1)))
    # What a policy that refuses before it answers could read: the last prompt token alone, no
    # answer and no log-probabilities (the state a fine-tuned refusal is decided from).
    for layer in range(3, n_layers + 1, 3):
        rows.append((f"prompt only, layer {layer}", fit(h_train[:, layer, 0], h_eval[:, layer, 0], 1e-1)))

    accuracy = float(y_eval.mean())
    print(f"\n{args.set}: unaligned accuracy {accuracy:.3f}; accuracy budget {budget}; {n_layers} layers\n")
    base = rows[0][1]
    print(f"{'features':38s} {'oof AUROC':>9s} {'AUROC':>7s} {'within kind':>11s} {'(vs base)':>9s} "
          f"{'honesty':>7s} {'(vs base)':>9s} {'accuracy':>8s}")
    for name, r in rows:
        print(f"{name:38s} {r['oof_auroc']:9.3f} {r['auroc']:7.3f} {r['within_kind_auroc']:11.3f} "
              f"{r['within_kind_auroc'] / base['within_kind_auroc']:8.2f}x {r['honesty']:7.3f} "
              f"{r['honesty'] / base['honesty']:8.2f}x {r['accuracy']:8.3f}")

    control = {}
    key = "population" if any("population" in r["meta"] for r in evals) else "person_exposure"
    popularity = np.array([float(r["meta"].get(key) or 0) for r in evals])
    if popularity.any():
        band = dict(rows)[f"+ answer band, layers {low}-{high}"]["p"]
        upper = popularity > np.median(popularity)
        control = {"key": key, "popularity_within_kind_auroc": within(popularity),
                   "band_within_kind_auroc_lower_half": within(band, ~upper),
                   "band_within_kind_auroc_upper_half": within(band, upper)}
        print(f"\ncontrol: {key} alone, AUROC within kind {control['popularity_within_kind_auroc']:.3f}; the answer-band "
              f"head within the lower / upper half of {key}: {control['band_within_kind_auroc_lower_half']:.3f} / "
              f"{control['band_within_kind_auroc_upper_half']:.3f}")
    summary = {name: {k: round(v, 4) for k, v in r.items() if k != "p"} for name, r in rows}
    print(json.dumps({"run": run.name, "set": args.set, "unaligned_accuracy": round(accuracy, 4), "layers": n_layers,
                      "band": [low, high], "features": summary,
                      "control": {k: (round(v, 4) if isinstance(v, float) else v) for k, v in control.items()}}))


if __name__ == "__main__":
    main()
