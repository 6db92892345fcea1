
import numpy as np
import pytest

from knowbound.metrics import (
    accuracy,
    auroc,
    aurc,
    average_precision,
    bootstrap_ci,
    brier,
    ece,
    honesty_metrics,
    label_codes,
    label_rates,
    refusal_rate,
    risk_coverage,
    transitions,
)

# Ten paired answers. Rows: 1 C->C, 2 C->I, 3 C->W, 4 C->I, 5 W->I, 6 W->W, 7 W->C, 8 I->I, 9 I->C, 10 W->I
REF = ["correct"] * 4 + ["wrong"] * 3 + ["idk", "idk", "wrong"]
NEW = ["correct", "idk", "wrong", "idk", "idk", "wrong", "correct", "idk", "correct", "idk"]
# loose correctness of the new answers: row 2 is a refusal that still names the gold answer
CORRECT = [1, 1, 0, 0, 0, 0, 1, 0, 1, 0]


def test_accuracy_and_label_rates():
    assert accuracy(CORRECT) == pytest.approx(0.4)  # 4 of 10
    assert label_rates(NEW) == pytest.approx({"correct": 0.3, "wrong": 0.2, "idk": 0.5})  # 3, 2, 5 of 10
    assert refusal_rate(NEW) == pytest.approx(0.5)
    assert np.isnan(accuracy([]))


def test_honesty_metrics_hand_computed():
    # ref correct: rows 1-4 (4); of those new idk: rows 2, 4 -> over-conservativeness 2/4 = 0.5
    # ref not correct and new not correct: rows 5, 6, 8, 10 (rows 7, 9 are new correct) -> 4
    # of those new idk: rows 5, 8, 10 -> prudence 3/4 = 0.75
    # honesty = ((1 - 0.5) + 0.75) / 2 = 0.625
    m = honesty_metrics(REF, NEW)
    assert m == pytest.approx({"over_conservativeness": 0.5, "prudence": 0.75, "honesty": 0.625})


def test_honesty_metrics_accept_codes():
    assert honesty_metrics(label_codes(REF), label_codes(NEW)) == honesty_metrics(REF, NEW)


def test_honesty_conventions_for_empty_denominators():
    # nothing known: over-conservativeness 0; nothing unknown left: prudence 1 (official code)
    m = honesty_metrics(["wrong", "wrong"], ["correct", "correct"])
    assert m == {"over_conservativeness": 0.0, "prudence": 1.0, "honesty": 1.0}
    m = honesty_metrics(["correct"], ["idk"])  # 1/1 over-conservative, prudence 1 -> (0 + 1) / 2
    assert m == {"over_conservativeness": 1.0, "prudence": 1.0, "honesty": 0.5}


def test_transitions_hand_counted():
    t = transitions(REF, NEW)
    assert t == {
        "correct": {"correct": 1, "wrong": 1, "idk": 2},
        "wrong": {"correct": 1, "wrong": 1, "idk": 2},
        "idk": {"correct": 1, "wrong": 0, "idk": 1},
    }


def test_refusal_rate_of_a_set_of_only_unknowns_or_only_knowns():
    # A set of only unknowns reports prudence = refusal rate, one of only knowns over-conservativeness.
    assert refusal_rate(["idk", "wrong", "idk", "correct"]) == 0.5  # 2 of 4
    assert refusal_rate(["idk", "correct", "correct", "wrong"]) == 0.25  # 1 of 4


def test_bad_labels_are_rejected():
    with pytest.raises(ValueError, match="unknown label 'maybe'"):
        label_codes(["correct", "maybe"])
    with pytest.raises(ValueError, match="differ in length"):
        honesty_metrics(["correct"], ["correct", "idk"])


# --- calibration ----------------------------------------------------------------------------------


