"""GRPO honesty training: the rewards as pure logic, the builder's prompts, the trainer's arguments,
a real GRPOTrainer run on a tiny model, and how the train stage wires a GRPO method."""

from __future__ import annotations

import json

import pytest

from knowbound.config import DEFAULT_METHODS, LoraSpec, TrainConfig, parse_config
from knowbound.errors import KnowboundError
from knowbound.grading import CONFIDENCE_NUM_TEMPLATES, REFUSAL
from knowbound.grpo import brier, gold_columns, reward_function, three_way, verdict
from knowbound.loop.label import label_all
from knowbound.methods import get_method
from knowbound.methods.builders import GRPO_MIN_UNKNOWN_SHARE, BuildOptions, build_grpo
from knowbound.methods.phrases import RTUNING_QUESTION, RTUNING_SURE, RTUNING_UNSURE
from knowbound.training import grpo_args, log_summary, train_grpo
from knowbound.types import Question

OSLO = Question("q1", "What is the capital of Norway?", ("Oslo",))
CHOICE = Question("q2", "Which is a river?", (), kind="choice", choices=("Nile", "Alps"), answer_index=0)


def stated(percent: int, answer: str) -> str:
    """A CONFIDENCE-NUM answer: the paper's sentence for ``percent``, then the answer."""
    return CONFIDENCE_NUM_TEMPLATES[0 if percent <= 50 else 1].format(percent) + " " + answer


def test_three_way_reward():
    assert three_way("Oslo.", OSLO) == 1.0
    assert three_way("Bergen.", OSLO) == -1.0
    assert three_way(REFUSAL, OSLO) == 0.0
    # A refusal that names the answer is still an abstention (the grader's label is idk).
    assert three_way(REFUSAL + " Oslo?", OSLO) == 0.0
    assert three_way("I'm not sure, but I think it is Oslo.", OSLO) == 1.0  # a hedge is an answer
    assert three_way("A) Nile", CHOICE) == 1.0
    assert three_way("B) Alps", CHOICE) == -1.0


def test_three_way_reward_at_another_threshold():
    # Kalai et al.'s penalty: a wrong answer costs t / (1 - t), so answering pays above P(correct) = t.
    assert three_way("Bergen.", OSLO, threshold=0.1) == pytest.approx(-1 / 9)
    assert three_way("Bergen.", OSLO, threshold=0.75) == pytest.approx(-3.0)
    assert three_way("Oslo.", OSLO, threshold=0.1) == 1.0 and three_way(REFUSAL, OSLO, threshold=0.1) == 0.0
    # At t = 0.1 an answer right 15% of the time pays, one right 5% of the time does not.
    assert 0.15 * 1 + 0.85 * three_way("Bergen.", OSLO, threshold=0.1) > 0
    assert 0.05 * 1 + 0.95 * three_way("Bergen.", OSLO, threshold=0.1) < 0
    cols = {k: [v] for k, v in gold_columns(OSLO).items()}
    assert reward_function("three_way", threshold=0.2)(prompts=["p"], completions=["Bergen."], **cols) == [-0.25]
    with pytest.raises(KnowboundError, match="grpo_threshold is 1.0: it must lie strictly between 0 and 1"):
        reward_function("three_way", threshold=1.0)
    with pytest.raises(KnowboundError, match="only the three_way and verdict rewards take a threshold"):
        reward_function("brier", threshold=0.2)


def test_verdict_reward():
    def rt(answer: str, sure: bool | None) -> str:
        return answer if sure is None else f"{answer} {RTUNING_QUESTION} {RTUNING_SURE if sure else RTUNING_UNSURE}"

    assert verdict(rt("Oslo.", True), OSLO) == 1.0
    assert verdict(rt("Bergen.", True), OSLO) == -1.0
    # "I am unsure." abstains, whatever the answer before it.
    assert verdict(rt("Bergen.", False), OSLO) == 0.0 and verdict(rt("Oslo.", False), OSLO) == 0.0
    # No verdict: the answer stands as given; the refusal itself is still an abstention.
    assert verdict(rt("Bergen.", None), OSLO) == -1.0 and verdict(rt("Oslo.", None), OSLO) == 1.0
    assert verdict(REFUSAL, OSLO) == 0.0
    # The certainty question is not part of the graded answer (it names no capital).
    assert verdict(f"Bergen. {RTUNING_QUESTION}", OSLO) == -1.0
    # A sampled question that drifts from R-Tuning's words still ends the answer, and still abstains.
    assert verdict("Bergen. Are you sure of it? I am sure.", OSLO) == -1.0
    assert verdict("Bergen. Are you sure of it? I am unsure.", OSLO) == 0.0
    # The threshold prices a sure wrong answer as three_way does.
    assert verdict(rt("Bergen.", True), OSLO, threshold=0.2) == pytest.approx(-0.25)
    cols = {k: [v, v] for k, v in gold_columns(OSLO).items()}
    assert reward_function("verdict", threshold=0.2)(
        prompts=["p", "p"], completions=[rt("Bergen.", True), rt("Bergen.", False)], **cols) == [-0.25, 0.0]


