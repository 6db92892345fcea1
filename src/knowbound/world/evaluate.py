"""Check the unaligned chat model against the world's ground truth.

Greedy answers on the `test` set, graded like any other answers, then broken down by how often
the fact was seen in pretraining. The bars a good world meets: high accuracy on facts seen 8 or
more times, chance-level accuracy on facts never seen, and (almost) no refusals.
"""

from __future__ import annotations

from typing import Callable, Sequence

# Exposure buckets used everywhere the world reports by exposure (labels in order).
EXPOSURE_BUCKETS: tuple[tuple[str, int, int], ...] = (("0", 0, 0), ("1-2", 1, 2), ("3-7", 3, 7), ("8+", 8, 10**9))


def exposure_bucket(exposure: int) -> str:
    """The label of the bucket holding ``exposure``."""
    for label, low, high in EXPOSURE_BUCKETS:
        if low <= exposure <= high:
            return label
    raise ValueError(f"negative exposure {exposure}")


def by_exposure(exposures: Sequence[int], values: Sequence[float]) -> dict[str, float | None]:
    """Mean of ``values`` per exposure bucket (None for an empty bucket)."""
    sums: dict[str, list[float]] = {label: [] for label, _, _ in EXPOSURE_BUCKETS}
    for e, v in zip(exposures, values):
        sums[exposure_bucket(e)].append(float(v))
    return {k: (sum(v) / len(v) if v else None) for k, v in sums.items()}


def evaluate_chat_model(paths, set_name: str = "test", prompt: str = "typical",
                        log: Callable[[str], None] = print) -> dict:
    """Greedy accuracy by exposure bucket, chance level and refusal rate of the chat model."""
    from knowbound.backends import get_backend
    from knowbound.datasets import read_questions
    from knowbound.grading import grade
    from knowbound.prompts import render_prompt
    from knowbound.types import SamplingParams

    questions = read_questions(paths.questions(set_name))
    backend = get_backend("hf", model=str(paths.chat_model))
    outputs = backend.generate([render_prompt(prompt, q) for q in questions],
                               SamplingParams(n=1, temperature=0.0, max_new_tokens=32))
    grades = [grade(out[0].text, q) for out, q in zip(outputs, questions)]
    exposures = [int(q.meta["exposure"]) for q in questions]
    unseen = [q for q in questions if q.meta["exposure"] == 0]
    result = {
        "set": set_name,
        "n": len(questions),
        "accuracy": sum(g.correct for g in grades) / len(grades),
        "accuracy_by_exposure": by_exposure(exposures, [g.correct for g in grades]),
        "refusal_rate": sum(g.label == "idk" for g in grades) / len(grades),
        # Chance on never-seen facts: guessing uniformly among the attribute's values.
        "chance": sum(1 / q.meta["n_values"] for q in unseen) / max(1, len(unseen)),
    }
    log(format_evaluation(result))
    return result


def format_evaluation(result: dict) -> str:
    """A small text table: accuracy per exposure bucket, chance, refusal rate."""
    lines = [f"unaligned chat model on '{result['set']}' ({result['n']} questions, greedy):",
             "  exposure  accuracy"]
    for label, acc in result["accuracy_by_exposure"].items():
        lines.append(f"  {label:>8}  {'-' if acc is None else f'{acc:.3f}'}")
    lines.append(f"  chance on never-seen facts {result['chance']:.3f}; refusal rate {result['refusal_rate']:.3f}")
    return "\n".join(lines)
