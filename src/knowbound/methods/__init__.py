"""Honesty methods, registered by name.

A method says how to build its training data (a builder in ``builders.py``), how to train on it
(SFT, DPO, or not at all), which prompt its model answers under, and where its confidence comes
from (a verbal phrase, R-Tuning's certainty slot, or nowhere).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Sequence

from knowbound.errors import KnowboundError


@dataclass(frozen=True)
class Method:
    name: str
    kind: str  # sft | dpo | grpo | head (a P(IK) head on the unaligned model) | none (a prompt only)
    builder: str | None  # function name in knowbound.methods.builders
    eval_prompt: str | None = None  # prompt at inference; None: the run's prompt
    confidence: str = "none"  # none | verbal | rtuning | head
    # How the model abstains: "refusal" (it says the refusal) or "threshold" (its answer is withheld
    # when its confidence is below a threshold fitted on `train`, as for R-Tuning, whose "I am
    # unsure." follows a full answer).
    abstain: str = "refusal"
    help: str = ""
    colour: str = "#7f7f7f"  # the method's colour in every figure of the report
    reward: str | None = None  # grpo: the reward function's name (knowbound.grpo.REWARDS)
    # grpo: the method whose trained model RL starts from (train.grpo_init "warm"): the unaligned
    # model never says the refusal, so RL from it never samples an abstention to reward.
    warm_start: str | None = None
    default: bool = True  # in the config's default `methods` (DEFAULT_METHODS)

    def build(self, items, opts) -> list[dict]:
        """The method's training rows (empty for a prompt-only method)."""
        if self.builder is None:
            return []
        from knowbound.methods import builders

        fn: Callable[[Sequence, object], list[dict]] = getattr(builders, self.builder)
        return fn(items, opts)


# The one list of honesty methods: the config's default `methods`, the report's order and colours.
METHODS: dict[str, Method] = {m.name: m for m in (
    Method("sft-baseline", "sft", "build_sft_baseline", colour="#7f7f7f",
           help="the paper's Fine-tuned baseline: a correct answer for every question"),
    Method("prompt", "none", None, eval_prompt="honest", colour="#bcbd22",
           help="no training: the honest-QA instruction prompt"),
    Method("absolute", "sft", "build_absolute", colour="#1f77b4",
           help="answer if known (expected accuracy >= tau), else refuse"),
    Method("confidence-num", "sft", "build_confidence_num", confidence="verbal", colour="#ff7f0e",
           help="numeric confidence prefix, refusal if no sample is correct"),
    Method("confidence-verb", "sft", "build_confidence_verb", confidence="verbal", colour="#d62728",
           help="verbal confidence prefix, refusal if no sample is correct"),
    Method("multisample", "sft", "build_multisample", colour="#9467bd",
           help="one row per sample: the sample if correct, else the refusal"),
    Method("rtuning", "sft", "build_rtuning", confidence="rtuning", abstain="threshold", colour="#2ca02c",
           help="R-Tuning: answer, then 'I am sure.' / 'I am unsure.'; abstains when P(sure) is below "
                "a threshold fitted on train"),
    Method("dpo", "dpo", "build_dpo", colour="#e377c2",
           help="DPO: prefer a correct answer when known, the refusal when not"),
    Method("pik", "head", "build_pik", confidence="head", abstain="threshold", colour="#17a768",
           help="a P(I know) head on the unaligned model's answer (token log-probs, hidden states), "
                "trained on the probe's labels; refuses below a threshold fitted on train"),
    Method("grpo", "grpo", "build_grpo", reward="three_way", warm_start="absolute", default=False,
           colour="#8c564b",
           help="GRPO with TruthRL's reward on its own samples: +1 correct, 0 refusal, -1 wrong "
                "(starts from absolute's model)"),
    Method("grpo-confidence", "grpo", "build_grpo", reward="brier", warm_start="confidence-num",
           default=False, confidence="verbal", abstain="threshold", colour="#c49c94",
           help="GRPO with RLCR's reward: 1[correct] - (stated confidence - 1[correct])^2; abstains "
                "when the stated confidence is below a threshold fitted on train (starts from "
                "confidence-num's model)"),
    Method("grpo-rtuning", "grpo", "build_grpo", reward="verdict", warm_start="rtuning", default=False,
           confidence="rtuning", abstain="threshold", colour="#dbdb8d",
           help="GRPO with TruthRL's reward on R-Tuning's format: answer, then 'I am sure.' (the answer "
                "graded +1 / -1) or 'I am unsure.' (0); abstains as R-Tuning does (starts from "
                "rtuning's model)"),
)}


# The config's default `methods`: every registered method but the opt-in ones (GRPO).
DEFAULT_METHOD_NAMES: tuple[str, ...] = tuple(m.name for m in METHODS.values() if m.default)


def get_method(name: str) -> Method:
    """The registered method, or an error listing the known ones."""
    try:
        return METHODS[name]
    except KeyError:
        raise KnowboundError(f"unknown method '{name}' (known: {', '.join(METHODS)})") from None


def trained_methods(names: Sequence[str]) -> list[Method]:
    """The methods among ``names`` that train a model, in the order given."""
    return [m for m in (get_method(name) for name in names) if m.kind != "none"]
