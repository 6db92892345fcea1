"""The train stage: one fine-tuned model per method that trains, in ``models/<method>/``
(TRL SFT, DPO or GRPO, full or LoRA: ``knowbound.training``).

A GRPO method starts, by default (``train.grpo_init`` "warm"), from the trained model of its
warm-start method (``Method.warm_start``), so its output comes after that method's."""

from __future__ import annotations

import dataclasses

from knowbound.config import RunConfig, TrainConfig, build_section, to_dict
from knowbound.errors import KnowboundError
from knowbound.loop.rundir import ConfigView, Output, RunDir, StageResult, budget_confidence, budget_reads, fill
from knowbound.methods import Method, get_method, trained_methods

NAME = "train"
# Every `train` key but `kind` (each method sets its own) and `seed` (the run's is used), and but
# the keys below; then the method's overrides and the run's seed.
_NOT_READ = ("kind", "seed")
DPO_ONLY = ("dpo_beta", "sft_weight")  # SFT never reads them
GRPO_ONLY = ("grpo_generations", "grpo_max_new_tokens", "grpo_beta", "grpo_init", "grpo_threshold")  # nor these
LOG_ONLY = ("logging_steps",)  # changes the log, not the weights
READS = (*(f"train.{f.name}" for f in dataclasses.fields(TrainConfig)
           if f.name not in _NOT_READ + DPO_ONLY + GRPO_ONLY + LOG_ONLY), "method_train.{method}", "seed")
# Keys of one kind of training: (config fields, other keys its output reads). GRPO grades its own
# samples, with the run's grading rule.
KIND_ONLY: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {"dpo": (DPO_ONLY, ()), "grpo": (GRPO_ONLY, ("grading",))}
# The log interval, and the torch threads (model.threads: set here too, for a training that runs
# in a process where no hf backend set them, such as a run with a server backend).
USES = tuple(f"train.{k}" for k in LOG_ONLY) + ("model.threads",)


def use_threads(view: ConfigView) -> None:
    """``model.threads`` for training, as the hf backend sets it for generation."""
    if view.model.threads:
        import torch

        torch.set_num_threads(view.model.threads)


def train_config(view: ConfigView, method: Method) -> TrainConfig:
    """The method's training config: `train` with `method_train.<method>` and the run's seed applied."""
    names = [f.name for f in dataclasses.fields(TrainConfig) if f.name not in _NOT_READ]
    for kind, (fields, _) in KIND_ONLY.items():
        if method.kind != kind:
            names = [n for n in names if n not in fields]  # left at their defaults, which other kinds ignore
    base = {n: getattr(view.train, n) for n in names}
    data = {**to_dict(TrainConfig(**base)), "kind": method.kind, "seed": view.seed,
            **dict(view.method_train.get(method.name, {}))}
    return build_section(TrainConfig, data, f"method_train.{method.name}")


def method_train_config(cfg: RunConfig, method: str) -> TrainConfig:
    """What ``method`` trains with under ``cfg``: ``train_config`` through its output's declared keys."""
    m = get_method(method)
    reads, uses = _declared(m)
    return train_config(ConfigView(cfg, frozenset(reads + uses), f"train/{method}"), m)


def _declared(method: Method) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(reads, uses) of a method's train output."""
    fields, other = KIND_ONLY.get(method.kind, ((), ()))
    return fill(READS, method=method.name) + tuple(f"train.{k}" for k in fields) + other, USES


def outputs(run: RunDir) -> list[Output]:
    """One output per method that trains; GRPO methods last, after the models they start from."""
    methods = sorted(trained_methods(run.cfg.methods), key=lambda m: m.kind == "grpo")
    return [_output(run, method) for method in methods]


# What a P(IK) head's training reads: how the unaligned model is asked (its features come from a
# forward pass over the question and its greedy answer); and the threshold's accuracy budget
# (budget_reads).
HEAD_READS = ("prompt", "model.prompt_format", "model.dtype")
HEAD_USES = ("model.device", "model.max_batch_size", "model.threads")


