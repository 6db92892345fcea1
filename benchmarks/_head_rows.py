"""What the P(IK) head's benchmarks read from a finished run (a helper, not a benchmark).

``pik_samples.py``, ``pik_consistency.py``, ``pik_entity.py`` and ``pik_learning_curve.py`` import it
(a script's own folder is first on ``sys.path``): the head's training rows as the train stage built
them, the unaligned model's answers to an eval set, the run's model, the head's feature rows over
all of them, optionally kept in one ``.npz`` cache that these scripts share, and the within-kind
AUROC they all report.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np


def run_config(run: Path):
    """(config, accuracy budget) of a finished run; an exit naming the run where it has no budget
    (``eval.max_accuracy_drop``), which the head's threshold needs."""
    from knowbound.config import load_config

    cfg = load_config(run / "config.yaml")
    if cfg.eval.max_accuracy_drop is None:
        raise SystemExit(f"{run}: the run has no accuracy budget (eval.max_accuracy_drop)")
    return cfg, cfg.eval.max_accuracy_drop


def head_rows(run: Path) -> tuple[list[dict], dict[str, dict], list[dict]]:
    """(greedy, knowledge, samples): the head's training rows (the unaligned model's greedy answers
    to `train`, ``data/pik.jsonl``), the probe's ``knowledge.jsonl`` by question id, and each
    question's sampled answers as rows of their own (its greedy row with ``answer`` and ``label``)."""
    from knowbound.io import read_jsonl

    greedy = [r for r in read_jsonl(run / "data" / "pik.jsonl") if not r.get("sample")]
    knowledge = {r["question_id"]: r for r in read_jsonl(run / "knowledge.jsonl")}
    samples = [dict(r, answer=a, label=lab) for r in greedy
               for a, lab in zip(knowledge[r["question_id"]]["samples"], knowledge[r["question_id"]]["sample_labels"])]
    return greedy, knowledge, samples


def eval_rows(run: Path, set_name: str) -> list[dict]:
    """The unaligned model's graded answers to one eval set."""
    from knowbound.io import read_jsonl

    return [r for r in read_jsonl(run / "predictions" / "unaligned" / f"{set_name}.jsonl") if r.get("label") is not None]


def open_run_backend(cfg):
    """The run's unaligned model on the hf backend."""
    from knowbound.backends import open_backend
    from knowbound.loop.rundir import RunDir, resolve_model

    resolved = RunDir(cfg, log=lambda message: None)
    resolve_model(resolved)
    return open_backend("hf", resolved.model_path, model_settings=cfg.model)


def head_features(cfg, greedy: list[dict], samples: list[dict], evals: list[dict], eval_prompts: list[str],
                  cache: Path | None = None, label: str = "") -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(x, sx, ex): the head's feature rows (``knowbound.pik.feature_matrix``) of the greedy
    training answers, the sampled ones and the eval answers (``eval_prompts``, one per row of
    ``evals``). With ``cache`` they are read from it when it exists (a cache of another run or set
    is refused by its row counts) and written to it otherwise."""
    if cache is not None and cache.exists():
        data = np.load(cache)
        x, sx, ex = data["x"], data["sx"], data["ex"]
        if (len(x), len(sx), len(ex)) != (len(greedy), len(samples), len(evals)):
            raise SystemExit(f"{cache}: {len(x)} / {len(sx)} / {len(ex)} feature rows, but the run has {len(greedy)} greedy "
                             f"and {len(samples)} sampled training answers and {len(evals)} answers on {label}: "
                             "a cache of another run or set")
        return x, sx, ex
    from knowbound.pik import feature_matrix

    backend = open_run_backend(cfg)
    print(f"{len(greedy)} greedy and {len(samples)} sampled training answers, {len(evals)} answers on {label}; "
          "one forward pass each ...", flush=True)

    def features(prompts: list[str], answers: list[str]) -> np.ndarray:
        return feature_matrix(backend.answer_states(prompts, answers, progress=True))

    x = features([r["prompt"] for r in greedy], [r["answer"] for r in greedy])
    sx = features([r["prompt"] for r in samples], [r["answer"] for r in samples])
    ex = features(eval_prompts, [r["pred_text"] for r in evals])
    if cache is not None:
        np.savez(cache, x=x, sx=sx, ex=ex)
    return x, sx, ex


def eval_kinds(evals: list[dict]) -> list[str]:
    """Each eval row's bucket: its question kind (GeoNames), else its person exposure (the world)."""
    return [str(r["meta"].get("kind", r["meta"].get("person_exposure", ""))) for r in evals]


def within_kind_auroc(scores: np.ndarray, y: np.ndarray, kinds: list[str]) -> float:
    """The AUROC of ``scores`` against ``y`` within each kind, averaged over the kinds with both
    classes (nan if none)."""
    import math
    import statistics

    from knowbound.metrics.calibration import auroc

    values = [auroc(scores[idx], y[idx]) for kind in sorted(set(kinds))
              for idx in [np.array([k == kind for k in kinds])] if len(set(y[idx])) == 2]
    return statistics.fmean(values) if values else math.nan
