"""Adaptive probing: the stopping rule on scripted outcomes, the sampler's rows against the full
probe's, resume, and the probe stage's digest."""

from __future__ import annotations

import json

import numpy as np
import pytest

from conftest import make_questions
from knowbound.adaptive import (
    ALL_M, CERTAIN, CONFIDENT, NO_SAMPLES, Prior, fit_prior, known_threshold, needed_thresholds, p_at_least,
    rounds, sample_adaptive, settled,
)
from knowbound.errors import KnowboundError
from knowbound.loop.label import label_all
from knowbound.methods.builders import BuildOptions, is_known
from knowbound.sampling import sample_questions
from knowbound.types import Completion, Question

# Almost every question never right, a few always right: "0 of n" then means p = 0 with high odds.
SPIKE = Prior(np.array([0.0, 0.5, 1.0]), np.array([0.97, 0.01, 0.02]))
FLAT = Prior()


def test_known_threshold_is_the_label_stages_test():
    assert known_threshold(10, 0.1) == 1  # the paper's: 1 of 10 samples
    assert known_threshold(10, 0.25) == 3  # 2/10 < 0.25 <= 3/10
    assert known_threshold(10, 0.3) == 3
    assert known_threshold(10, 1.5) == 11  # unreachable: never known by samples


def test_needed_thresholds_follow_the_labels():
    assert needed_thresholds(True, 10, 0.1, "official") == ()  # a correct greedy answer settles all
    assert needed_thresholds(True, 10, 0.3, "samples") == (3,)  # SliCK is HighlyKnown anyway
    assert needed_thresholds(False, 10, 0.1, "official") == (1,)
    assert needed_thresholds(False, 10, 0.3, "official") == (1, 3)  # the label and SliCK's "any correct"
    assert needed_thresholds(None, 10, 0.1, "official") == (1,)  # a failed greedy answer counts as wrong


def test_certain_verdicts_need_no_confidence():
    assert settled(0, 0, (), 10, 0.1, FLAT, 0.98) == NO_SAMPLES
    assert settled(1, 1, (1,), 10, 0.1, FLAT, 0.98) == CERTAIN  # one correct sample: known by samples
    assert settled(0, 0, (1,), 10, 0.1, SPIKE, 0.98) is None  # nothing drawn: no statistical verdict
    assert settled(0, 10, (1,), 10, 0.1, FLAT, 0.98) == ALL_M
    # tau = 0.3: 3 correct settles both thresholds; 1 correct settles only SliCK's.
    assert settled(3, 4, (1, 3), 10, 0.3, FLAT, 0.98) == CERTAIN
    assert settled(1, 4, (1, 3), 10, 0.3, FLAT, 0.98) is None


def test_unknown_needs_a_prior_that_makes_a_late_hit_unlikely():
    # Flat prior: after 4 wrong samples a correct one among the other 6 is still likely.
    assert p_at_least(FLAT, 0, 4, 10, 1) > 0.5
    assert settled(0, 4, (1,), 10, 0.1, FLAT, 0.98) is None
    # Posterior on {0, .5, 1} after 0 of 2: .97 : .01 * .25 : 0 -> P(k >= 1) = .0025/.9725 * (1 - .5^8).
    assert p_at_least(SPIKE, 0, 2, 10, 1) == pytest.approx(0.0025 / 0.9725 * (1 - 0.5 ** 8))
    assert settled(0, 2, (1,), 10, 0.1, SPIKE, 0.98) == CONFIDENT
    assert settled(0, 2, (1,), 10, 0.1, SPIKE, 0.999) is None  # the user's confidence is the bar


def test_a_statistical_verdict_must_match_what_the_drawn_samples_say():
    # tau = 0.3: 2 of 3 correct makes "k >= 3" near certain under a prior at p = 1, and c/n = .67 >= tau
    # agrees; 0 of 2 under a prior at p = 1 would say "known" while the drawn samples say unknown.
    high = Prior(np.array([0.0, 0.9]), np.array([0.001, 0.999]))
    assert settled(2, 3, (1, 3), 10, 0.3, high, 0.98) == CONFIDENT
    assert settled(0, 2, (1,), 10, 0.1, Prior(np.array([0.0, 1.0]), np.array([0.5, 0.5])), 0.98) == CONFIDENT
    assert settled(2, 3, (1, 3), 10, 0.3, Prior(np.array([0.0, 1.0]), np.array([0.5, 0.5])), 0.98) is None
    assert settled(0, 2, (1,), 10, 0.1, Prior(np.array([0.9]), np.array([1.0])), 0.98) is None


