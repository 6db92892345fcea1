"""SFT training through TRL on the tiny model: what a run's log and record say about the loss."""

from __future__ import annotations

import pytest

from knowbound.config import TrainConfig
from knowbound.training import train

ROWS = [{"prompt": [{"role": "user", "content": f"Q: What is the capital of Norway {k}?\nA: "}],
         "completion": [{"role": "assistant", "content": "alpha beta"}]} for k in range(4)]


@pytest.mark.model
def test_a_training_shorter_than_its_logging_interval_still_reports_a_loss(tiny_model_dir, tmp_path):
    # 4 rows, 2 a step: 2 steps, fewer than logging_steps, so no intermediate loss is logged
    short = train(str(tiny_model_dir), ROWS, tmp_path / "short",
                  TrainConfig(epochs=1, batch_size=2, logging_steps=50, precision="fp32"))
    assert short.steps == 2 and short.final_loss is None
    assert isinstance(short.mean_loss, float) and short.mean_loss > 0
    logged = train(str(tiny_model_dir), ROWS, tmp_path / "logged",
                   TrainConfig(epochs=1, batch_size=2, logging_steps=1, precision="fp32"))
    assert logged.steps == 2 and isinstance(logged.final_loss, float) and logged.final_loss > 0
    assert logged.mean_loss == pytest.approx(short.mean_loss, rel=1e-4)  # the same seed, the same steps


def test_a_model_that_cannot_be_loaded_for_training_is_named_with_what_training_needs(tmp_path):
    from knowbound.errors import KnowboundError

    empty = tmp_path / "served-model"  # e.g. a server's model name, with no weights here
    empty.mkdir()
    with pytest.raises(KnowboundError, match=f"(?s)^cannot load '{empty}' to fine-tune it: .*\nMethods that train load"):
        train(str(empty), ROWS, tmp_path / "out", TrainConfig(epochs=1, batch_size=2))
    assert not (tmp_path / "out").exists()
