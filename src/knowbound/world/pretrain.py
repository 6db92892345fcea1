"""Pretrain the world's base model from scratch on its corpus.

A plain PyTorch loop in the style of nanoGPT: the corpus is re-packed into fixed-length
sequences every epoch (documents shuffled, separated by the eos token), AdamW with warmup and a
cosine schedule, bf16 autocast. The model is an ordinary ``LlamaForCausalLM`` built from a config
and saved with ``save_pretrained``.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Callable, Sequence

from knowbound.world.config import ModelConfig, PretrainConfig


@dataclass(frozen=True)
class PretrainStats:
    steps: int
    tokens: int
    seconds: float
    final_loss: float

    @property
    def tokens_per_second(self) -> float:
        return self.tokens / max(self.seconds, 1e-9)


def build_model(cfg: ModelConfig, tokenizer, seed: int):
    """A randomly initialised ``LlamaForCausalLM`` sized by ``cfg`` (seeded, no global RNG left changed)."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=cfg.hidden_size,
        intermediate_size=cfg.intermediate_size,
        num_hidden_layers=cfg.num_hidden_layers,
        num_attention_heads=cfg.num_attention_heads,
        num_key_value_heads=cfg.num_attention_heads,
        max_position_embeddings=cfg.max_position_embeddings,
        tie_word_embeddings=cfg.tie_word_embeddings,
        pad_token_id=tokenizer.pad_token_id,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
    )
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = LlamaForCausalLM(config)
    return model


def pack(docs: Sequence[Sequence[int]], order: Sequence[int], eos_id: int, seq_len: int):
    """Concatenate documents in ``order`` with eos between them and cut into rows of ``seq_len``."""
    import torch

    flat: list[int] = []
    for i in order:
        flat.extend(docs[i])
        flat.append(eos_id)
    n = len(flat) // seq_len
    return torch.tensor(flat[: n * seq_len], dtype=torch.long).view(n, seq_len)


def lr_at(step: int, total: int, cfg: PretrainConfig) -> float:
    """Linear warmup, then cosine decay to ``min_lr_ratio * lr``."""
    if step < cfg.warmup_steps:
        return cfg.lr * (step + 1) / cfg.warmup_steps
    progress = (step - cfg.warmup_steps) / max(1, total - cfg.warmup_steps)
    ratio = cfg.min_lr_ratio + (1 - cfg.min_lr_ratio) * 0.5 * (1 + math.cos(math.pi * progress))
    return cfg.lr * ratio


def pretrain(model, docs: Sequence[Sequence[int]], eos_id: int, cfg: PretrainConfig, seed: int,
             on_step: Callable[[int, int, float], None] | None = None) -> PretrainStats:
    """Train ``model`` on tokenised documents for ``cfg.epochs``; ``on_step(step, total, loss)``."""
    import torch

    gen = torch.Generator().manual_seed(seed)
    n_tokens = sum(len(d) + 1 for d in docs)
    rows_per_epoch = n_tokens // cfg.seq_len
    steps_per_epoch = math.ceil(rows_per_epoch / cfg.batch_size)
    total = steps_per_epoch * cfg.epochs

    decay = [p for p in model.parameters() if p.dim() >= 2]
    no_decay = [p for p in model.parameters() if p.dim() < 2]
    opt = torch.optim.AdamW(
        [{"params": decay, "weight_decay": cfg.weight_decay}, {"params": no_decay, "weight_decay": 0.0}],
        lr=cfg.lr, betas=(0.9, 0.95),
    )
    model.train()
    device_type = next(model.parameters()).device.type
    step, tokens, loss_value = 0, 0, float("nan")
    start = time.perf_counter()
    for _ in range(cfg.epochs):
        order = torch.randperm(len(docs), generator=gen).tolist()
        data = pack(docs, order, eos_id, cfg.seq_len)
        rows = torch.randperm(len(data), generator=gen)
        for b in range(0, len(rows), cfg.batch_size):
            batch = data[rows[b : b + cfg.batch_size]].to(model.device)
            for group in opt.param_groups:
                group["lr"] = lr_at(step, total, cfg)
            with torch.autocast(device_type, dtype=torch.bfloat16, enabled=cfg.bf16):
                loss = model(input_ids=batch, labels=batch).loss
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
            opt.zero_grad(set_to_none=True)
            step += 1
            tokens += batch.numel()
            loss_value = loss.item()
            if on_step is not None:
                on_step(step, total, loss_value)
    model.eval()
    return PretrainStats(step, tokens, time.perf_counter() - start, loss_value)
