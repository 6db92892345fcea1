"""GRPO honesty rewards: pure functions of one completion and its question, graded by knowbound's
own grader (``knowbound.grading.grade``), and their wrappers in the form TRL's ``GRPOTrainer`` calls.

- ``three_way``, TruthRL (Wei et al. 2025, "TruthRL: Incentivizing Truthful LLMs via Reinforcement
  Learning"): +1 for a correct answer, 0 for an abstention (a detected refusal), -1 for a wrong
  answer. Answering pays in expectation only when P(correct) > 1/2, so the policy that maximises it
  refuses exactly where it is more likely wrong than right. ``threshold`` t moves that point:
  a wrong answer costs t / (1 - t), the penalty of Kalai et al.'s threshold score, so answering
  pays when P(correct) > t (TruthRL's -1 is t = 1/2). P(correct) is that of the answers GRPO
  samples (at T = 1 by default), which for a small model lies far below its greedy accuracy: with
  t = 1/2 the best policy for SmolLM2-135M refuses 76% of the questions its greedy answer gets
  right in the probe (``train.grpo_threshold``).
- ``brier``, RLCR (Damani et al. 2025, "Beyond Binary Rewards: Training LMs to Reason About Their
  Uncertainty"): the answer states a confidence q in the CONFIDENCE-NUM format ("I'm about 70%
  confident ..."), and the reward is 1[correct] - (q - 1[correct])^2. It is maximised by stating
  q = P(correct), whose value is P(correct)^2.
- ``verdict``, TruthRL's reward on R-Tuning's format (Zhang et al. 2024): the completion is an
  answer, R-Tuning's certainty question, then "I am sure." or "I am unsure.". "I am unsure." is the
  abstention (0); otherwise the answer is graded as by ``three_way`` (+1, or -t / (1 - t) when
  wrong). The decision comes after the answer, where the model's states can carry how sure it was
  of what it wrote, instead of at the first token, where ``three_way``'s refusal is decided.

The gold answers travel with each prompt as dataset columns (``GOLD_COLUMNS``); TRL passes every
column but the prompt to a reward function as a keyword argument holding one value per completion.
"""

from __future__ import annotations

import functools
from typing import Any, Callable, Sequence

from knowbound.errors import KnowboundError
from knowbound.types import Question

# TruthRL's rewards for a correct answer and a refusal (a wrong one: ``wrong_reward``).
REWARD_CORRECT, REWARD_IDK = 1.0, 0.0
# The dataset columns that rebuild a question for grading (``Question`` fields of the same names).
GOLD_COLUMNS = ("question", "answers", "kind", "choices", "answer_index")


def gold_columns(q: Question) -> dict[str, Any]:
    """The columns a prompt row carries so its completions can be graded."""
    return {"question": q.question, "answers": list(q.answers), "kind": q.kind, "choices": list(q.choices),
            "answer_index": q.answer_index}


def wrong_reward(threshold: float) -> float:
    """What a wrong answer earns when answering should pay above P(correct) = ``threshold``."""
    if not 0.0 < threshold < 1.0:
        raise KnowboundError(f"train.grpo_threshold is {threshold}: it must lie strictly between 0 and 1")
    return -threshold / (1.0 - threshold)


def three_way(text: str, question: Question, mode: str = "default", threshold: float = 0.5) -> float:
    """TruthRL's ternary reward: +1 correct, 0 refusal, -1 wrong (``grade``'s label); a wrong
    answer costs t / (1 - t) at another ``threshold`` t."""
    from knowbound.grading import grade

    label = grade(text, question, mode).label
    if label == "correct":
        return REWARD_CORRECT
    if label == "idk":
        return REWARD_IDK
    return wrong_reward(threshold)  # -1 at TruthRL's 1/2


def brier(text: str, question: Question, mode: str = "default") -> float:
    """RLCR's reward: 1[correct] - (q - 1[correct])^2, q the confidence the answer states.

    A refusal claims nothing and earns 0 (the reward of stating q = 0 on a wrong answer). An answer
    that states no confidence is scored as if it had stated the worst one (q = 1 - 1[correct]), so
    leaving the confidence out never pays: a right answer then earns 0, a wrong one -1.
    """
    from knowbound.grading import grade

    g = grade(text, question, mode)
    if g.label == "idk":
        return 0.0
    c = 1.0 if g.label == "correct" else 0.0
    q = 1.0 - c if g.confidence is None else g.confidence
    return c - (q - c) ** 2


def verdict(text: str, question: Question, mode: str = "default", threshold: float = 0.5) -> float:
    """``three_way`` on R-Tuning's format: 0 when the completion says "I am unsure.", else its answer
    (what comes before "Are you sure", the certainty question's start, so a sampled question that
    drifts from R-Tuning's words is still cut off) graded: +1 correct, 0 refusal, -t / (1 - t)
    wrong. A completion without a verdict stands as its answer, so leaving the verdict out never
    escapes the penalty of a wrong answer."""
    from knowbound.methods.phrases import RTUNING_QUESTION, RTUNING_UNSURE

    lowered = text.lower()
    if RTUNING_UNSURE.rstrip(".").lower() in lowered:
        return REWARD_IDK
    cut = lowered.find(" ".join(RTUNING_QUESTION.split()[:3]).lower())  # "are you sure"
    return three_way(text if cut < 0 else text[:cut], question, mode, threshold)


# Reward functions by name (``Method.reward``); the ones that take ``threshold``.
REWARDS: dict[str, Callable[[str, Question, str], float]] = {"three_way": three_way, "brier": brier,
                                                              "verdict": verdict}
THRESHOLD_REWARDS = ("three_way", "verdict")


def completion_text(completion: Any) -> str:
    """The text of one completion as TRL passes it: a string, or chat messages (the last one's content)."""
    if isinstance(completion, str):
        return completion
    return str(completion[-1]["content"]) if completion else ""


def reward_function(name: str, mode: str = "default", threshold: float = 0.5) -> Callable[..., list[float]]:
    """The reward ``name`` as TRL's ``GRPOTrainer`` calls it: completions and the gold columns in,
    one float per completion out. Its ``__name__`` is the reward's (TRL logs ``rewards/<name>/mean``)."""
    try:
        score = REWARDS[name]
    except KeyError:
        raise KnowboundError(f"unknown GRPO reward '{name}' (known: {', '.join(REWARDS)})") from None
    if threshold != 0.5:  # checked here, before training, rather than at the first reward
        if name not in THRESHOLD_REWARDS:
            raise KnowboundError(f"train.grpo_threshold is {threshold}: only the {' and '.join(THRESHOLD_REWARDS)} "
                                 f"rewards take a threshold ('{name}' does not; leave it at 0.5)")
        wrong_reward(threshold)
        score = functools.partial(score, threshold=threshold)

    def reward(prompts: Sequence, completions: Sequence, **columns: Any) -> list[float]:
        missing = [c for c in ("question", "answers") if c not in columns]
        if missing:
            raise KnowboundError(f"GRPO reward '{name}' needs the dataset columns {', '.join(GOLD_COLUMNS)}; "
                                 f"missing: {', '.join(missing)}")
        n = len(completions)
        kinds = columns.get("kind") or ["open"] * n
        choices = columns.get("choices") or [()] * n
        index = columns.get("answer_index") or [None] * n
        return [score(completion_text(c), Question(id="", question=q, answers=tuple(a or ()), kind=k,
                                                   choices=tuple(ch or ()), answer_index=i), mode)
                for c, q, a, k, ch, i in zip(completions, columns["question"], columns["answers"], kinds, choices, index)]

    reward.__name__ = name
    return reward