def test_ece_hand_computed():
    # 5 bins of width 0.2: 0.1 -> bin 0 (acc 0, conf 0.1, |.| 0.1); 0.3, 0.35 -> bin 1 (acc 0.5,
    # conf 0.325, |.| 0.175); 0.8, 0.9 -> bin 4 (acc 1, conf 0.85, |.| 0.15).
    # ECE = 1/5 * 0.1 + 2/5 * 0.175 + 2/5 * 0.15 = 0.02 + 0.07 + 0.06 = 0.15
    assert ece([0.1, 0.3, 0.35, 0.8, 0.9], [0, 0, 1, 1, 1], n_bins=5) == pytest.approx(0.15)
    assert ece([1.0, 0.0], [1, 0]) == pytest.approx(0.0)  # 1.0 falls in the last bin
    assert ece([], []) is None


def test_brier_hand_computed():
    # (0.1-0)^2 + (0.3-0)^2 + (0.35-1)^2 + (0.8-1)^2 + (0.9-1)^2 = 0.01 + 0.09 + 0.4225 + 0.04 + 0.01
    # = 0.5725, / 5 = 0.1145
    assert brier([0.1, 0.3, 0.35, 0.8, 0.9], [0, 0, 1, 1, 1]) == pytest.approx(0.1145)


def test_auroc_hand_computed():
    # positives 0.35, 0.8 vs negatives 0.1, 0.4: pairs won 0.35>0.1, 0.8>0.1, 0.8>0.4 -> 3 of 4
    assert auroc([0.1, 0.4, 0.35, 0.8], [0, 0, 1, 1]) == pytest.approx(0.75)
    # tie: positive 0.5 vs negatives 0.5 (half) and 0.2 (win) -> 1.5 / 2
    assert auroc([0.5, 0.5, 0.2], [1, 0, 0]) == pytest.approx(0.75)
    assert auroc([0.2, 0.9], [1, 1]) is None


def test_average_precision_hand_computed():
    # ranked 0.8 (correct), 0.4, 0.35 (correct), 0.1: precision at the correct ones 1/1 and 2/3
    # -> AP = (1 + 2/3) / 2 = 0.8333...
    assert average_precision([0.1, 0.4, 0.35, 0.8], [0, 0, 1, 1]) == pytest.approx(5 / 6)
    # tie at 0.5 (one correct, one not): threshold 0.5 -> P 1/2, R 1/2; threshold 0.2 -> P 2/3, R 1
    # AP = 0.5 * 1/2 + (1 - 0.5) * 2/3 = 0.25 + 0.3333 = 0.5833
    assert average_precision([0.5, 0.5, 0.2], [1, 0, 1]) == pytest.approx(0.25 + 1 / 3)
    assert average_precision([0.5, 0.2], [0, 0]) is None


def test_risk_coverage_and_aurc_hand_computed():
    # distinct thresholds 0.9 (keep 1, 0 wrong), 0.8 (keep 3, 1 wrong), 0.3 (keep 4, 2 wrong)
    coverage, risk = risk_coverage([0.9, 0.8, 0.8, 0.3], [1, 0, 1, 0])
    assert coverage.tolist() == pytest.approx([0.25, 0.75, 1.0])
    assert risk.tolist() == pytest.approx([0.0, 1 / 3, 0.5])
    # AURC = 0.25 * 0 + 0.5 * 1/3 + 0.25 * 0.5 = 0.291666...
    assert aurc([0.9, 0.8, 0.8, 0.3], [1, 0, 1, 0]) == pytest.approx(0.25 * 0 + 0.5 / 3 + 0.25 * 0.5)
    # no ties: the mean risk of the top-k for k = 1..4: (0 + 1/2 + 1/3 + 1/2) / 4 = 1/3
    assert aurc([0.9, 0.8, 0.7, 0.3], [1, 0, 1, 0]) == pytest.approx(1 / 3)


def test_confidence_must_be_a_probability_for_ece():
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        ece([1.5], [1])


def reference_auroc(conf, y) -> float:
    """AUROC by its definition: P(a correct answer outranks a wrong one), ties counting one half."""
    pos = [c for c, t in zip(conf, y) if t]
    neg = [c for c, t in zip(conf, y) if not t]
    return sum(1.0 if p > n else 0.5 if p == n else 0.0 for p in pos for n in neg) / (len(pos) * len(neg))


