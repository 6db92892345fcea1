"""Fine-tuning with TRL: SFT (loss on completions only) and DPO, full or LoRA (QLoRA on CUDA).

Rows are TRL-ready dicts: ``prompt``/``completion`` for SFT and ``prompt``/``chosen``/``rejected``
for DPO, each either a string or a list of chat messages (the conversational format, where TRL
applies the tokenizer's chat template). The same code runs unchanged under ``accelerate launch``
on many GPUs: TRL and ``transformers.Trainer`` handle the distribution.
"""

from __future__ import annotations

import json
import shutil
import tempfile
import time
from dataclasses import asdict, dataclass
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
    return AutoModelForCausalLM.from_pretrained(model_path, **kwargs)


def _checkpointing_field() -> str:
    """transformers 5 renamed ``gradient_checkpointing`` to ``activation_checkpointing``."""
    from transformers import TrainingArguments

    fields = TrainingArguments.__dataclass_fields__
    return "activation_checkpointing" if "activation_checkpointing" in fields else "gradient_checkpointing"


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


def train(model_path: str, rows: Sequence[dict], out_dir: str | Path, cfg: TrainConfig,
          tokenizer_path: str | None = None) -> TrainResult:
    """Fine-tune ``model_path`` on ``rows`` and save weights (safetensors) and tokenizer to ``out_dir``.

    The output directory appears only when training finished: the trainer works in a temporary
    sibling directory that is renamed at the end, so an interrupted run leaves nothing half-saved.
    """
    require("trl", "train")
    from datasets import Dataset
    from transformers import AutoTokenizer

    if not rows:
        raise KnowboundError("no training rows")
    out_dir = Path(out_dir)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    tokenizer = AutoTokenizer.from_pretrained(tokenizer_path or model_path)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    model = load_model(model_path, cfg)
    if cfg.freeze_embeddings:
        model.get_input_embeddings().weight.requires_grad_(False)
        if model.get_output_embeddings() is not None:
            model.get_output_embeddings().weight.requires_grad_(False)
    keep = SFT_FIELDS if cfg.kind == "sft" else DPO_FIELDS
    dataset = Dataset.from_list([{k: r[k] for k in keep} for r in rows])
    work = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.", dir=out_dir.parent))
    args = _trainer_args(cfg, str(work / "trainer"), len(rows))
    start = time.perf_counter()
    try:
        if cfg.kind == "sft":
            from trl import SFTConfig, SFTTrainer

            trainer = SFTTrainer(model=model, args=SFTConfig(completion_only_loss=True, **args),
                                 train_dataset=dataset, processing_class=tokenizer,
                                 peft_config=_peft_config(cfg))
        elif cfg.kind == "dpo":
            from trl import DPOConfig, DPOTrainer

            dpo_args = dict(args, beta=cfg.dpo_beta)
            if cfg.sft_weight > 0:
                dpo_args.update(loss_type=["sigmoid", "sft"], loss_weights=[1.0, cfg.sft_weight])
            trainer = DPOTrainer(model=model, args=DPOConfig(**dpo_args), train_dataset=dataset,
                                 processing_class=tokenizer, peft_config=_peft_config(cfg))
        else:
            raise KnowboundError(f"unknown training kind '{cfg.kind}' (known: sft, dpo)")
        trainer.add_callback(_crash_point_callback())
        output = trainer.train()
        final = work / "final"
        trainer.save_model(str(final))
        tokenizer.save_pretrained(str(final))
        history = [h for h in trainer.state.log_history if "loss" in h]
        (final / "knowbound_training.json").write_text(json.dumps(
            {"config": asdict(cfg), "rows": len(rows), "log_history": trainer.state.log_history}, indent=1))
        if out_dir.exists():
            shutil.rmtree(out_dir)
        final.rename(out_dir)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return TrainResult(str(out_dir), len(rows), output.global_step, time.perf_counter() - start,
                       history[-1]["loss"] if history else None)