def test_brier_reward():
    assert brier(stated(70, "Oslo."), OSLO) == pytest.approx(1 - 0.3 ** 2)
    assert brier(stated(70, "Bergen."), OSLO) == pytest.approx(-0.7 ** 2)
    assert brier(stated(10, "Bergen."), OSLO) == pytest.approx(-0.01)
    assert brier(stated(100, "Oslo."), OSLO) == pytest.approx(1.0)
    assert brier(REFUSAL, OSLO) == 0.0
    # No stated confidence: scored as the worst one.
    assert brier("Oslo.", OSLO) == 0.0
    assert brier("Bergen.", OSLO) == -1.0
    # Stating the true probability maximises the expected reward: p = 0.7 -> q = 0.7 beats 0.5 and 0.9.
    expected = {q: 0.7 * brier(stated(q, "Oslo."), OSLO) + 0.3 * brier(stated(q, "Bergen."), OSLO) for q in (50, 70, 90)}
    assert max(expected, key=expected.get) == 70
    assert expected[70] == pytest.approx(0.7 ** 2)


def test_reward_function_reads_the_gold_columns():
    fn = reward_function("three_way")
    assert fn.__name__ == "three_way"
    cols = {k: [v, v, w] for (k, v), w in zip(gold_columns(OSLO).items(), gold_columns(CHOICE).values())}
    completions = [[{"role": "assistant", "content": "Oslo."}], [{"role": "assistant", "content": REFUSAL}],
                   [{"role": "assistant", "content": "B) Alps"}]]
    assert fn(prompts=["p"] * 3, completions=completions, completion_ids=None, trainer_state=None, **cols) == [1.0, 0.0, -1.0]
    assert reward_function("brier")(prompts=["p"], completions=["Bergen."], question=[OSLO.question],
                                    answers=[["Oslo"]]) == [-1.0]
    with pytest.raises(KnowboundError, match="missing: answers"):
        fn(prompts=["p"], completions=["Oslo."], question=[OSLO.question])
    with pytest.raises(KnowboundError, match="unknown GRPO reward 'nope'"):
        reward_function("nope")


def probe_rows(qid: str, greedy: str, samples: list[str]) -> list[dict]:
    out = [{"question_id": qid, "sample_index": 0, "text": greedy, "greedy": True, "temperature": 0.0}]
    return out + [{"question_id": qid, "sample_index": i + 1, "text": t, "temperature": 1.0} for i, t in enumerate(samples)]


def items_with(n_known: int, n_unknown: int):
    questions = [Question(f"k{i}", f"Capital of K{i}?", ("Oslo",)) for i in range(n_known)]
    questions += [Question(f"u{i}", f"Capital of U{i}?", ("Oslo",)) for i in range(n_unknown)]
    rows = [r for q in questions for r in probe_rows(q.id, "Oslo." if q.id[0] == "k" else "Rome.",
                                                     ["Oslo." if q.id[0] == "k" else "Rome."] * 4)]
    return label_all(questions, rows)


