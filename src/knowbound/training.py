"""Fine-tuning with TRL: SFT (loss on completions only), DPO and GRPO, full or LoRA (QLoRA on CUDA).

Rows are TRL-ready dicts: ``prompt``/``completion`` for SFT, ``prompt``/``chosen``/``rejected``
for DPO and ``prompt`` plus the gold columns (``knowbound.grpo.GOLD_COLUMNS``) for GRPO, each
prompt or answer either a string or a list of chat messages (the conversational format, where TRL
applies the tokenizer's chat template). The same code runs unchanged under ``accelerate launch``
on many GPUs: TRL and ``transformers.Trainer`` handle the distribution.
"""

from __future__ import annotations

import json
import shutil
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Sequence

from knowbound.config import TrainConfig
from knowbound.errors import KnowboundError, require


# The TRL fields a row must have; other keys (question_id, known, ...) are for auditing only.
SFT_FIELDS = ("prompt", "completion")
DPO_FIELDS = ("prompt", "chosen", "rejected")


@dataclass(frozen=True)
class TrainResult:
    out_dir: str
    rows: int
    steps: int
    seconds: float
    final_loss: float | None
    # Summaries of the trainer's logs (GRPO: reward, frac_reward_zero_std, ...), also written to
    # knowbound_training.json beside the weights.
    summary: dict[str, Any] = field(default_factory=dict)
    # The trainer's mean loss over the whole training (its last log entry): the only loss there is
    # when training ends before the first logging step (``final_loss`` None then).
    mean_loss: float | None = None


def _precision(cfg: TrainConfig) -> dict[str, bool]:
    import torch

    choice = cfg.precision
    if choice == "auto":
        choice = "bf16" if torch.cuda.is_available() and torch.cuda.is_bf16_supported() else "fp32"
    return {"bf16": choice == "bf16", "fp16": choice == "fp16"}


def _peft_config(cfg: TrainConfig):
    if cfg.lora is None:
        return None
    peft = require("peft", "train")
    targets = cfg.lora.target_modules
    return peft.LoraConfig(
        r=cfg.lora.r,
        lora_alpha=cfg.lora.alpha,
        lora_dropout=cfg.lora.dropout,
        target_modules=targets if isinstance(targets, str) else list(targets),
        task_type="CAUSAL_LM",
    )


def load_model(model_path: str, cfg: TrainConfig):
    """Load the model to fine-tune (4-bit for QLoRA, which needs CUDA and bitsandbytes)."""
    import torch
    from transformers import AutoModelForCausalLM

    kwargs: dict[str, Any] = {}
    if cfg.qlora:
        if cfg.lora is None:
            raise KnowboundError("qlora needs a LoRA adapter: set lora in the training config")
        if not torch.cuda.is_available():
            raise KnowboundError("qlora needs a CUDA GPU; none was found (use lora without qlora on CPU)")
        try:
            import bitsandbytes  # noqa: F401
        except ImportError:
            raise KnowboundError("qlora needs bitsandbytes: pip install bitsandbytes") from None
        from transformers import BitsAndBytesConfig

        kwargs["quantization_config"] = BitsAndBytesConfig(
            load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_compute_dtype=torch.bfloat16,
            bnb_4bit_use_double_quant=True,
        )
    elif _precision(cfg)["bf16"]:
        kwargs["dtype"] = torch.bfloat16
    try:
        return AutoModelForCausalLM.from_pretrained(model_path, **kwargs)
    except (OSError, ValueError) as exc:  # ValueError: not a repo id, no tokenizer files
        raise _not_loadable(model_path, exc) from exc


def _not_loadable(path: str, exc: Exception) -> KnowboundError:
    return KnowboundError(f"cannot load '{path}' to fine-tune it: {exc}\nMethods that train load the unaligned "
                          "model's weights with transformers (model.path: a local folder or a Hub name), also "
                          "when a server answers for it (model.backend: openai)")


def _checkpointing_field() -> str:
    """transformers 5 renamed ``gradient_checkpointing`` to ``activation_checkpointing``."""
    from transformers import TrainingArguments

    fields = TrainingArguments.__dataclass_fields__
    return "activation_checkpointing" if "activation_checkpointing" in fields else "gradient_checkpointing"


def _cuda() -> bool:
    import torch

    return torch.cuda.is_available()


