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


def test_a_saved_head_loads_with_its_columns_and_members(tmp_path):
    x, labels, groups = rows("answer_band")
    head, _ = fit_head(x, labels, groups)
    head.save(tmp_path / "new")
    loaded = PikHead.load(tmp_path / "new")
    assert loaded.columns == head.columns == columns(("answer_band",), HIDDEN)
    assert len(loaded.members) == 5 and np.allclose(loaded.p_know(x), head.p_know(x))


def test_heads_saved_before_cross_fitting_load_as_one_member(tmp_path):
    """A head file with one model's mean/std/weights/bias (and, older still, no columns) reads the
    leading columns with that model alone."""
    rng = np.random.default_rng(3)
    x = rng.normal(size=(20, 6 + 5 * HIDDEN))
    w = rng.normal(size=6)
    saved = {"mean": [0.5] * 6, "std": [2.0] * 6, "weights": w.tolist(), "bias": -0.25, "threshold": 0.5, "fit": {}}
    expected = 1 / (1 + np.exp(-(((x[:, :6] - 0.5) / 2.0) @ w - 0.25)))
    for i, extra in enumerate(({}, {"columns": list(range(6))})):
        (tmp_path / str(i)).mkdir()
        (tmp_path / str(i) / "pik_head.json").write_text(json.dumps({**saved, **extra}))
        head = PikHead.load(tmp_path / str(i))
        assert len(head.members) == 1 and np.allclose(head.p_know(x), expected)


def test_the_head_is_the_mean_of_its_fold_models_whose_scores_made_the_threshold():
    """Cross-fitting: each training row's out-of-fold score is its own fold model's P(IK), and the
    head's P(IK) on any row is the mean of the five fold models."""
    x, labels, groups = rows("answer_band", n=100)
    head, oof = fit_head(x, labels, groups)
    cols = x[:, head.columns]
    per_member = np.stack([1 / (1 + np.exp(-(((cols - np.asarray(m["mean"])) / np.asarray(m["std"]))
                                             @ np.asarray(m["weights"]) + m["bias"]))) for m in head.members])
    assert per_member.shape == (5, 100)
    assert np.allclose(head.p_know(x), per_member.mean(0))
    # Row i sits in fold i % 5 (one group per row): its out-of-fold score is that fold model's.
    assert np.allclose(oof, per_member[np.arange(100) % 5, np.arange(100)])
    # Fold models differ (each leaves out other rows).
    assert not np.allclose(per_member[0], per_member[1])


