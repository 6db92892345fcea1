"""The build stage: the training rows of every method that trains, in ``data/<method>.jsonl``,
from ``knowledge.jsonl`` (the label stage's graded answers) by the method's builder."""

from __future__ import annotations

import random
from typing import Sequence

from knowbound.loop.rundir import ConfigView, Output, RunDir, StageResult, fill
from knowbound.methods import Method, trained_methods
from knowbound.types import ProbeItem

NAME = "build"
READS = ("build.tau", "build.select", "build.balance", "prompt", "seed")
# Read only when build.balance_within is set, so runs without it keep their digests.
READS_BALANCED = ("build.balance_within", "build.known_rule")
# Keys only some methods' builders read.
READS_BY_METHOD: dict[str, tuple[str, ...]] = {
    "multisample": ("build.multisample_max",),
    "rtuning": ("build.known_rule",),
    "absolute": ("build.known_rule",),
    "sft-baseline": ("build.known_rule",),
    "dpo": ("build.known_rule",),
    "confidence-num": ("build.confidence_target",),
    "confidence-verb": ("build.confidence_target",),
    "grpo": ("build.known_rule",),  # which prompts are unknown (repeated up to GRPO_MIN_UNKNOWN_SHARE)
    "grpo-confidence": ("build.known_rule",),
    "grpo-rtuning": ("build.known_rule",),
}


def select_items(items: Sequence[ProbeItem], select: int | None, balance: bool, seed: int) -> list[ProbeItem]:
    """Keep ``select`` items; with ``balance``, half greedy-correct and half not (seeded)."""
    if select is None or select >= len(items):
        return list(items)
    rng = random.Random(seed)
    if not balance:
        return sorted(rng.sample(list(items), select), key=lambda i: i.question.id)
    known = [i for i in items if i.knowledge.greedy_correct]
    unknown = [i for i in items if not i.knowledge.greedy_correct]
    half = min(select // 2, len(known), len(unknown))
    picked = rng.sample(known, half) + rng.sample(unknown, min(len(unknown), select - half))
    return sorted(picked, key=lambda i: i.question.id)


def balance_within(items: Sequence[ProbeItem], key: str, tau: float, known_rule: str, seed: int) -> list[ProbeItem]:
    """Within each value of ``question.meta[key]``, as many known items (``is_known``) as unknown
    ones: the majority is sampled down to the minority's count (seeded); a value with one side
    empty keeps nothing."""
    from knowbound.methods.builders import BuildOptions, is_known

    opts = BuildOptions(prompt="", tau=tau, seed=seed, known_rule=known_rule)
    rng = random.Random(seed)
    groups: dict[str, tuple[list[ProbeItem], list[ProbeItem]]] = {}
    for item in items:
        known, unknown = groups.setdefault(str(item.question.meta.get(key)), ([], []))
        (known if is_known(item, opts) else unknown).append(item)
    picked = []
    for value in sorted(groups):
        known, unknown = groups[value]
        n = min(len(known), len(unknown))
        picked += rng.sample(known, n) + rng.sample(unknown, n)
    return sorted(picked, key=lambda i: i.question.id)


def outputs(run: RunDir) -> list[Output]:
    """One output per method that trains."""
    return [_output(run, method) for method in trained_methods(run.cfg.methods)]


def _output(run: RunDir, method: Method) -> Output:
    path = run.dir / "data" / f"{method.name}.jsonl"
    balanced = run.cfg.build.balance_within is not None

    def work(view: ConfigView) -> None:
        from knowbound.io import write_jsonl
        from knowbound.loop.label import read_knowledge
        from knowbound.methods.builders import BuildOptions

        from knowbound.methods.builders import confidence_targets

        b = view.build
        probed = read_knowledge(run.dir, run.questions("train"))
        items = select_items(probed, b.select, b.balance, view.seed)
        if balanced:
            before = len(items)
            items = balance_within(items, b.balance_within, b.tau, b.known_rule, view.seed)
            run.log(f"build: {method.name}: balanced known and unknown within meta.{b.balance_within}: "
                    f"{before} -> {len(items)} questions")
        by_k = None
        if "build.confidence_target" in reads and b.confidence_target == "greedy":
            by_k = confidence_targets(probed)
            run.log(f"build: {method.name}: confidence to state for k = 0..10 correct samples "
                    f"(P(greedy correct | k) on the probe): {', '.join(f'{v:.2f}' for v in by_k)}")
        opts = BuildOptions(prompt=view.prompt, tau=b.tau, seed=view.seed,
                            multisample_max=b.multisample_max if "build.multisample_max" in reads else None,
                            known_rule=b.known_rule if "build.known_rule" in reads else "official",
                            confidence_by_k=by_k, pik_samples="build.pik_samples" in reads and b.pik_samples,
                            pik_entity=b.pik_entity if "build.pik_entity" in reads else None)
        rows = method.build(items, opts)
        write_jsonl(path, rows)
        known = sum(1 for r in rows if r["known"])
        run.log(f"build: {method.name}: {len(items)} questions -> {len(rows)} rows "
                f"({known} known, {len(rows) - known} unknown)")

    reads = READS + READS_BY_METHOD.get(method.name, ()) + (READS_BALANCED if balanced else ())
    if method.name == "pik" and run.cfg.build.pik_samples:  # read only when set: other runs keep their digests
        reads += ("build.pik_samples",)
    if method.name == "pik" and run.cfg.build.pik_entity:
        reads += ("build.pik_entity",)
    return Output(f"build/{method.name}", (path,), work, reads=fill(reads), after=("questions/train", "label"),
                  identity={"method": method.name})


def run(rundir: RunDir) -> StageResult:
    """Build the training data of every method that trains."""
    return rundir.run_stage(NAME, outputs(rundir))