def _trainer_args(cfg: TrainConfig, out_dir: str, n_rows: int) -> dict[str, Any]:
    return dict(
        output_dir=out_dir,
        num_train_epochs=cfg.epochs,
        learning_rate=cfg.lr,
        per_device_train_batch_size=cfg.batch_size,
        gradient_accumulation_steps=cfg.grad_accum,
        warmup_steps=int(cfg.warmup_ratio * max(1, n_rows // (cfg.batch_size * cfg.grad_accum)) * cfg.epochs),
        lr_scheduler_type=cfg.scheduler,
        weight_decay=cfg.weight_decay,
        max_length=cfg.max_length,
        seed=cfg.seed,
        data_seed=cfg.seed,
        logging_steps=cfg.logging_steps,
        save_strategy="no",
        report_to="none",
        **{_checkpointing_field(): False},  # tiny models: recomputation costs more than it saves
        dataloader_num_workers=0,
        dataloader_pin_memory=_cuda(),  # pinned memory helps only a GPU (and warns on a CPU)
        **_precision(cfg),
        **cfg.extra,
    )


def _crash_point_callback():
    """A callback that passes the ``train.step`` crash point after every optimiser step."""
    from transformers import TrainerCallback

    from knowbound.crash import crash_point

    class CrashPoint(TrainerCallback):
        def on_step_end(self, args, state, control, **kwargs):
            crash_point("train.step")

    return CrashPoint()


def _training_model(model_path: str, cfg: TrainConfig, adapter: str | None = None):
    """The model to fine-tune (with the LoRA ``adapter`` merged in, if given), its embeddings
    frozen when ``cfg.freeze_embeddings``."""
    model = load_model(model_path, cfg)
    if adapter is not None:
        peft = require("peft", "train")
        model = peft.PeftModel.from_pretrained(model, adapter).merge_and_unload()
        model.requires_grad_(True)  # loading an adapter froze the base weights
    if cfg.freeze_embeddings:
        model.get_input_embeddings().weight.requires_grad_(False)
        if model.get_output_embeddings() is not None:
            model.get_output_embeddings().weight.requires_grad_(False)
    return model


def _tokenizer(path: str):
    from transformers import AutoTokenizer

    try:
        tokenizer = AutoTokenizer.from_pretrained(path)
    except (OSError, ValueError) as exc:  # ValueError: not a repo id, no tokenizer files
        raise _not_loadable(path, exc) from exc
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer


def _run_and_save(make_trainer, rows: Sequence[dict], out_dir: Path, cfg: TrainConfig, tokenizer,
                  merge_adapter: bool = False) -> TrainResult:
    """Build the trainer (``make_trainer(trainer_dir)``), train, and save weights, tokenizer and
    ``knowbound_training.json`` to ``out_dir``.

    The output directory appears only when training finished: the trainer works in a temporary
    sibling directory that is renamed at the end, so an interrupted run leaves nothing half-saved.
    ``merge_adapter`` saves a LoRA adapter merged into full weights (for a model whose base is not
    the run's unaligned model, which is what an adapter is loaded onto at eval).
    """
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.", dir=out_dir.parent))
    start = time.perf_counter()
    try:
        trainer = make_trainer(str(work / "trainer"))
        trainer.add_callback(_crash_point_callback())
        output = trainer.train()
        final = work / "final"
        if merge_adapter and hasattr(trainer.model, "merge_and_unload"):
            trainer.model.merge_and_unload().save_pretrained(str(final))
        else:
            trainer.save_model(str(final))
        tokenizer.save_pretrained(str(final))
        history = trainer.state.log_history
        losses = [h for h in history if "loss" in h]
        summary = log_summary(history)
        (final / "knowbound_training.json").write_text(json.dumps(
            {"config": asdict(cfg), "rows": len(rows), "summary": summary, "log_history": history}, indent=1))
        if out_dir.exists():
            shutil.rmtree(out_dir)
        final.rename(out_dir)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return TrainResult(str(out_dir), len(rows), output.global_step, time.perf_counter() - start,
                       losses[-1]["loss"] if losses else None, summary,
                       next((h["train_loss"] for h in reversed(history) if "train_loss" in h), None))


# Logged GRPO metrics summarised into a training record: the share of prompts whose sampled
# completions all earned the same reward (no advantage, so no gradient), and the mean reward.
SUMMARY_KEYS = ("frac_reward_zero_std", "reward", "reward_std", "completions/mean_length")


def log_summary(history: Sequence[dict]) -> dict[str, Any]:
    """For each of ``SUMMARY_KEYS`` logged in ``history``: its mean over the training logs, and its
    first and last logged values (``<key>``, ``<key>_first``, ``<key>_last``)."""
    out: dict[str, Any] = {}
    for key in SUMMARY_KEYS:
        values = [h[key] for h in history if isinstance(h.get(key), (int, float))]
        if values:
            out[key] = round(sum(values) / len(values), 4)
            out[f"{key}_first"], out[f"{key}_last"] = round(values[0], 4), round(values[-1], 4)
    return out


def train(model_path: str, rows: Sequence[dict], out_dir: str | Path, cfg: TrainConfig,
          tokenizer_path: str | None = None) -> TrainResult:
    """Fine-tune ``model_path`` on ``rows`` (SFT or DPO, ``cfg.kind``) and save weights (safetensors)
    and tokenizer to ``out_dir``, which appears only when training finished."""
    require("trl", "train")
    from datasets import Dataset

    if not rows:
        raise KnowboundError("no training rows")
    if cfg.kind not in ("sft", "dpo"):
        hint = ": use train_grpo" if cfg.kind == "grpo" else ""
        raise KnowboundError(f"unknown training kind '{cfg.kind}' for train (known: sft, dpo){hint}")
    tokenizer = _tokenizer(tokenizer_path or model_path)
    model = _training_model(model_path, cfg)
    keep = SFT_FIELDS if cfg.kind == "sft" else DPO_FIELDS
    dataset = Dataset.from_list([{k: r[k] for k in keep} for r in rows])

    def make_trainer(trainer_dir: str):
        args = _trainer_args(cfg, trainer_dir, len(rows))
        if cfg.kind == "sft":
            from trl import SFTConfig, SFTTrainer

            return SFTTrainer(model=model, args=SFTConfig(completion_only_loss=True, **args),
                              train_dataset=dataset, processing_class=tokenizer, peft_config=_peft_config(cfg))
        from trl import DPOConfig, DPOTrainer

        dpo_args = dict(args, beta=cfg.dpo_beta)
        if cfg.sft_weight > 0:
            dpo_args.update(loss_type=["sigmoid", "sft"], loss_weights=[1.0, cfg.sft_weight])
        return DPOTrainer(model=model, args=DPOConfig(**dpo_args), train_dataset=dataset,
                          processing_class=tokenizer, peft_config=_peft_config(cfg))

    return _run_and_save(make_trainer, rows, Path(out_dir), cfg, tokenizer)


def grpo_args(cfg: TrainConfig, out_dir: str, n_rows: int) -> dict[str, Any]:
    """GRPOConfig's arguments: the shared trainer arguments, the ``grpo_*`` fields, then ``cfg.extra``
    (so ``use_vllm``, ``temperature``, ``loss_type`` ... pass through as is).

    ``batch_size`` counts completions, as TRL's does: each step trains on
    ``batch_size / grpo_generations`` prompts with ``grpo_generations`` completions each.
    """
    if cfg.grpo_generations < 2:
        raise KnowboundError(f"train.grpo_generations is {cfg.grpo_generations}: GRPO compares at least 2 "
                             "completions per prompt")
    if (cfg.batch_size * cfg.grad_accum) % cfg.grpo_generations:
        raise KnowboundError(f"GRPO: batch_size x grad_accum ({cfg.batch_size} x {cfg.grad_accum}) must be a "
                             f"multiple of train.grpo_generations ({cfg.grpo_generations}): it counts completions")
    # One epoch is every prompt sampled grpo_generations times.
    args = _trainer_args(cfg, out_dir, n_rows * cfg.grpo_generations)
    del args["max_length"]  # GRPOConfig bounds the completion instead (max_completion_length)
    return {**args, "num_generations": cfg.grpo_generations, "max_completion_length": cfg.grpo_max_new_tokens,
            "beta": cfg.grpo_beta, **cfg.extra}


def train_grpo(model_path: str, rows: Sequence[dict], out_dir: str | Path, cfg: TrainConfig, reward: str, *,
               grading: str = "default", adapter: str | None = None, tokenizer_path: str | None = None,
               merge_adapter: bool = False) -> TrainResult:
    """GRPO on ``rows`` (prompts with gold columns) with the reward ``reward``
    (``knowbound.grpo.REWARDS``, grading with ``grading``), from ``model_path`` — with ``adapter``
    (a LoRA adapter directory) merged into it first when given — and save the result to ``out_dir``
    like ``train``. LoRA when ``cfg.lora`` is set; ``merge_adapter`` saves it merged (see
    ``_run_and_save``). The record in ``knowbound_training.json`` summarises TRL's logged
    ``frac_reward_zero_std`` and ``reward`` (``log_summary``)."""
    require("trl", "train")
    from datasets import Dataset

    from knowbound.grpo import GOLD_COLUMNS, reward_function

    if not rows:
        raise KnowboundError("no training rows")
    missing = [c for c in ("prompt", *GOLD_COLUMNS) if c not in rows[0]]
    if missing:
        raise KnowboundError(f"GRPO rows need the columns prompt, {', '.join(GOLD_COLUMNS)}; missing: "
                             f"{', '.join(missing)} (build them with the grpo builder)")
    reward_fn = reward_function(reward, grading, cfg.grpo_threshold)
    tokenizer = _tokenizer(tokenizer_path or model_path)
    model = _training_model(model_path, cfg, adapter)
    dataset = Dataset.from_list([{k: r[k] for k in ("prompt", *GOLD_COLUMNS)} for r in rows])

    def make_trainer(trainer_dir: str):
        from trl import GRPOConfig, GRPOTrainer

        return GRPOTrainer(model=model, reward_funcs=[reward_fn], args=GRPOConfig(**grpo_args(cfg, trainer_dir, len(rows))),
                           train_dataset=dataset, processing_class=tokenizer, peft_config=_peft_config(cfg))

    return _run_and_save(make_trainer, rows, Path(out_dir), cfg, tokenizer, merge_adapter=merge_adapter)
