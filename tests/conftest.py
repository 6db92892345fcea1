"""Shared fixtures: a tiny random Llama saved to disk (loaded like a user's model), its backend,
and small question sets."""

from __future__ import annotations

import pytest

from knowbound.types import Question


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory):
    """A tiny Llama (hidden 48, 2 layers) + word tokenizer with a chat template, on disk."""
    from knowbound.testing.tiny import make_tiny_model

    return make_tiny_model(tmp_path_factory.mktemp("tiny-model"), seed=0)


@pytest.fixture(scope="session")
def hf_backend(tiny_model_dir):
    """The hf backend on the tiny model, loaded through ``from_pretrained``."""
    from knowbound.backends import get_backend

    # One thread: the CI and dev machines have 2 shared cores, where tiny ops run several times
    # faster single-threaded. (The CLI runs in the SIGKILL test use --threads 1 to match.)
    return get_backend("hf", model=str(tiny_model_dir), max_batch_size=1024, threads=1)


def make_questions(count: int, prefix: str = "q") -> list[Question]:
    """``count`` open questions with varied lengths (so batches need padding)."""
    subjects = ["Norway", "the river Nile in Cairo", "Hamlet", "the war", "the blue island of the north"]
    return [
        Question(id=f"{prefix}{k}", question=f"What is the capital of {subjects[k % len(subjects)]} {k}?",
                 answers=("Oslo",))
        for k in range(count)
    ]


@pytest.fixture
def questions() -> list[Question]:
    return make_questions(12)


@pytest.fixture(scope="session")
def micro_world(tmp_path_factory):
    """The directory holding the micro knowledge world (built once per session)."""
    from knowbound.world.build import build_world
    from knowbound.world.config import preset

    root = tmp_path_factory.mktemp("worlds")
    build_world(preset("micro"), root, log=lambda _: None)
    return root