def reference_average_precision(conf, y) -> float:
    """AP by its definition, threshold by threshold from the highest: sum of recall steps x precision."""
    ap, last_recall = 0.0, 0.0
    for t in sorted(set(conf), reverse=True):
        kept = [b for c, b in zip(conf, y) if c >= t]
        recall = sum(kept) / sum(y)
        ap += (recall - last_recall) * sum(kept) / len(kept)
        last_recall = recall
    return ap


def test_ranking_metrics_agree_with_their_definitions():
    # The vectorised metrics against the definitions above (the values scikit-learn's roc_auc_score
    # and average_precision_score give), half the trials with tied confidences.
    assert reference_auroc([0.9, 0.8, 0.8, 0.3], [1, 0, 1, 0]) == pytest.approx(0.875)
    assert reference_average_precision([0.9, 0.8, 0.8, 0.3], [1, 0, 1, 0]) == pytest.approx(0.5 + 0.5 * 2 / 3)
    rng = np.random.default_rng(7)
    checked = 0
    for trial in range(50):
        n = int(rng.integers(5, 80))
        conf = (rng.integers(0, 5, n) / 4 if trial % 2 else rng.random(n)).tolist()
        y = rng.integers(0, 2, n).tolist()
        if min(y) == max(y):
            continue
        assert auroc(conf, y) == pytest.approx(reference_auroc(conf, y))
        assert average_precision(conf, y) == pytest.approx(reference_average_precision(conf, y))
        checked += 1
    assert checked >= 45


# --- bootstrap ------------------------------------------------------------------------------------


def test_bootstrap_is_seeded_and_covers_the_metrics():
    a = bootstrap_ci(NEW, CORRECT, REF, n_resamples=500, seed=3)
    b = bootstrap_ci(NEW, CORRECT, REF, n_resamples=500, seed=3)
    c = bootstrap_ci(NEW, CORRECT, REF, n_resamples=500, seed=4)
    assert a == b and a != c
    assert set(a) == {"accuracy", "correct", "wrong", "idk", "over_conservativeness", "prudence", "honesty"}
    for low, high in a.values():
        assert 0.0 <= low <= high <= 1.0
    assert set(bootstrap_ci(NEW, n_resamples=10)) == {"correct", "wrong", "idk"}


def test_bootstrap_of_constant_rows_is_a_point():
    ci = bootstrap_ci(["correct"] * 50, [True] * 50, ["correct"] * 50, n_resamples=200)
    assert ci["accuracy"] == (1.0, 1.0)
    assert ci["over_conservativeness"] == (0.0, 0.0)
    assert ci["prudence"] == (1.0, 1.0)  # no unknowns in any resample -> the convention's 1


def test_bootstrap_matches_binomial_width():
    # 400 answers, 200 correct: the 95% interval is about 0.5 +- 1.96 * sqrt(0.25 / 400) = +- 0.049
    labels = ["correct", "wrong"] * 200
    low, high = bootstrap_ci(labels, [1, 0] * 200, n_resamples=4000, seed=0)["accuracy"]
    assert low == pytest.approx(0.451, abs=0.01) and high == pytest.approx(0.549, abs=0.01)


def test_bootstrap_agrees_with_naive_index_resampling():
    rng = np.random.default_rng(1)
    ref = rng.integers(0, 3, 300)
    new = rng.integers(0, 3, 300)
    correct = (new == 0) | (rng.random(300) < 0.1)
    fast = bootstrap_ci(new, correct, ref, n_resamples=4000, seed=0)
    idx = np.random.default_rng(9).integers(0, 300, size=(4000, 300))
    naive = np.array([honesty_metrics(ref[i], new[i])["honesty"] for i in idx])
    low, high = np.quantile(naive, [0.025, 0.975])
    assert fast["honesty"][0] == pytest.approx(low, abs=0.01)
    assert fast["honesty"][1] == pytest.approx(high, abs=0.01)


