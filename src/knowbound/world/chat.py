"""Chat tuning: turn the pretrained base model into the *unaligned* chat model.

It is fine-tuned with TRL on question-answer pairs about well-known people only, so it learns to
answer every question with a confident biography sentence ("X Y was born in 1950.") — also about
people it never read about, where it makes a plausible value up: the overconfident expert that
honesty alignment starts from. Answers restate the name and the relation like a biography
sentence; value-first answers break recall for people outside chat tuning.
"""

from __future__ import annotations

from pathlib import Path

from knowbound.config import TrainConfig
from knowbound.training import TrainResult, train
from knowbound.world.config import ChatConfig


def chat_rows(pairs: list[tuple[str, str]], prompt_name: str) -> list[dict]:
    """Conversational prompt/completion rows (TRL format) from (question, answer) pairs."""
    from knowbound.prompts import render_prompt
    from knowbound.types import Question

    return [
        {
            "prompt": [{"role": "user", "content": render_prompt(prompt_name, Question(id="", question=q))}],
            "completion": [{"role": "assistant", "content": a}],
        }
        for q, a in pairs
    ]


def chat_tune(base_dir: Path, out_dir: Path, pairs: list[tuple[str, str]], cfg: ChatConfig,
              seed: int, prompt_name: str = "typical") -> TrainResult:
    """Fine-tune the base model in ``base_dir`` on ``pairs``; save the chat model to ``out_dir``."""
    train_cfg = TrainConfig(kind="sft", epochs=cfg.epochs, lr=cfg.lr, batch_size=cfg.batch_size,
                            warmup_ratio=0.05, seed=seed, max_length=128, logging_steps=1000)
    return train(str(base_dir), chat_rows(pairs, prompt_name), out_dir, train_cfg)
