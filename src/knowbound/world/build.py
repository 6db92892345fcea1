"""Build a knowledge world on disk, cached by config hash.

Layout of ``<root>/<preset>-<hash>/``::

    config.json        the resolved WorldConfig
    people.jsonl       every person: name, split, exposure, facts (the ground truth)
    corpus.txt         the pretraining corpus, one biography per line
    chat_pairs.jsonl   the chat-tuning question/answer pairs
    questions/<set>.jsonl   train, test, paraphrase, fictional, popular (knowbound Question rows)
    base/              the pretrained base model + tokenizer (save_pretrained)
    chat/              the unaligned chat model + tokenizer: what the loop aligns
    world.json         written last: timings and the chat model's accuracy by exposure

A finished world (``world.json`` present) is returned at once; an interrupted build resumes at the
first missing part. Same seed -> byte-identical corpus and question files.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from knowbound.cpu import describe as describe_cpu
from knowbound.io import atomic_write_text, write_json, write_jsonl
from knowbound.world.config import WorldConfig
from knowbound.world.generator import generate, lexicon, question_set_names

Log = Callable[[str], None]


def default_root() -> Path:
    """Where worlds are cached: ``$KNOWBOUND_CACHE/worlds`` or ``~/.cache/knowbound/worlds``."""
    base = os.environ.get("KNOWBOUND_CACHE") or Path.home() / ".cache" / "knowbound"
    return Path(base) / "worlds"


@dataclass(frozen=True)
class WorldPaths:
    root: Path

    @property
    def chat_model(self) -> Path:
        return self.root / "chat"

    @property
    def base_model(self) -> Path:
        return self.root / "base"

    def questions(self, name: str) -> Path:
        return self.root / "questions" / f"{name}.jsonl"

    @property
    def info(self) -> Path:
        return self.root / "world.json"

    def load_info(self) -> dict:
        return json.loads(self.info.read_text())


def world_dir(cfg: WorldConfig, root: Path | None = None) -> WorldPaths:
    return WorldPaths((root or default_root()) / f"{cfg.preset}-{cfg.hash()}")


def _extra_texts() -> list[str]:
    """Characters and numbers the model may write beyond the corpus (confidence percentages)."""
    return [" ".join(str(i) for i in range(0, 101)) + " % . , ! ? ' \" : ; ( ) -"]


def write_world_files(cfg: WorldConfig, paths: WorldPaths) -> None:
    """Generate the world and write its text files (deterministic in the seed)."""
    world = generate(cfg)
    paths.root.mkdir(parents=True, exist_ok=True)
    write_json(paths.root / "config.json", cfg.to_dict())
    write_jsonl(paths.root / "people.jsonl", (p.to_dict() for p in world.people))
    atomic_write_text(paths.root / "corpus.txt", "".join(doc + "\n" for doc in world.corpus))
    write_jsonl(paths.root / "chat_pairs.jsonl", ({"question": q, "answer": a} for q, a in world.chat_pairs))
    for name in question_set_names(cfg.people):
        write_jsonl(paths.questions(name), (q.to_dict() for q in world.question_sets[name]))
    atomic_write_text(paths.root / "lexicon.txt", "".join(t + "\n" for t in list(lexicon(world)) + _extra_texts()))


def _pretrain_base(cfg: WorldConfig, paths: WorldPaths, log: Log) -> dict:
    from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

    from knowbound.world.pretrain import build_model, pretrain
    from knowbound.world.tokenizer import train_word_tokenizer

    lexicon_lines = (paths.root / "lexicon.txt").read_text().splitlines()
    tokenizer = train_word_tokenizer(lexicon_lines)
    corpus = (paths.root / "corpus.txt").read_text().splitlines()
    docs = tokenizer(corpus, add_special_tokens=False)["input_ids"]
    model = build_model(cfg.model, tokenizer, cfg.seed)
    n_params = sum(p.numel() for p in model.parameters())
    log(f"pretraining a {n_params / 1e6:.2f}M-parameter model on {len(corpus)} biographies "
        f"({sum(map(len, docs))} tokens) for {cfg.pretrain.epochs} epochs")
    with Progress(TextColumn("pretrain"), BarColumn(), TextColumn("{task.completed}/{task.total} loss {task.fields[loss]}"),
                  TimeRemainingColumn(), transient=True) as bar:
        task = bar.add_task("pretrain", total=None, loss="-")
        stats = pretrain(model, docs, tokenizer.eos_token_id, cfg.pretrain, cfg.seed,
                         on_step=lambda s, t, l: bar.update(task, completed=s, total=t, loss=f"{l:.3f}"))
    tmp = paths.root / ".base.tmp"
    model.save_pretrained(str(tmp))
    tokenizer.save_pretrained(str(tmp))
    tmp.rename(paths.base_model)
    return {"parameters": n_params, "tokens": stats.tokens, "seconds": round(stats.seconds, 1),
            "tokens_per_second": round(stats.tokens_per_second), "final_loss": round(stats.final_loss, 4)}


def build_world(cfg: WorldConfig, root: Path | None = None, log: Log = print,
                evaluate: bool = True) -> WorldPaths:
    """Build (or return the cached) world for ``cfg``; returns its paths."""
    paths = world_dir(cfg, root)
    if paths.info.exists():
        log(f"world {paths.root.name} is cached at {paths.root}")
        return paths
    from knowbound.cpu import summary as cpu_summary

    log(cpu_summary())
    timings: dict[str, float] = {}
    t0 = time.perf_counter()
    if not paths.questions(question_set_names(cfg.people)[-1]).exists() or not (paths.root / "lexicon.txt").exists():
        write_world_files(cfg, paths)
    timings["generate"] = round(time.perf_counter() - t0, 2)

    base_stats = {}
    if not paths.base_model.exists():
        t = time.perf_counter()
        base_stats = _pretrain_base(cfg, paths, log)
        timings["pretrain"] = round(time.perf_counter() - t, 1)

    if not paths.chat_model.exists():
        from knowbound.io import read_jsonl
        from knowbound.world.chat import chat_tune

        t = time.perf_counter()
        pairs = [(r["question"], r["answer"]) for r in read_jsonl(paths.root / "chat_pairs.jsonl")]
        log(f"chat tuning on {len(pairs)} question-answer pairs for {cfg.chat.epochs} epochs")
        chat_tune(paths.base_model, paths.chat_model, pairs, cfg.chat, cfg.seed)
        timings["chat"] = round(time.perf_counter() - t, 1)

    evaluation = {}
    if evaluate:
        from knowbound.world.evaluate import evaluate_chat_model

        t = time.perf_counter()
        evaluation = evaluate_chat_model(paths, log=log)
        timings["evaluate"] = round(time.perf_counter() - t, 1)
    timings["total"] = round(time.perf_counter() - t0, 1)
    write_json(paths.info, {"name": paths.root.name, "preset": cfg.preset, "seed": cfg.seed, "hash": cfg.hash(),
                            "pretrain": base_stats, "timings": timings, "evaluation": evaluation,
                            "cpu": describe_cpu()})
    log(f"world ready at {paths.root} ({timings['total']} s)")
    return paths
