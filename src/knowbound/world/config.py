"""Typed configuration of the knowledge world, with the `tiny` and `small` presets."""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field, replace
from typing import Any

from knowbound.errors import KnowboundError

# Share of people per number of biographies in the corpus: (low, high) inclusive -> weight.
# A fifth never appear (truly unknown), a quarter appear once or twice (weakly known), the rest
# often. The feasibility study behind this world used the same shape.
DEFAULT_EXPOSURE = ((0, 0, 0.20), (1, 1, 0.15), (2, 2, 0.10), (3, 7, 0.20), (8, 14, 0.35))


@dataclass(frozen=True)
class PeopleConfig:
    """How many people, how they split, and how often each appears in the corpus."""

    n_train: int = 560  # probing and honesty data
    n_test: int = 260  # in-domain evaluation (and `paraphrase`)
    n_chat: int = 120  # chat tuning only; always well known
    n_popular: int = 60  # `popular`: every fact seen many times
    n_fictional: int = 150  # `fictional`: appear nowhere
    exposure: tuple[tuple[int, int, float], ...] = DEFAULT_EXPOSURE
    chat_exposure: tuple[int, int] = (8, 14)
    popular_exposure: tuple[int, int] = (10, 14)
    train_questions_per_person: int | None = 2  # None: every fact (probing cost grows with it)
    fictional_questions_per_person: int = 2
    paraphrase_questions_per_person: int = 2
    # Names. None: every name word belongs to one person (world v1), so a never-seen person's
    # name is made of tokens the model never read. (first, last): every name is drawn from shared
    # pools of that many first names and surnames, and every pool word occurs in the corpus, so a
    # never-seen person is a new combination of seen words, as in real text (world v2).
    name_pools: tuple[int, int] | None = None
    # Facts. A biography states each of the person's facts with this probability (1.0: every
    # biography states all five, so a fact's exposure is its person's). Below 1, each fact of a
    # person in the corpus is stated at least once, unless it is hidden.
    fact_mention: float = 1.0
    # Share of a corpus person's facts that no biography states: a well-known person can have a
    # fact the model never read (the `unstated` set asks those of people seen 8+ times).
    hidden_fact: float = 0.0
    unstated_min_exposure: int = 8


@dataclass(frozen=True)
class ModelConfig:
    """A small Llama-style decoder, built from a config (no weights downloaded)."""

    hidden_size: int = 128
    intermediate_size: int = 512
    num_hidden_layers: int = 4
    num_attention_heads: int = 4
    max_position_embeddings: int = 160
    tie_word_embeddings: bool = True


@dataclass(frozen=True)
class PretrainConfig:
    """Pretraining from scratch on the corpus (packed sequences, AdamW, cosine schedule)."""

    seq_len: int = 128
    batch_size: int = 32
    epochs: int = 8
    lr: float = 4e-3
    min_lr_ratio: float = 0.1
    warmup_steps: int = 60
    weight_decay: float = 0.1
    bf16: bool = False  # autocast to bf16; faster only where the CPU or GPU has native bf16


@dataclass(frozen=True)
class ChatConfig:
    """Chat tuning with TRL: question -> biography-style answer, loss on the answer only."""

    epochs: int = 6
    lr: float = 5e-4
    batch_size: int = 32
    templates_per_fact: int = 2


@dataclass(frozen=True)
class WorldConfig:
    """Everything that determines a world; its hash names the cache directory."""

    preset: str = "tiny"
    seed: int = 0
    # How often each fixed sentence of the toolkit (prompts, refusal, confidence and R-Tuning
    # phrases) appears in the pretraining corpus as a line of its own. A real base model knows
    # these sentences; fine-tuning should teach when to say them, not how to spell them.
    language_repeats: int = 10
    people: PeopleConfig = field(default_factory=PeopleConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    pretrain: PretrainConfig = field(default_factory=PretrainConfig)
    chat: ChatConfig = field(default_factory=ChatConfig)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def hash(self) -> str:
        """A short, stable hash of the config, the toolkit sentences it puts in the corpus, and the
        CPU kernels it is trained with (``knowbound.cpu.world_tag``)."""
        from knowbound.cpu import world_tag
        from knowbound.world.generator import language_lines

        parts: list = [self.to_dict(), language_lines()]
        if world_tag():
            parts.append(world_tag())
        blob = json.dumps(parts, sort_keys=True).encode()
        return hashlib.sha256(blob).hexdigest()[:12]


def _small() -> WorldConfig:
    return WorldConfig(
        preset="small",
        people=PeopleConfig(n_train=1200, n_test=500, n_chat=200, n_popular=100, n_fictional=300),
        model=ModelConfig(hidden_size=192, intermediate_size=768, num_hidden_layers=6, num_attention_heads=6),
        pretrain=PretrainConfig(epochs=24),
    )


def _v2() -> WorldConfig:
    # World v2 (the demo's): names from shared pools, a random subset of facts per biography and
    # some facts never stated, so that what the model knows is a property of the fact. Binding
    # facts to a combination of shared name words takes a wider model and more epochs than v1's
    # one-token-per-name lookup (measured: the 1.4M-parameter model after 8 epochs answers at
    # chance; this one knows 84% of the facts it read once). See BENCHMARKS.md.
    return WorldConfig(
        preset="v2",
        people=PeopleConfig(name_pools=(100, 100), fact_mention=0.6, hidden_fact=0.2),
        model=ModelConfig(hidden_size=192, intermediate_size=768, num_attention_heads=6),
        pretrain=PretrainConfig(epochs=16),
    )


def _v2_wide() -> WorldConfig:
    # World v2's people, corpus and questions (the same files for the same seed) with a wider and
    # deeper model: 6.5M parameters (hidden 256, 6 layers) against v2's 2.5M, pretrained at half
    # the learning rate (at v2's 4e-3 it learned fewer facts still). A control, not the demo's: it
    # asks whether a fine-tuned refusal fails on v2 for want of capacity. It does not: its hidden
    # states separate right from wrong answers no better than v2's, and it reads fewer facts in
    # the same 16 epochs (BENCHMARKS.md, "More capacity: world v2-wide"). About twice v2's build time.
    base = _v2()
    return replace(base, preset="v2-wide",
                   model=ModelConfig(hidden_size=256, intermediate_size=1024, num_hidden_layers=6,
                                     num_attention_heads=8),
                   pretrain=replace(base.pretrain, lr=2e-3))


def _micro() -> WorldConfig:
    # For tests: builds in seconds and learns just enough to answer and to be taught to refuse.
    return WorldConfig(
        preset="micro",
        people=PeopleConfig(n_train=40, n_test=20, n_chat=12, n_popular=6, n_fictional=10),
        model=ModelConfig(hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=2),
        pretrain=PretrainConfig(epochs=12, batch_size=16, warmup_steps=5, lr=5e-3),
        chat=ChatConfig(epochs=8, lr=2e-3, batch_size=16, templates_per_fact=2),
    )


PRESETS = {"v2": _v2, "v2-wide": _v2_wide, "tiny": WorldConfig, "small": _small, "micro": _micro}


def preset(name: str, seed: int = 0) -> WorldConfig:
    """The named preset with the given seed."""
    try:
        cfg = PRESETS[name]()
    except KeyError:
        raise KnowboundError(f"unknown world preset '{name}' (known: {', '.join(PRESETS)})") from None
    return replace(cfg, seed=seed)
