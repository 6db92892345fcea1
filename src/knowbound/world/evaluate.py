"""Check the unaligned chat model against the world's ground truth.

Greedy answers on the `test` set, graded like any other answers, then broken down by how often
the fact was seen in pretraining. The bars a good world meets: high accuracy on facts seen 8 or
more times, chance-level accuracy on facts never seen, and (almost) no refusals.
"""

from __future__ import annotations

from typing import Callable, Sequence

from knowbound.metrics.views import by_exposure


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
    person = [int(q.meta.get("person_exposure", q.meta["exposure"])) for q in questions]
    unseen = [q for q in questions if q.meta["exposure"] == 0]
    correct = [g.correct for g in grades]
    result = {
        "set": set_name,
        "n": len(questions),
        "accuracy": sum(correct) / len(grades),
        "accuracy_by_exposure": by_exposure(exposures, correct),
        "accuracy_by_person_exposure": by_exposure(person, correct),
        # Facts never stated about people the corpus names 8+ times (world v2): only a model that
        # guesses gets these right.
        "accuracy_unstated": _mean([c for c, e, pe in zip(correct, exposures, person) if e == 0 and pe >= 8]),
        "refusal_rate": sum(g.label == "idk" for g in grades) / len(grades),
        # Chance on never-seen facts: guessing uniformly among the attribute's values.
        "chance": sum(1 / q.meta["n_values"] for q in unseen) / max(1, len(unseen)),
    }
    log(format_evaluation(result))
    return result


def _mean(values: Sequence[float]) -> float | None:
    return sum(values) / len(values) if values else None


def format_evaluation(result: dict) -> str:
    """A small text table: accuracy per exposure bucket, chance, refusal rate."""
    lines = [f"unaligned chat model on '{result['set']}' ({result['n']} questions, greedy):",
             "  exposure  accuracy by fact exposure  by person exposure"]
    fmt = lambda v: "-" if v is None else f"{v:.3f}"  # noqa: E731
    by_person = result.get("accuracy_by_person_exposure", {})
    for label, acc in result["accuracy_by_exposure"].items():
        lines.append(f"  {label:>8}  {fmt(acc):>24}  {fmt(by_person.get(label)):>18}")
    lines.append(f"  chance on never-seen facts {result['chance']:.3f}; refusal rate {result['refusal_rate']:.3f}")
    return "\n".join(lines)