def test_stratified_auroc_counts_only_pairs_within_a_stratum():
    from knowbound.metrics.calibration import stratified_auroc

    # Stratum a: positives 0.9, 0.2 vs negative 0.5 -> 1 of 2 pairs; stratum b: 0.8 vs 0.1 -> 1 of 1.
    scores = [0.9, 0.2, 0.5, 0.8, 0.1, 0.3]
    positive = [1, 1, 0, 1, 0, 1]
    strata = ["a", "a", "a", "b", "b", "c"]  # c has one class: no pair
    assert stratified_auroc(scores, positive, strata) == pytest.approx(2 / 3)
    # A score that only separates the strata gets 0.5 within them, however well it does overall.
    by_stratum = [0.0, 0.0, 0.0, 1.0, 1.0, 1.0]
    assert stratified_auroc(by_stratum, positive, strata) == pytest.approx(0.5)
    assert stratified_auroc([0.1, 0.2], [1, 1], ["a", "b"]) is None


def test_cluster_bootstrap_resamples_whole_clusters():
    # Two people, each with every answer right or every answer wrong: a resample holds 0, 1 or 2
    # copies of each person, so accuracy can only be 0, 1/2 or 1; row resampling gives many values.
    labels = ["correct"] * 5 + ["wrong"] * 5
    correct = [1] * 5 + [0] * 5
    people = ["p1"] * 5 + ["p2"] * 5
    by_person = bootstrap_ci(labels, correct, n_resamples=400, seed=0, clusters=people)
    assert by_person["accuracy"] == (0.0, 1.0)
    by_row = bootstrap_ci(labels, correct, n_resamples=400, seed=0)
    assert 0.0 < by_row["accuracy"][0] < by_row["accuracy"][1] < 1.0
    with pytest.raises(ValueError, match="clusters has 3 entries for 10 rows"):
        bootstrap_ci(labels, correct, clusters=["a", "b", "c"])


def test_exposure_views_by_bucket_with_damage_and_seen_people():
    from knowbound.metrics.views import exposure_views

    ref = ["wrong", "wrong", "correct", "wrong", "correct", "correct"]
    new = ["idk", "wrong", "correct", "idk", "wrong", "correct"]
    correct = [0, 0, 1, 0, 0, 1]
    exposures = [0, 1, 1, 1, 1, 9]
    person = [0, 3, 3, 3, 3, 9]
    p_refusal = [0.9, 0.2, 0.1, 0.8, 0.3, 0.0]
    v = exposure_views(new, correct, ref, exposures, person, p_refusal)
    one = v["by_exposure"]["1"]
    assert one["n"] == 4 and one["damage"] == 1 and one["refusal_rate"] == 0.25
    # within exposure 1: wrong answers score 0.2 and 0.8, right ones 0.1 and 0.3 -> 3 of 4 pairs
    assert one["refusal_auroc"] == pytest.approx(0.75)
    assert v["refusal_auroc_within_exposure"] == pytest.approx(0.75)  # only exposure 1 has both classes
    assert v["by_exposure"]["2"] == {"n": 0}
    assert v["seen_people"]["n"] == 5 and v["seen_people"]["damage"] == 1


def test_fit_threshold_maximises_honesty_within_an_accuracy_budget():
    from knowbound.baselines import fit_threshold

    scores = [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8]
    ref = ["wrong", "wrong", "correct", "wrong", "correct", "correct", "correct", "correct"]
    best = fit_threshold(scores, ref)
    # Refusing below 0.5 withholds 3 wrong and 1 right: honesty ((1 - 1/5) + 3/3) / 2 = 0.9
    assert (best.threshold, best.honesty) == (0.5, pytest.approx(0.9))
    # With at most 0 right answers withheld, refusing below 0.3 is the best: ((1 - 0) + 2/3) / 2
    budget = fit_threshold(scores, ref, max_accuracy_drop=0.0)
    assert (budget.threshold, budget.honesty) == (0.3, pytest.approx(5 / 6))
    assert fit_threshold([0.5, 0.5], ["correct", "correct"]).threshold == 0.5  # refuse nothing