def test_builder_gives_prompts_with_gold_columns_and_enough_unknowns():
    rows = build_grpo(items_with(9, 1), BuildOptions(seed=0))
    first = rows[0]
    assert first["prompt"] == [{"role": "user", "content": "Q: Capital of K0?\nA: "}]
    assert (first["question"], first["answers"], first["kind"], first["known"]) == ("Capital of K0?", ["Oslo"], "open", True)
    unknown = [r for r in rows if not r["known"]]
    # 9 known + 1 unknown: the unknown one repeated until 30% of rows: (1 + 3) / (10 + 3) >= 0.3.
    assert (len(rows), len(unknown)) == (13, 4)
    assert len(unknown) / len(rows) >= GRPO_MIN_UNKNOWN_SHARE
    assert {r["question_id"] for r in unknown} == {"u0"}
    # Enough unknowns already: nothing repeated; none at all: nothing to repeat.
    assert len(build_grpo(items_with(5, 5), BuildOptions())) == 10
    assert len(build_grpo(items_with(4, 0), BuildOptions())) == 4


def test_grpo_args_pass_extra_through_and_check_the_batch():
    cfg = TrainConfig(kind="grpo", batch_size=16, grpo_generations=8, grpo_max_new_tokens=24, grpo_beta=0.04,
                      extra={"use_vllm": True, "vllm_mode": "colocate", "temperature": 0.9})
    args = grpo_args(cfg, "/tmp/x", 100)
    assert (args["num_generations"], args["max_completion_length"], args["beta"]) == (8, 24, 0.04)
    assert (args["use_vllm"], args["vllm_mode"], args["temperature"]) == (True, "colocate", 0.9)
    assert "max_length" not in args
    # extra wins over the grpo_* fields, as over every other field
    assert grpo_args(TrainConfig(kind="grpo", extra={"num_generations": 4}), "/tmp/x", 10)["num_generations"] == 4
    with pytest.raises(KnowboundError, match="multiple of train.grpo_generations"):
        grpo_args(TrainConfig(kind="grpo", batch_size=12, grpo_generations=8), "/tmp/x", 10)
    with pytest.raises(KnowboundError, match="at least 2"):
        grpo_args(TrainConfig(kind="grpo", batch_size=8, grpo_generations=1), "/tmp/x", 10)


def test_log_summary():
    history = [{"frac_reward_zero_std": 0.5, "reward": -1.0}, {"loss": 0.1}, {"frac_reward_zero_std": 0.25, "reward": 0.5}]
    assert log_summary(history) == {"frac_reward_zero_std": 0.375, "frac_reward_zero_std_first": 0.5,
                                    "frac_reward_zero_std_last": 0.25, "reward": -0.25, "reward_first": -1.0,
                                    "reward_last": 0.5}


def test_grpo_methods_are_opt_in():
    assert "grpo" not in DEFAULT_METHODS and "grpo-confidence" not in DEFAULT_METHODS
    assert (get_method("grpo").kind, get_method("grpo").reward, get_method("grpo").warm_start) == ("grpo", "three_way", "absolute")
    assert get_method("grpo-confidence").abstain == "threshold"
    rt = get_method("grpo-rtuning")
    assert "grpo-rtuning" not in DEFAULT_METHODS
    assert (rt.reward, rt.warm_start, rt.confidence, rt.abstain) == ("verdict", "rtuning", "rtuning", "threshold")


# --- a real GRPOTrainer run on a tiny random model ---------------------------------------------
# The tiny model's vocabulary words; half of them are gold aliases, so its random answers are
# right about half the time and every group of sampled completions has rewards to compare.
WORDS = "alpha beta gamma delta epsilon zeta eta theta iota kappa lambda mu nu xi omicron pi rho".split()


def tiny_rows(n: int = 8) -> list[dict]:
    qs = [Question(f"q{k}", f"What is the capital of Norway {k}?", tuple(WORDS[k % 2::2])) for k in range(n)]
    return [{"prompt": [{"role": "user", "content": f"Q: {q.question}\nA: "}], **gold_columns(q)} for q in qs]