def test_a_budget_held_at_a_confidence_withholds_fewer_right_answers_out_of_fold():
    x, labels, _ = rows("answer_band", n=300)
    groups = [i // 3 for i in range(len(x))]  # people of three questions each
    x[:, columns(("answer_band",), HIDDEN)[len(LOGPROB_FEATURES)]] += np.random.default_rng(3).normal(
        scale=3.0, size=len(x))  # an overlap, so that the budget binds
    right = np.array([label == "correct" for label in labels])
    plain, oof = fit_head(x, labels, groups, 0.05)
    held, oof_held = fit_head(x, labels, groups, 0.05, budget_confidence=0.9)
    assert np.array_equal(oof, oof_held)  # the same head; only its threshold moves
    withheld = lambda t: int(((oof < t) & right).sum())  # noqa: E731
    assert held.threshold < plain.threshold
    assert withheld(held.threshold) < withheld(plain.threshold) <= 0.05 * len(x)


def test_a_fold_whose_rest_holds_one_class_gets_a_constant_member():
    x = np.random.default_rng(0).normal(size=(6, 6 + 5 * HIDDEN))
    labels = ["correct"] * 5 + ["wrong"]
    head, oof = fit_head(x, labels, ["a", "a", "a", "a", "a", "b"])  # two groups, two folds
    # Fold "a" leaves only the wrong row: a constant member near 0; fold "b" leaves only right rows.
    assert np.allclose(oof[:5], 1e-6) and np.allclose(oof[5], 1 - 1e-6)


def test_feature_rows_of_another_layout_are_refused():
    x, labels, groups = rows(None)
    with pytest.raises(ValueError, match="5 hidden states"):
        fit_head(x[:, :-3], labels, groups)


@pytest.mark.parametrize("text, says", [
    ("{not json", "Expecting property name"),
    ('{"threshold": 0.5, "fit": {}, "members": []}', "members need"),
    ('{"threshold": 0.5, "fit": {}, "members": [{"mean": [0.0]}]}', "members need"),
    ('{"threshold": 0.5, "fit": {}, "columns": null, "members": [], "extra": 1}', "extra"),
])
def test_a_broken_head_file_is_named_in_the_error(tmp_path, text, says):
    from knowbound.errors import KnowboundError

    (tmp_path / "pik_head.json").write_text(text)
    with pytest.raises(KnowboundError, match="pik_head.json: not a P\\(IK\\) head file") as err:
        PikHead.load(tmp_path)
    assert says in str(err.value)


def test_sample_rows_carrying_the_signal_are_chosen_and_the_scores_stay_the_greedy_rows():
    # 40 greedy rows are too few to find a weak signal; 10 samples per question carry it too.
    x, labels, groups = rows("answer_band", n=40, seed=3)
    x[:, columns(("answer_band",), HIDDEN)[len(LOGPROB_FEATURES)]] -= 2.0 * np.array([l == "correct" for l in labels])
    sx, slabels, sgroups = rows("answer_band", n=400, seed=4)
    sgroups = [g // 10 for g in sgroups]  # ten answers to each of the 40 questions
    plain, _ = fit_head(x, labels, groups)
    head, oof = fit_head(x, labels, groups, sample_x=sx, sample_labels=slabels, sample_groups=sgroups)
    assert "samples weighted" in head.fit["features"] and "samples weighted" not in plain.fit["features"]
    assert len(oof) == 40 and head.fit["n"] == 40
    assert head.fit["oof_auroc"] > plain.fit["oof_auroc"] + 0.05
    assert sum("samples weighted" in k for k in head.fit["oof_auroc_by_features"]) == 9


def test_a_question_s_samples_stay_in_its_fold():
    """Samples that copy their question's greedy row (features and label, the labels noise): a
    fold model that trained on them would score that question from memory."""
    rng = np.random.default_rng(5)
    n, hidden = 60, 96  # wide enough to memorise: 102 columns of the answer band for 48 questions
    x = rng.normal(size=(n, len(LOGPROB_FEATURES) + len(HIDDEN_PARTS) * hidden))
    labels = ["correct" if v else "wrong" for v in rng.random(n) < 0.5]
    groups = list(range(n))
    sx, slabels = np.repeat(x, 5, axis=0), [l for l in labels for _ in range(5)]
    own, _ = fit_head(x, labels, groups, sample_x=sx, sample_labels=slabels,
                      sample_groups=[g for g in groups for _ in range(5)])
    leaked, _ = fit_head(x, labels, groups, sample_x=sx, sample_labels=slabels,
                         sample_groups=[f"other{g}" for g in groups for _ in range(5)])  # in every fold's training
    def band_with_samples(head):
        return [v for k, v in head.fit["oof_auroc_by_features"].items() if "band + samples" in k]

    assert max(band_with_samples(own)) < 0.7 and min(band_with_samples(leaked)) > 0.9


def test_sample_rows_of_another_layout_are_refused():
    x, labels, groups = rows("answer_band", n=40)
    with pytest.raises(ValueError, match="sample rows"):
        fit_head(x, labels, groups, sample_x=x[:, :10], sample_labels=labels, sample_groups=groups)


def test_entity_features_compete_as_the_rows_last_two_columns():
    """build.pik_entity: the rows end with the two entity features; every candidate competes with
    and without them, and a label they carry picks them."""
    from knowbound.pik import ENTITY_FEATURES, feature_matrix, feature_names

    x, labels, groups = rows(None)
    y = np.array([label == "correct" for label in labels])
    entity = np.random.default_rng(5).normal(size=(len(x), 2))
    entity[:, 0] += 3.0 * y
    xe = np.hstack([x, entity])
    assert columns((), HIDDEN, entity=True) == list(range(6)) + [xe.shape[1] - 2, xe.shape[1] - 1]
    assert feature_names(HIDDEN, entity=True)[-2:] == list(ENTITY_FEATURES) and len(feature_names(HIDDEN, True)) == xe.shape[1]
    head, _ = fit_head(xe, labels, groups, entity_key="name")
    assert head.fit["features"] == "log-probabilities + entity surprise" and head.entity_key == "name"
    assert head.columns == columns((), HIDDEN, entity=True) and head.fit["oof_auroc"] > 0.9
    assert sum("entity surprise" in k for k in head.fit["oof_auroc_by_features"]) == 6  # 4 + 2 with products
    # Without the key the same rows are refused: their width is not the layout's.
    with pytest.raises(ValueError, match="columns"):
        fit_head(xe, labels, groups)
    # Rows without a signal in the entity features keep the head that ignores them.
    plain, _ = fit_head(np.hstack([*rows("answer_band")[:1], entity[:, ::-1] * 0]), rows("answer_band")[1],
                        groups, entity_key="name")
    # (Its rows still end with the entity columns, but it neither reads them nor asks for them.)
    assert plain.fit["features"] == "log-probabilities + answer band" and plain.entity_key is None
    # feature_matrix appends each answer's pair after its states.
    states = [{"token_logprobs": [-1.0, -2.0], "hidden": np.ones((5, 3))}] * 2
    m = feature_matrix(states, [(-4.0, -0.5), (-6.0, -1.5)])
    assert m.shape == (2, 6 + 15 + 2) and m[1, -2:].tolist() == [-6.0, -1.5] and m[0, 0] == -3.0
    with pytest.raises(ValueError, match="1 entity feature pairs for 2 answers"):
        feature_matrix(states, [(-4.0, -0.5)])


def test_a_saved_head_keeps_its_entity_key(tmp_path):
    x, labels, groups = rows(None)
    entity = np.random.default_rng(2).normal(size=(len(x), 2))
    entity[:, 1] += 3.0 * np.array([label == "correct" for label in labels])
    xe = np.hstack([x, entity])
    head, _ = fit_head(xe, labels, groups, entity_key="entity")
    head.save(tmp_path)
    assert PikHead.load(tmp_path).entity_key == "entity"
    assert np.allclose(PikHead.load(tmp_path).p_know(xe), head.p_know(xe))


def test_an_interaction_picks_the_pairwise_products_and_they_survive_a_save(tmp_path):
    """A label carried by the product of two log-probability features (an interaction no linear
    head can read) picks the candidate with the pairwise products, which the head then applies
    itself at inference."""
    rng = np.random.default_rng(7)
    x = rng.normal(size=(400, len(LOGPROB_FEATURES) + len(HIDDEN_PARTS) * HIDDEN))
    y = x[:, 0] * x[:, 2] > 0
    labels = ["correct" if v else "wrong" for v in y]
    head, oof = fit_head(x, labels, list(range(400)))
    assert head.fit["features"] == "log-probabilities with pairwise products" and head.columns == list(range(6))
    assert head.pairs is not None and len(head.pairs["mean"]) == 6
    assert len(head.members[0]["weights"]) == 6 + 21 and head.fit["oof_auroc"] > 0.9
    linear = head.fit["oof_auroc_by_features"]["log-probabilities, l2 0.01"]
    assert linear < 0.65
    p = head.p_know(x)
    assert p[y].mean() > p[~y].mean() + 0.3
    head.save(tmp_path)
    loaded = PikHead.load(tmp_path)
    assert loaded.pairs == head.pairs and np.allclose(loaded.p_know(x), p)


def test_a_head_file_with_broken_pairs_is_refused_on_load(tmp_path):
    from knowbound.errors import KnowboundError

    x, labels, groups = rows("answer_band")
    head, _ = fit_head(x, labels, groups)
    data = {**head.__dict__, "pairs": {"mean": [0.0], "std": [1.0]}}
    (tmp_path / "pik_head.json").write_text(json.dumps(data))
    with pytest.raises(KnowboundError, match="pik_head.json: not a P\\(IK\\) head file .*pairs need a mean and a std"):
        PikHead.load(tmp_path)


class _ScriptedBackend:
    """answer_logprobs_after from a table keyed by (prompt, answer head, answer tail)."""

    def __init__(self, table: dict[tuple[str, str, str], float]):
        self.table, self.calls = table, []

    def answer_logprobs_after(self, prompts, heads, tails):
        self.calls.append(list(zip(prompts, heads, tails)))
        return [self.table[key] for key in zip(prompts, heads, tails)]


def test_the_contrast_is_the_answer_under_its_own_name_against_swapped_tails():
    """entity_contrast: log p(what the answer says after the name | own name) minus the log mean
    probability of the same words after the same first word with other tails, drawn per entity
    from the pool (never its own tail), the same draws for the same entity; the swap reaches the
    question and the answer up to the cut, whole words only; 0 for an entity of one word."""
    from knowbound.pik import entity_contrast, swap_tails

    pool = swap_tails(["Ann Lee", "Bo Kim", "Cy Orr", "Ann Orr", "Solo"])
    assert pool == ["Kim", "Lee", "Orr"]
    q = "When was {} born? Not {}s."
    table = {(q.format("Ann Lee", "Ann Lees"), "Ann Lee", " was born in 1950"): -1.0,
             (q.format("Ann Kim", "Ann Lees"), "Ann Kim", " was born in 1950"): -4.0,
             (q.format("Ann Orr", "Ann Lees"), "Ann Orr", " was born in 1950"): -6.0,
             ("When was Solo born?", "Solo", " was born"): -2.0,
             # An answer that does not name the entity: all of it, after each question.
             (q.format("Ann Lee", "Ann Lees"), "", "In 1950."): -0.5,
             (q.format("Ann Kim", "Ann Lees"), "", "In 1950."): -0.5,
             (q.format("Ann Orr", "Ann Lees"), "", "In 1950."): -2.5}
    backend = _ScriptedBackend(table)
    got = entity_contrast(backend, [q.format("Ann Lee", "Ann Lees"), "When was Solo born?",
                                    q.format("Ann Lee", "Ann Lees")],
                          ["Ann Lee was born in 1950", "Solo was born", "In 1950."], ["Ann Lee", "Solo", "Ann Lee"],
                          pool, k=2, seed=0)
    assert got[0] == pytest.approx(-1.0 - np.log(np.mean(np.exp([-4.0, -6.0])))) and got[1] == 0.0
    assert got[2] == pytest.approx(-0.5 - np.log(np.mean(np.exp([-0.5, -2.5]))))
    swapped = {h for _, h, _ in backend.calls[1] if h}
    assert swapped == {"Ann Kim", "Ann Orr"}  # two of the three tails, not its own
    # k = 1: one draw, the same in every call for this entity and seed.
    one = [entity_contrast(_ScriptedBackend(table), [q.format("Ann Lee", "Ann Lees")], ["Ann Lee was born in 1950"],
                           ["Ann Lee"], pool, k=1, seed=3)[0] for _ in range(2)]
    assert one[0] == one[1] and one[0] in (pytest.approx(3.0), pytest.approx(5.0))
    # An empty pool (names of one word only) gives zeros, not an error.
    assert entity_contrast(_ScriptedBackend(table), ["When was Solo born?"], ["Solo was born"], ["Solo"],
                           swap_tails(["Solo"]), k=2).tolist() == [0.0]


def test_a_head_with_the_contrast_records_its_pool_and_draws(tmp_path):
    x, labels, groups = rows(None)
    y = np.array([label == "correct" for label in labels])
    block = np.random.default_rng(4).normal(size=(len(x), 3))
    block[:, 2] += 3.0 * y  # the contrast carries the label
    xe = np.hstack([x, block])
    from knowbound.pik import CONTRAST_FEATURE, feature_names

    names = feature_names(HIDDEN, entity=True, contrast=True)
    assert len(names) == xe.shape[1] and names[-1] == CONTRAST_FEATURE
    head, _ = fit_head(xe, labels, groups, entity_key="name", swap=(["Kim", "Lee"], 6, 1))
    assert head.fit["features"].startswith("log-probabilities + entity surprise and contrast")
    assert head.columns[-3:] == [xe.shape[1] - 3, xe.shape[1] - 2, xe.shape[1] - 1]
    assert (head.entity_key, head.swap_tails, head.swaps, head.swap_seed) == ("name", ["Kim", "Lee"], 6, 1)
    head.save(tmp_path)
    loaded = PikHead.load(tmp_path)
    assert (loaded.swap_tails, loaded.swaps, loaded.swap_seed) == (["Kim", "Lee"], 6, 1)
    assert np.allclose(loaded.p_know(xe), head.p_know(xe))