def test_fit_prior_finds_the_two_kinds_of_questions():
    prior = fit_prior([(0, 10)] * 90 + [(10, 10)] * 10)
    assert prior.grid[0] == 0.0 and prior.grid[-1] == 1.0
    assert prior.weights[0] > 0.85 and prior.weights[-1] > 0.08
    assert prior.weights.sum() == pytest.approx(1.0)
    assert np.allclose(fit_prior([]).weights, 1 / len(prior.grid))


def test_rounds_cover_one_to_m():
    assert rounds(10, 3) == [(1, 3), (4, 3), (7, 3), (10, 1)]
    assert rounds(10, 2)[-1] == (9, 2)
    with pytest.raises(KnowboundError, match="round_size must be at least 1"):
        rounds(10, 0)


class Population:
    """A scripted model: 'always' right, right only when 'sampled', right only at sample 7 ('late'),
    or 'never' right; records how many sampled answers it was asked for."""

    name = "population"

    def __init__(self, kinds: dict[str, str]):
        self.kinds, self.sampled = kinds, 0

    def generate(self, prompts, params):
        out = []
        for p in prompts:
            kind = next(k for key, k in self.kinds.items() if f"land {key}?" in p)
            texts = []
            for j in range(params.n):
                index = params.first_index + j + 1  # the sample index this completion becomes
                right = (kind == "always" or (kind == "sampled" and not params.greedy)
                         or (kind == "late" and not params.greedy and index == 7))
                texts.append(Completion(("Oslo" if right else "Bergen") + f" {index}"))
            self.sampled += 0 if params.greedy else params.n
            out.append(texts)
        return out


def population(counts: dict[str, int]) -> tuple[list[Question], Population]:
    questions, kinds = [], {}
    for kind, count in counts.items():
        for k in range(count):
            key = f"{kind}{k}"
            questions.append(Question(id=key, question=f"What is the capital of land {key}?", answers=("Oslo",)))
            kinds[key] = kind
    return questions, Population(kinds)


def test_sampler_stops_settled_questions_and_keeps_the_full_probes_rows(tmp_path):
    questions, model = population({"always": 20, "sampled": 20, "late": 2, "never": 38})
    stats = sample_adaptive(questions, model, tmp_path / "a.jsonl", progress=False)
    assert stats.ended == {NO_SAMPLES: 20, CERTAIN: 20, CONFIDENT: 40, ALL_M: 0}
    # 'sampled' stop after their first round (2), the 40 wrong ones after two rounds (4).
    assert (stats.drawn, stats.full, model.sampled) == (20 * 2 + 40 * 4, 800, 200)
    assert stats.saving == 4.0
    full_model = population({"always": 20, "sampled": 20, "late": 2, "never": 38})[1]
    sample_questions(questions, full_model, tmp_path / "f.jsonl", n=10, progress=False)
    full = {(r["question_id"], r["sample_index"]): r for r in map(json.loads, (tmp_path / "f.jsonl").open())}
    adaptive = [json.loads(line) for line in (tmp_path / "a.jsonl").open()]
    assert all(row == full[row["question_id"], row["sample_index"]] for row in adaptive)
    assert [(r["question_id"], r["sample_index"]) for r in adaptive[:3]] == [("always0", 0), ("always1", 0),
                                                                              ("always2", 0)]
    # Labels: the same as the full probe's but for the two 'late' questions (a hit at sample 7).
    opts = BuildOptions(tau=0.1)
    known_a = {i.question.id: is_known(i, opts) for i in label_all(questions, adaptive)}
    known_f = {i.question.id: is_known(i, opts) for i in label_all(questions, full.values())}
    assert {q for q in known_f if known_f[q] != known_a[q]} == {"late0", "late1"}
    assert sum(known_a.values()) == 40