def _head_output(run: RunDir, method: Method) -> Output:
    name, path = method.name, run.dir / "models" / method.name
    # Read only when set, so that other runs keep their digests.
    entity_reads = ("build.pik_entity",) if run.cfg.build.pik_entity else ()
    if run.cfg.build.pik_entity and run.cfg.build.pik_swaps:
        entity_reads += ("build.pik_swaps", "seed")
    reads = HEAD_READS + budget_reads(run.cfg) + entity_reads

    def work(view: ConfigView) -> None:
        from knowbound.backends import open_backend
        from knowbound.io import read_jsonl
        from knowbound.pik import entity_features, feature_matrix, fit_head, swap_tails

        rows = read_jsonl(run.dir / "data" / f"{name}.jsonl")
        backend = open_backend("hf", run.model_path, model_settings=view.model)
        greedy = [r for r in rows if not r.get("sample")]
        samples = [r for r in rows if r.get("sample")]
        if samples:
            run.log(f"train: {name}: features of {len(greedy)} greedy and {len(samples)} sampled answers")
        # The entity features (build.pik_entity): the build wrote each row's entity.
        key = view.build.pik_entity if entity_reads else None
        swap = None
        if key:
            if missing := [r["question_id"] for r in rows if "entity" not in r]:
                raise KnowboundError(f"{run.dir / 'data' / f'{name}.jsonl'}: rows without an entity ({missing[0]} ...) "
                                     "though build.pik_entity is set; re-run the build stage")
            if "build.pik_swaps" in entity_reads:
                swap = (swap_tails([r["entity"] for r in rows]), view.build.pik_swaps, view.seed)

        # One pass for every row's entity features (the samples share their greedy row's prompt).
        block = (entity_features(backend, [r["prompt"] for r in rows], [r["answer"] for r in rows],
                                 [r["entity"] for r in rows], *(swap or (None, 0, 0))) if key else None)

        def features(sample: bool, progress: bool):
            part = [i for i, r in enumerate(rows) if bool(r.get("sample")) == sample]
            states = backend.answer_states([rows[i]["prompt"] for i in part], [rows[i]["answer"] for i in part],
                                           progress=progress)
            return feature_matrix(states, block[part] if block is not None else None)

        x = features(False, bool(samples))
        sample_x = features(True, True) if samples else None
        head, _ = fit_head(x, [r["label"] for r in greedy], [r["group"] for r in greedy], view.eval.max_accuracy_drop,
                           sample_x=sample_x, sample_labels=[r["label"] for r in samples],
                           sample_groups=[r["group"] for r in samples], entity_key=key, swap=swap,
                           budget_confidence=budget_confidence(view, reads))
        head.save(path)
        run.log(f"train: {name}: a P(IK) head on {head.fit['features']} of {len(greedy)} answers; out-of-fold AUROC "
                f"{head.fit['oof_auroc']:.3f}, refuses below P(IK) {head.threshold:.3f} (out-of-fold honesty "
                f"{head.fit['honesty']:.3f})")

    return Output(f"train/{name}", (path,), work, reads=reads, uses=HEAD_USES,
                  after=(f"build/{name}",), identity={"model": run.model_id})


def warm_start(run: RunDir, method: Method) -> str | None:
    """The method whose trained model a GRPO method starts from (None: the unaligned model); an
    error when that method is not in the run."""
    if method.kind != "grpo" or method.warm_start is None:
        return None
    if method_train_config(run.cfg, method.name).grpo_init == "unaligned":
        return None
    if method.warm_start not in run.cfg.methods:
        raise KnowboundError(f"method {method.name} starts from the trained model of {method.warm_start}, which is "
                             f"not in this run's methods: add {method.warm_start} to methods, or set "
                             f"method_train.{method.name}.grpo_init: unaligned")
    return method.warm_start


def _grpo_output(run: RunDir, method: Method) -> Output:
    name, path = method.name, run.dir / "models" / method.name
    warm = warm_start(run, method)

    def work(view: ConfigView) -> None:
        from knowbound.io import read_jsonl
        from knowbound.training import train_grpo

        rows = read_jsonl(run.dir / "data" / f"{name}.jsonl")
        run.free_models()
        use_threads(view)
        cfg = train_config(view, method)
        model_path, adapter = run.model_path, None
        if warm is not None:
            start = run.dir / "models" / warm
            if (start / "adapter_config.json").exists():
                adapter = str(start)  # a LoRA adapter on the unaligned model: merged in first
            else:
                model_path = str(start)
        # An adapter is loaded onto the unaligned model at eval: one trained on top of another
        # method's weights is saved merged instead.
        result = train_grpo(model_path, rows, path, cfg, method.reward or "", grading=view.grading, adapter=adapter,
                            tokenizer_path=run.model_path, merge_adapter=warm is not None)
        s = result.summary
        run.log(f"train: {name}: GRPO from {warm or 'the unaligned model'}, {result.rows} prompts, {result.steps} "
                f"steps, {result.seconds:.0f} s; reward {s.get('reward_first')} -> {s.get('reward_last')}, "
                f"frac_reward_zero_std {s.get('frac_reward_zero_std')} (mean; last {s.get('frac_reward_zero_std_last')})")

    reads, uses = _declared(method)
    after = (f"build/{name}",) + ((f"train/{warm}",) if warm else ())
    return Output(f"train/{name}", (path,), work, reads=reads, uses=uses, after=after, identity={"model": run.model_id})


def _output(run: RunDir, method: Method) -> Output:
    if method.kind == "head":
        return _head_output(run, method)
    if method.kind == "grpo":
        return _grpo_output(run, method)
    name, path = method.name, run.dir / "models" / method.name

    def work(view: ConfigView) -> None:
        from knowbound.io import read_jsonl
        from knowbound.training import train

        rows = read_jsonl(run.dir / "data" / f"{name}.jsonl")
        run.free_models()  # free the memory of a loaded model before training
        use_threads(view)
        result = train(run.model_path, rows, path, train_config(view, method))
        if result.final_loss is not None:
            loss = f"final loss {round(result.final_loss, 4)}"
        else:  # no step reached train.logging_steps: the trainer's mean over the whole training
            loss = f"mean loss {None if result.mean_loss is None else round(result.mean_loss, 4)}"
        run.log(f"train: {name}: {result.rows} rows, {result.steps} steps, {result.seconds:.0f} s, {loss}")

    reads, uses = _declared(method)
    return Output(f"train/{name}", (path,), work, reads=reads, uses=uses, after=(f"build/{name}",),
                  identity={"model": run.model_id})


def run(rundir: RunDir) -> StageResult:
    """Fine-tune a model for every method that trains."""
    return rundir.run_stage(NAME, outputs(rundir))