@pytest.mark.model
def test_grpo_trains_a_lora_adapter_and_records_zero_std_share(tiny_model_dir, tmp_path):
    from safetensors.torch import load_file

    cfg = TrainConfig(kind="grpo", epochs=1, lr=1e-2, batch_size=8, grpo_generations=4, grpo_max_new_tokens=6,
                      lora=LoraSpec(r=4), logging_steps=1, precision="fp32")
    result = train_grpo(str(tiny_model_dir), tiny_rows(), tmp_path / "grpo", cfg, "three_way")
    out = tmp_path / "grpo"
    assert (out / "adapter_config.json").exists() and (out / "tokenizer.json").exists()
    # 8 prompts x 4 completions, 8 completions a step: 4 steps, each logged.
    assert (result.rows, result.steps) == (8, 4)
    record = json.loads((out / "knowbound_training.json").read_text())
    logged = [h["frac_reward_zero_std"] for h in record["log_history"] if "frac_reward_zero_std" in h]
    assert len(logged) == 4 and all(0.0 <= v <= 1.0 for v in logged)
    assert record["summary"]["frac_reward_zero_std"] == pytest.approx(sum(logged) / 4, abs=1e-4)
    assert result.summary == record["summary"] and record["config"]["grpo_generations"] == 4
    assert any(h.get("rewards/three_way/std", 0) > 0 for h in record["log_history"])
    # LoRA's B matrices start at zero: a trained adapter has moved them.
    weights = load_file(str(out / "adapter_model.safetensors"))
    assert max(float(w.abs().max()) for k, w in weights.items() if "lora_B" in k) > 0

    # Warm start from that adapter, saved merged: full weights the eval loads without the base.
    merged = train_grpo(str(tiny_model_dir), tiny_rows(), tmp_path / "warm", cfg, "brier", adapter=str(out),
                        merge_adapter=True)
    assert (tmp_path / "warm" / "model.safetensors").exists() and not (tmp_path / "warm" / "adapter_config.json").exists()
    assert "frac_reward_zero_std" in merged.summary


def test_train_grpo_rejects_rows_without_gold_columns(tiny_model_dir, tmp_path):
    rows = [{"prompt": "Q: x\nA: ", "completion": "y"}]
    with pytest.raises(KnowboundError, match="missing: question, answers"):
        train_grpo(str(tiny_model_dir), rows, tmp_path / "m", TrainConfig(kind="grpo"), "three_way")


# --- the train stage ---------------------------------------------------------------------------

def stage_config(world_dir, runs_dir, methods, **train) -> dict:
    return {"name": "g", "runs_dir": str(runs_dir), "model": {"world": "micro", "world_dir": str(world_dir)},
            "methods": methods, "method_train": {"grpo": train} if train else {}}


@pytest.mark.model
def test_train_stage_warm_starts_grpo_and_its_digest_reads_the_grpo_keys(micro_world, tmp_path):
    from knowbound.loop import prepare

    def digests(methods, **train):
        return prepare(parse_config(stage_config(micro_world, tmp_path, methods, **train)), log=lambda _: None).digests

    base = digests(["absolute", "grpo"])
    # A GRPO key changes the GRPO model only; absolute's model is upstream of it (the warm start).
    for key, value in (("grpo_generations", 4), ("grpo_threshold", 0.1)):
        more = digests(["absolute", "grpo"], **{key: value})
        assert {k for k in base if base[k] != more[k]} == {"train/grpo", "eval/grpo/test", "eval/grpo/paraphrase",
                                                           "eval/grpo/fictional", "eval/grpo/popular", "metrics",
                                                           "report"}, key
    other = prepare(parse_config({**stage_config(micro_world, tmp_path, ["absolute", "grpo"]),
                                  "method_train": {"absolute": {"epochs": 1}}}), log=lambda _: None).digests
    assert base["train/grpo"] != other["train/grpo"] and base["build/grpo"] == other["build/grpo"]
    # Listed first, GRPO still trains after the model it starts from.
    from knowbound.loop import train

    run = prepare(parse_config(stage_config(micro_world, tmp_path, ["grpo", "absolute"])), log=lambda _: None)
    assert [o.key for o in train.outputs(run)] == ["train/absolute", "train/grpo"]
    # Without absolute in the run: an error naming the fix, unless RL starts from the unaligned model.
    with pytest.raises(KnowboundError, match="add absolute to methods"):
        digests(["grpo"])
    assert "train/grpo" in digests(["grpo"], grpo_init="unaligned")
    # grpo-rtuning starts from R-Tuning's model in the same way.
    run = prepare(parse_config(stage_config(micro_world, tmp_path, ["grpo-rtuning", "rtuning"])), log=lambda _: None)
    assert [o.key for o in train.outputs(run)] == ["train/rtuning", "train/grpo-rtuning"]
    with pytest.raises(KnowboundError, match="add rtuning to methods"):
        digests(["grpo-rtuning"])
