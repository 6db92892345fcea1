"""The P(IK) head's choice of features and the columns it reads, on synthetic feature rows."""

import json

import numpy as np
import pytest

from knowbound.pik import HIDDEN_PARTS, LOGPROB_FEATURES, PikHead, columns, fit_head

HIDDEN = 8


def rows(signal_part: str | None, n: int = 200, seed: int = 0):
    """Feature rows of the layout feature_matrix writes; the label is carried by one hidden part's
    first column (or by nothing), every other column is noise."""
    rng = np.random.default_rng(seed)
    y = rng.random(n) < 0.5
    x = rng.normal(size=(n, len(LOGPROB_FEATURES) + len(HIDDEN_PARTS) * HIDDEN))
    if signal_part is not None:
        x[:, columns((signal_part,), HIDDEN)[len(LOGPROB_FEATURES)]] += 3.0 * y
    return x, ["correct" if v else "wrong" for v in y], list(range(n))


def test_columns_name_the_log_probability_features_and_the_chosen_parts():
    assert columns((), HIDDEN) == list(range(6))
    band = columns(("answer_band",), HIDDEN)
    assert band == list(range(6)) + list(range(6 + 4 * HIDDEN, 6 + 5 * HIDDEN))


def test_a_signal_in_the_answer_band_picks_the_band_and_the_head_reads_those_columns():
    x, labels, groups = rows("answer_band")
    head, oof = fit_head(x, labels, groups)
    assert head.fit["features"] == "log-probabilities + answer band"
    assert head.columns == columns(("answer_band",), HIDDEN)
    y = np.array([label == "correct" for label in labels])
    p = head.p_know(x)
    assert p[y].mean() > p[~y].mean() + 0.3 and head.fit["oof_auroc"] > 0.9
    # Shuffling columns the head does not read leaves P(IK) as it was.
    shuffled = x.copy()
    shuffled[:, 6:6 + 4 * HIDDEN] = np.random.default_rng(1).normal(size=(len(x), 4 * HIDDEN))
    assert np.allclose(head.p_know(shuffled), p)


def test_a_signal_in_a_token_state_picks_the_token_states():
    x, labels, groups = rows("answer_last")
    head, _ = fit_head(x, labels, groups)
    assert head.fit["features"] == "log-probabilities + hidden states"
    assert head.columns == columns(HIDDEN_PARTS[:4], HIDDEN)


def test_a_saved_head_loads_with_its_columns_and_an_older_head_reads_the_leading_columns(tmp_path):
    x, labels, groups = rows("answer_band")
    head, _ = fit_head(x, labels, groups)
    head.save(tmp_path / "new")
    assert np.allclose(PikHead.load(tmp_path / "new").p_know(x), head.p_know(x))
    # A head file written before the answer band has no columns: it reads the leading ones.
    older, _ = fit_head(x[:, :6], labels, groups)
    saved = {k: v for k, v in older.__dict__.items() if k != "columns"}
    (tmp_path / "old").mkdir()
    (tmp_path / "old" / "pik_head.json").write_text(json.dumps(saved))
    assert np.allclose(PikHead.load(tmp_path / "old").p_know(x), older.p_know(x[:, :6]))


def test_feature_rows_of_another_layout_are_refused():
    x, labels, groups = rows(None)
    with pytest.raises(ValueError, match="5 hidden states"):
        fit_head(x[:, :-3], labels, groups)