def test_a_stricter_confidence_samples_more(tmp_path):
    questions, model = population({"always": 20, "sampled": 20, "never": 40})
    stats = sample_adaptive(questions, model, tmp_path / "a.jsonl", confidence=0.999, progress=False)
    # The pseudo-questions of the fitted prior keep a small p possible: 10 wrong samples never
    # reach 0.999, so the wrong ones draw all 10 (known ones still stop after one round).
    assert stats.drawn == 20 * 2 + 40 * 10 and stats.ended == {NO_SAMPLES: 20, CERTAIN: 20, CONFIDENT: 0, ALL_M: 40}


def test_samples_rule_probes_greedy_correct_questions_too(tmp_path):
    questions, model = population({"always": 10, "never": 10})
    stats = sample_adaptive(questions, model, tmp_path / "a.jsonl", known_rule="samples", progress=False)
    # 'always' need one round to be known by samples; 'never' are settled by the confidence rule.
    assert stats.ended[CERTAIN] == 10 and stats.ended[NO_SAMPLES] == 0 and stats.ended[CONFIDENT] == 10
    # Only 10 questions in the greedy-wrong group: the prior's pseudo-questions weigh more, and the
    # 'never' ones need three rounds (6 wrong samples) where 40 of them needed two.
    assert stats.drawn == 10 * 2 + 10 * 6


def test_interrupted_adaptive_probe_resumes_to_the_same_file(tmp_path):
    questions, model = population({"always": 5, "sampled": 5, "late": 1, "never": 9})
    whole = tmp_path / "whole.jsonl"
    sample_adaptive(questions, model, whole, batch_size=4, progress=False)
    lines = whole.read_text().splitlines()
    part = tmp_path / "part.jsonl"
    # Killed mid-way: rows of the greedy pass and of the first round, in the order they were
    # written, and a torn line.
    written = sorted(lines, key=lambda l: (json.loads(l)["sample_index"] > 0, json.loads(l)["sample_index"]))
    part.write_text("\n".join(written[:27]) + "\n" + written[27][:10])
    fresh = population({"always": 5, "sampled": 5, "late": 1, "never": 9})[1]
    stats = sample_adaptive(questions, fresh, part, batch_size=4, progress=False)
    assert part.read_bytes() == whole.read_bytes()
    assert stats.skipped == 27 and stats.generated == len(lines) - 27


def test_bad_settings_are_refused(tmp_path):
    questions, model = population({"never": 2})
    with pytest.raises(KnowboundError, match=r"probe.confidence must be in \(0.5, 1\), got 1.0"):
        sample_adaptive(questions, model, tmp_path / "a.jsonl", confidence=1.0, progress=False)


def test_hf_rounds_draw_the_full_probes_samples(tmp_path, hf_backend):
    """Samples 3..4 asked on their own are those a call for 1..4 writes (per-row random streams)."""
    qs = make_questions(3)
    sample_questions(qs, hf_backend, tmp_path / "full.jsonl", n=4, max_new_tokens=8, seed=3, progress=False)
    sample_questions(qs, hf_backend, tmp_path / "late.jsonl", n=2, first=3, greedy=False, max_new_tokens=8,
                     seed=3, progress=False)
    full = {(r["question_id"], r["sample_index"]): r["text"] for r in map(json.loads, (tmp_path / "full.jsonl").open())}
    late = [json.loads(line) for line in (tmp_path / "late.jsonl").open()]
    assert [r["sample_index"] for r in late] == [3, 4] * 3
    assert all(r["text"] == full[r["question_id"], r["sample_index"]] for r in late)
    assert len({full[q.id, j] for q in qs for j in (1, 2, 3, 4)}) > 4  # the samples do differ


def test_probe_digest_changes_only_when_adaptive(tmp_path):
    from knowbound.config import parse_config
    from knowbound.loop.probe import ADAPTIVE_READS, READS, outputs

    class Run:  # what outputs() reads of a run directory
        def __init__(self, cfg):
            self.cfg, self.dir, self.model_id = cfg, tmp_path, "m"

    off = outputs(Run(parse_config({"probe": {"round_size": 3}})))[0]
    on = outputs(Run(parse_config({"probe": {"adaptive": True}})))[0]
    assert off.reads == READS and on.reads == READS + ADAPTIVE_READS
    assert {"probe.round_size", "probe.confidence", "build.tau", "grading"} <= set(on.reads)