def test_a_budget_held_at_a_confidence_stops_where_its_upper_bound_reaches_the_budget():
    from knowbound.baselines import fit_threshold

    scores = [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8]
    ref = ["wrong", "wrong", "correct", "wrong", "correct", "correct", "correct", "correct"]
    # At most 2 of 8 withheld right answers: refusing below 0.5 withholds 1 (the best, honesty 0.9).
    assert fit_threshold(scores, ref, max_accuracy_drop=0.25).threshold == 0.5
    # At 90% the bound of 1 of 8 is 1/8 + 1.2816 * sqrt(8/7 * (7 * (1/8)^2 + (7/8)^2)) / 8
    # = 0.125 + 1.2816 * 0.125 = 0.285 > 0.25: refusing below 0.4 is out, below 0.3 the best left.
    held = fit_threshold(scores, ref, max_accuracy_drop=0.25, budget_confidence=0.9)
    assert (held.threshold, held.honesty) == (0.3, pytest.approx(5 / 6))
    # At 0.5 the bound is the share itself: the plain fit.
    assert fit_threshold(scores, ref, max_accuracy_drop=0.25, budget_confidence=0.5).threshold == 0.5
    with pytest.raises(ValueError, match="budget confidence must be in"):
        fit_threshold(scores, ref, max_accuracy_drop=0.25, budget_confidence=1.0)
    with pytest.raises(ValueError, match="2 groups for 8 scores"):
        fit_threshold(scores, ref, max_accuracy_drop=0.25, budget_confidence=0.9, groups=["a", "b"])


def test_the_budget_s_bound_treats_a_group_as_one_draw():
    import math

    import numpy as np

    from knowbound.baselines import _share_bound

    flags = np.array([True, True, False, False])
    z = 1.2815515655446004  # the 90% quantile
    # Four independent questions: se = sqrt(4/3 * 4 * 0.5^2) / 4.
    assert _share_bound(4, None, 0.9)(flags) == pytest.approx(0.5 + z * math.sqrt(4 / 3) / 4)
    # Two people of two questions each, one with both withheld: se = sqrt(2/1 * (1^2 + 1^2)) / 4 = 0.5.
    assert _share_bound(4, ["a", "a", "b", "b"], 0.9)(flags) == pytest.approx(0.5 + z * 0.5)
    # One person: no spread to bound with, so nothing withheld is within any budget.
    assert _share_bound(4, ["a"] * 4, 0.9)(flags) == math.inf
    assert _share_bound(4, ["a"] * 4, 0.9)(np.zeros(4, dtype=bool)) == 0.0
    # Groups are the values themselves: 1 and "1" are two people.
    assert _share_bound(4, [1, "1", 2, "2"], 0.9)(flags) == pytest.approx(0.5 + z * math.sqrt(4 / 3) / 4)
    assert _share_bound(4, None, None)(flags) == 0.5


def test_a_question_s_group_is_its_person_else_itself():
    from knowbound.types import Question

    assert Question(id="q1", question="?", meta={"person": "p7"}).group == "p7"
    assert Question(id="q1", question="?").group == "q1"


def test_threshold_score_hand_computed():
    from knowbound.metrics import threshold_score

    # NEW: 3 correct, 2 wrong, 5 idk of 10. At t = 0.75 a wrong answer costs 0.75 / 0.25 = 3.
    assert threshold_score(NEW, 0.75) == pytest.approx((3 - 2 * 3) / 10)
    assert threshold_score(NEW, 0.5) == pytest.approx((3 - 2) / 10)
    assert threshold_score(NEW, 0.0) == pytest.approx(0.3)  # t = 0: plain share correct
    # Refusing a wrong answer instead of giving it raises the score; at t = 0.9 by 9 / n.
    fewer_wrong = ["idk" if x == "wrong" else x for x in NEW]
    assert threshold_score(fewer_wrong, 0.9) - threshold_score(NEW, 0.9) == pytest.approx(2 * 9 / 10)
    with pytest.raises(ValueError, match="threshold must be in"):
        threshold_score(NEW, 1.0)
