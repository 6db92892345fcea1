"""Tiny randomly initialised Llama models with a locally trained tokenizer, for tests and benchmarks.

The model and tokenizer are written with ``save_pretrained`` so that code under test loads them
through the same ``from_pretrained`` path as a user's model. Weights come from a private
``torch.Generator`` seeded with ``seed``, so the same call gives the same model on every machine
and never touches global RNG state.
"""

from __future__ import annotations

from pathlib import Path
from typing import Iterable

from knowbound.prompts import HONEST_PROMPT

# Texts that make the default vocabulary: the words of the paper's prompts, the refusal sentence
# and some answer-like words, so that prompts tokenize without <unk> and answers look like words.
DEFAULT_TEXTS: tuple[str, ...] = (
    HONEST_PROMPT.split("\nQ:")[0],  # the instruction and the refusal sentence
    "Q: A: What is the capital of Norway? Oslo. Who wrote Hamlet? William Shakespeare.",
    "Which river flows through Cairo? The Nile. When did the war end? In 1945.",
    "alpha beta gamma delta epsilon zeta eta theta iota kappa lambda mu nu xi omicron pi rho "
    "sigma tau upsilon phi chi psi omega red green blue yellow north south east west one two three "
    "four five six seven eight nine ten city river mountain king queen painter poet island year",
)


def make_tiny_model(
    out_dir: str | Path,
    texts: Iterable[str] = DEFAULT_TEXTS,
    seed: int = 0,
    *,
    hidden_size: int = 48,
    num_layers: int = 2,
    num_heads: int = 4,
    intermediate_size: int | None = None,
    max_positions: int = 512,
    init_std: float = 0.5,
    vocab_padding: int = 0,
) -> Path:
    """Write a tiny random ``LlamaForCausalLM`` and its word tokenizer to ``out_dir``; return it.

    ``init_std`` is larger than a trained model's so that the random model's next-token
    distributions are peaked enough to give varied, reproducible text. ``vocab_padding`` adds
    unused filler words, to reach a realistic vocabulary size in benchmarks.
    """
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    from knowbound.world.tokenizer import train_word_tokenizer

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    texts = list(texts)
    if vocab_padding:
        texts.append(" ".join(f"w{k}" for k in range(vocab_padding)))
    tokenizer = train_word_tokenizer(texts)
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=hidden_size,
        intermediate_size=intermediate_size or 2 * hidden_size,
        num_hidden_layers=num_layers,
        num_attention_heads=num_heads,
        num_key_value_heads=num_heads,
        max_position_embeddings=max_positions,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        tie_word_embeddings=False,
    )
    model = LlamaForCausalLM(config)
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, param in sorted(model.named_parameters()):
            if name.endswith("norm.weight"):
                param.fill_(1.0)
            else:
                # Scale by fan-in so activations stay O(1) whatever the width.
                fan_in = param.shape[-1] if param.dim() > 1 else 1
                std = init_std if "embed_tokens" in name else init_std / fan_in**0.5 * 2
                param.copy_(torch.randn(param.shape, generator=generator) * std)
    model.generation_config.eos_token_id = tokenizer.eos_token_id
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    model.save_pretrained(out_dir)
    tokenizer.save_pretrained(out_dir)
    return out_dir
