"""The hf backend on a tiny random Llama loaded with from_pretrained."""

from __future__ import annotations

import math
from collections import Counter

import pytest
import torch

from knowbound.backends import get_backend
from knowbound.backends.hf import band_layers
from knowbound.types import SamplingParams

pytestmark = pytest.mark.model

PROMPTS = [
    "What is the capital of Norway?",
    "Who wrote Hamlet?",
    "Which river flows through Cairo? Answer the question if you know the answer to the question.",
    "When did the war end?",
]


def reference_greedy(backend, prompt: str, max_new_tokens: int) -> str:
    """What users write: one prompt, no padding, ``model.generate(do_sample=False)``."""
    tok = backend.tokenizer
    enc = tok(backend.format_prompt(prompt), return_tensors="pt", add_special_tokens=False)
    out = backend.model.generate(**enc, do_sample=False, max_new_tokens=max_new_tokens,
                                 pad_token_id=tok.pad_token_id)
    return tok.decode(out[0, enc["input_ids"].shape[1]:], skip_special_tokens=True)


def test_greedy_batch_equals_unbatched_model_generate(hf_backend):
    out = hf_backend.generate(PROMPTS, SamplingParams(n=1, temperature=0.0, max_new_tokens=10))
    assert [o[0].text for o in out] == [reference_greedy(hf_backend, p, 10) for p in PROMPTS]
    assert all(o[0].finish_reason in ("length", "stop") and o[0].logprob < 0 for o in out)


def test_chat_template_wraps_the_user_message(hf_backend):
    assert hf_backend.format_prompt("Hi?") == "<|user|>Hi?<|assistant|>"


def test_n_completions_per_prompt_and_seeded_reproducibility(hf_backend):
    params = SamplingParams(n=5, temperature=1.0, max_new_tokens=8, seed=3)
    first = hf_backend.generate(PROMPTS, params)
    assert [len(o) for o in first] == [5] * len(PROMPTS)
    assert hf_backend.generate(PROMPTS, params) == first
    assert len({c.text for c in first[0]}) > 1  # samples differ from one another
    other_seed = hf_backend.generate(PROMPTS, SamplingParams(n=5, temperature=1.0, max_new_tokens=8, seed=4))
    assert other_seed != first


def test_samples_do_not_depend_on_batch_mates_or_batch_size(hf_backend):
    params = SamplingParams(n=4, temperature=1.0, max_new_tokens=8, seed=11)
    alone = hf_backend.generate([PROMPTS[1]], params)[0]
    crowded = hf_backend.generate([PROMPTS[2], PROMPTS[1], PROMPTS[0]], params)[1]
    hf_backend.max_batch_size = 3  # rows of one prompt now spread over several forward passes
    try:
        split = hf_backend.generate([PROMPTS[0], PROMPTS[1]], params)[1]
    finally:
        hf_backend.max_batch_size = 1024
    assert [c.text for c in alone] == [c.text for c in crowded] == [c.text for c in split]


def next_token_probs(backend, prompt):
    """The model's distribution of the first answer token after the chat-formatted prompt."""
    enc = backend.tokenizer(backend.format_prompt(prompt), return_tensors="pt", add_special_tokens=False)
    with torch.no_grad():
        return backend.model(**enc).logits[0, -1].softmax(-1)


def test_sampling_follows_the_model_distribution(hf_backend):
    prompt = PROMPTS[0]
    tok = hf_backend.tokenizer
    probs = next_token_probs(hf_backend, prompt)
    expected = Counter()
    for token_id, p in enumerate(probs.tolist()):
        expected[tok.decode([token_id], skip_special_tokens=True)] += p
    n = 3000
    out = hf_backend.generate([prompt], SamplingParams(n=n, temperature=1.0, max_new_tokens=1, seed=0))[0]
    seen = Counter(c.text for c in out)
    # Pearson's chi-square over texts expected at least 5 times (the rest pooled): a wrong
    # sampler (e.g. greedy, or ignoring temperature) lands far above df + 5 standard deviations.
    big = [t for t in expected if expected[t] * n >= 5]
    observed = [seen[t] for t in big] + [n - sum(seen[t] for t in big)]
    wanted = [expected[t] * n for t in big] + [n - sum(expected[t] * n for t in big)]
    chi2 = sum((o - e) ** 2 / e for o, e in zip(observed, wanted) if e > 0)
    df = len(big)
    assert chi2 < df + 5 * math.sqrt(2 * df)
    assert len(big) > 10  # the test distribution is not degenerate
    # Each completion's log-prob is the model's log-prob of the token it drew.
    ids_of = Counter(tok.decode([i], skip_special_tokens=True) for i in range(len(probs)))
    c = next(c for c in out if ids_of[c.text] == 1)  # a text only one token id decodes to
    assert c.logprob == pytest.approx(math.log(expected[c.text]), abs=1e-4)


def test_top_p_keeps_to_the_nucleus(hf_backend):
    prompt = PROMPTS[1]
    tok = hf_backend.tokenizer
    probs = next_token_probs(hf_backend, prompt)
    sorted_p, index = probs.sort(descending=True)
    keep = int(((sorted_p.cumsum(0) - sorted_p) < 0.5).sum())
    nucleus = {tok.decode([i], skip_special_tokens=True) for i in index[:keep].tolist()}
    out = hf_backend.generate([prompt], SamplingParams(n=400, temperature=1.0, top_p=0.5, max_new_tokens=1, seed=1))
    assert {c.text for c in out[0]} <= nucleus
    assert len(nucleus) >= 2 and len({c.text for c in out[0]}) >= 2


def test_stop_strings_cut_the_text_and_finish_with_stop(hf_backend):
    free = hf_backend.generate(PROMPTS, SamplingParams(n=1, temperature=0.0, max_new_tokens=12))
    words = free[0][0].text.split()
    stop = words[3]  # a word the greedy answer really writes
    out = hf_backend.generate(PROMPTS, SamplingParams(n=1, temperature=0.0, max_new_tokens=12, stop=(stop,)))
    first = out[0][0]
    assert first.finish_reason == "stop" and stop not in first.text
    assert free[0][0].text.startswith(first.text) and len(first.text) < len(free[0][0].text)
    assert first.logprob > free[0][0].logprob  # fewer tokens, fewer negative terms


def test_eos_finishes_with_stop_and_length_otherwise(tiny_model_dir):
    backend = get_backend("hf", model=str(tiny_model_dir))
    eos = backend.tokenizer.eos_token_id
    params = SamplingParams(n=1, temperature=0.0, max_new_tokens=6)
    free = [o[0] for o in backend.generate(PROMPTS[:2], params)]
    assert [c.finish_reason for c in free] == ["length", "length"]

    def favour_eos_after_two_tokens(module, inputs, output):
        # The end token becomes the clear favourite once two tokens have been generated.
        if output.shape[1] == 1 and favour_eos_after_two_tokens.calls >= 2:
            output[..., eos] += 1000.0
        favour_eos_after_two_tokens.calls += 1
        return output

    favour_eos_after_two_tokens.calls = 0
    backend.model.lm_head.register_forward_hook(favour_eos_after_two_tokens)
    out = [o[0] for o in backend.generate(PROMPTS[:2], params)]
    assert [c.finish_reason for c in out] == ["stop", "stop"]
    assert all(f.text.startswith(c.text) and 0 < len(c.text) < len(f.text) for c, f in zip(out, free))


def test_out_of_memory_halves_the_batch(tiny_model_dir, monkeypatch):
    backend = get_backend("hf", model=str(tiny_model_dir))
    params = SamplingParams(n=3, temperature=1.0, max_new_tokens=6, seed=5)
    expected = backend.generate(PROMPTS, params)
    forward = backend.model.forward
    sizes = []

    def small_memory(*args, **kwargs):
        rows = kwargs["input_ids"].shape[0]
        sizes.append(rows)
        if rows > 2:
            raise torch.OutOfMemoryError("CUDA out of memory (simulated)")
        return forward(*args, **kwargs)

    monkeypatch.setattr(backend.model, "forward", small_memory)
    got = backend.generate(PROMPTS, params)
    assert [[(c.text, c.finish_reason) for c in o] for o in got] == [[(c.text, c.finish_reason) for c in o] for o in expected]
    # Different batch shapes change float rounding in the last digits only.
    assert [c.logprob for o in got for c in o] == pytest.approx([c.logprob for o in expected for c in o], abs=1e-4)
    assert max(sizes) > 2 and 2 in sizes


def test_a_row_that_never_fits_is_an_error_completion(tiny_model_dir, monkeypatch):
    backend = get_backend("hf", model=str(tiny_model_dir))

    def no_memory(*args, **kwargs):
        raise torch.OutOfMemoryError("CUDA out of memory (simulated)")

    monkeypatch.setattr(backend.model, "forward", no_memory)
    out = backend.generate(PROMPTS[:2], SamplingParams(n=2, max_new_tokens=4))
    assert all(c.failed and c.text == "" and c.error.startswith("out of memory") for o in out for c in o)


def test_logprobs_of_matches_a_direct_forward_pass(hf_backend):
    continuations = [["Oslo", "the Nile river"], ["William Shakespeare"]]
    got = hf_backend.logprobs_of(PROMPTS[:2], continuations)
    tok, model = hf_backend.tokenizer, hf_backend.model
    for prompt, conts, values in zip(PROMPTS[:2], continuations, got):
        text = hf_backend.format_prompt(prompt)
        ctx = tok(text, add_special_tokens=False)["input_ids"]
        for cont, value in zip(conts, values):
            ids = tok(text + cont, add_special_tokens=False)["input_ids"]
            with torch.no_grad():
                logp = model(torch.tensor([ids])).logits[0].log_softmax(-1)
            direct = sum(logp[k - 1, ids[k]].item() for k in range(len(ctx), len(ids)))
            assert value == pytest.approx(direct, abs=1e-4)
    assert got[0][0] != got[0][1]


def test_logprobs_of_agrees_with_generation_logprob(hf_backend):
    out = hf_backend.generate([PROMPTS[3]], SamplingParams(n=1, temperature=0.0, max_new_tokens=5))[0][0]
    assert out.finish_reason == "length"
    scored = hf_backend.logprobs_of([PROMPTS[3]], [[out.text]])[0][0]
    assert scored == pytest.approx(out.logprob, abs=1e-3)


def test_plain_prompt_format_skips_the_chat_template(tiny_model_dir):
    backend = get_backend("hf", model=str(tiny_model_dir), prompt_format="plain")
    assert backend.format_prompt("Q: Hi?\nA: ") == "Q: Hi?\nA: "
    out = backend.generate(["Q: Who wrote Hamlet?\nA: "], SamplingParams(n=1, max_new_tokens=4))
    assert out[0][0].finish_reason in ("stop", "length")


def test_device_and_dtype_are_chosen_automatically(hf_backend):
    from knowbound.backends.hf import pick_device, pick_dtype

    expected = "cuda" if torch.cuda.is_available() else ("mps" if torch.backends.mps.is_available() else "cpu")
    assert pick_device().type == expected
    assert pick_dtype(torch.device("cpu")) == torch.float32
    assert pick_dtype(torch.device("cpu"), "bfloat16") == torch.bfloat16
    assert next(hf_backend.model.parameters()).dtype == pick_dtype(hf_backend.device)


def test_peft_adapter_is_loaded_and_merged(tiny_model_dir, tmp_path):
    peft = pytest.importorskip("peft")
    from transformers import AutoModelForCausalLM

    base = AutoModelForCausalLM.from_pretrained(tiny_model_dir)
    config = peft.LoraConfig(r=4, lora_alpha=16, target_modules=["q_proj", "v_proj"], init_lora_weights=False)
    lora = peft.get_peft_model(base, config)
    lora.save_pretrained(tmp_path / "adapter")
    with_adapter = get_backend("hf", model=str(tiny_model_dir), adapter=str(tmp_path / "adapter"))
    plain = get_backend("hf", model=str(tiny_model_dir))
    params = SamplingParams(n=1, temperature=0.0, max_new_tokens=8)
    got = [o[0].text for o in with_adapter.generate(PROMPTS, params)]
    assert not any("lora" in name for name, _ in with_adapter.model.named_parameters())  # merged
    assert got != [o[0].text for o in plain.generate(PROMPTS, params)]
    enc = plain.tokenizer(plain.format_prompt(PROMPTS[0]), return_tensors="pt", add_special_tokens=False)
    ref = lora.generate(**enc, do_sample=False, max_new_tokens=8)
    assert got[0] == plain.tokenizer.decode(ref[0, enc["input_ids"].shape[1]:], skip_special_tokens=True)


def test_answer_states_match_scoring_and_a_direct_forward_pass(hf_backend):
    answers = ["Oslo", "William Shakespeare", "", "It ended in 1945."]
    states = hf_backend.answer_states(PROMPTS, answers)
    scored = hf_backend.logprobs_of(PROMPTS, [[a] for a in answers])
    hidden = hf_backend.model.config.hidden_size
    for st, value, answer in zip(states, scored, answers):
        assert sum(st["token_logprobs"]) == pytest.approx(value[0], abs=1e-4)
        assert st["hidden"].shape == (5, hidden)
    assert states[2]["token_logprobs"] == []  # an empty answer: its states are the prompt's
    # Each state equals an unpadded forward pass's.
    tok, model = hf_backend.tokenizer, hf_backend.model
    low, high = band_layers(model.config.num_hidden_layers)
    for k in (1, 2):
        ids = tok(hf_backend.format_prompt(PROMPTS[k]) + answers[k], add_special_tokens=False)["input_ids"]
        ctx = tok(hf_backend.format_prompt(PROMPTS[k]), add_special_tokens=False)["input_ids"]
        with torch.no_grad():
            layers = model(torch.tensor([ids]), output_hidden_states=True).hidden_states
        last, band = layers[-1][0], torch.stack(layers[low:high + 1])[:, 0].mean(0)
        assert torch.allclose(states[k]["hidden"][1], last[len(ctx) - 1], atol=1e-4)
        assert torch.allclose(states[k]["hidden"][3], last[-1], atol=1e-4)
        # The answer band: the mean over the answer's tokens (the prompt's last for an empty one).
        answer_band = band[len(ctx):].mean(0) if answers[k] else band[len(ctx) - 1]
        assert torch.allclose(states[k]["hidden"][4], answer_band, atol=1e-4)
    assert len(tok(answers[1], add_special_tokens=False)["input_ids"]) > 1  # a mean over several tokens


@pytest.mark.parametrize("max_batch_size", [1024, 2])
def test_answer_states_share_each_prompt_across_its_answers_and_match_one_pass_per_pair(tiny_model_dir, max_batch_size):
    from knowbound.backends import get_backend

    backend = get_backend("hf", model=str(tiny_model_dir), max_batch_size=max_batch_size, threads=1)
    # Each prompt with repeated, empty and long answers, in a shuffled order: the probe's samples.
    answers = ["Oslo", "William Shakespeare", "", "Oslo", "It ended in 1945.", "the blue island of the north and the war"]
    pairs = [(p, a) for p in PROMPTS for a in answers]
    pairs = pairs[::3] + pairs[1::3] + pairs[2::3]
    prompts, texts = [p for p, _ in pairs], [a for _, a in pairs]
    fed: list[tuple[int, ...]] = []  # the input_ids shape of every forward pass
    hook = backend.model.register_forward_pre_hook(lambda _, args, kwargs: fed.append(tuple(kwargs["input_ids"].shape)),
                                                   with_kwargs=True)
    try:
        shared = backend.answer_states(prompts, texts)
        shared_calls, fed[:] = list(fed), []
        flat = backend.answer_states(prompts, texts, share_prompts=False)
    finally:
        hook.remove()
    if max_batch_size == 1024:
        # Each of the 4 prompts runs once; then their 4 distinct spoken answers each (16 rows: the
        # repeated "Oslo" runs once, the empty answer not at all), against one pass per pair's 24.
        assert [rows for rows, _ in shared_calls] == [4, 16]
        assert shared_calls[1][1] == max(len(backend.tokenizer(a, add_special_tokens=False)["input_ids"])
                                         for a in answers)  # the answers alone, not their prompt
        assert sum(rows for rows, _ in fed) == 24
    else:
        # Two answers per pass: each prompt's 4 distinct answers split over 2 prompt passes, each
        # followed by its answers' pass.
        assert max(rows for rows, _ in shared_calls) == 2 and len(shared_calls) == 2 * 4 * 2
    for s, f, (prompt, answer) in zip(shared, flat, pairs):
        assert len(s["token_logprobs"]) == len(f["token_logprobs"]) and (not s["token_logprobs"]) == (answer == "")
        assert s["token_logprobs"] == pytest.approx(f["token_logprobs"], abs=1e-4)
        assert torch.allclose(s["hidden"], f["hidden"], atol=1e-4)
    # Rows that repeat a pair hold equal values, not one shared object.
    same = [k for k, pair in enumerate(pairs) if pair == (PROMPTS[0], "Oslo")]
    assert len(same) == 2 and torch.equal(shared[same[0]]["hidden"], shared[same[1]]["hidden"])
    assert shared[same[0]]["token_logprobs"] is not shared[same[1]]["token_logprobs"]
    assert backend.answer_states([], []) == []


@pytest.mark.parametrize(("layers", "band"), [(1, (1, 1)), (2, (1, 1)), (4, (1, 3)), (12, (4, 8)), (30, (9, 21))])
def test_the_answer_band_is_the_middle_of_the_depth(layers, band):
    assert band_layers(layers) == band


def test_pik_head_learns_from_answer_states_and_withholds_below_its_threshold(hf_backend):
    import numpy as np

    from knowbound.pik import PikHead, feature_matrix, fit_head

    # A synthetic target the log-prob features carry: "right" answers are the likelier ones.
    prompts = [f"{PROMPTS[i % 4]} ({i})" for i in range(40)]
    answers = ["Oslo" if i % 2 else "the blue island of the north and the war" for i in range(40)]
    x = feature_matrix(hf_backend.answer_states(prompts, answers))
    labels = ["correct" if i % 2 else "wrong" for i in range(40)]
    head, oof = fit_head(x, labels, [i // 2 for i in range(40)])
    assert head.fit["oof_auroc"] > 0.9 and head.fit["features"] == "log-probabilities"
    by_features = head.fit["oof_auroc_by_features"]
    assert by_features["log-probabilities, l2 0.01"] == head.fit["oof_auroc"]
    assert set(by_features) == {"log-probabilities, l2 0.01", "log-probabilities + answer band, l2 0.1",
                                "log-probabilities + hidden states, l2 0.01", "log-probabilities + hidden states, l2 0.1",
                                "log-probabilities with pairwise products, l2 0.01",
                                "log-probabilities with pairwise products, l2 0.1",
                                "hidden states alone (diagnostic), l2 0.1"}
    assert head.columns == list(range(6))
    p = head.p_know(x)
    assert p[1::2].mean() > 0.8 and p[0::2].mean() < 0.2
    assert 0.0 < head.threshold < 1.0
    assert np.allclose(PikHead(**{**head.__dict__}).p_know(x), p)


# A chat template with a system prompt: every formatted prompt begins with the same tokens, which
# run once per batch (``SHARED_PREFIX_MIN``).
SYSTEM_TEXT = "Answer the question. If you know the answer to the question, it is appropriate to say"  # tiny words
SYSTEM_TEMPLATE = ("{% for message in messages %}<|system|>" + SYSTEM_TEXT + "<|user|>{{ message['content'] }}"
                   "{% endfor %}{% if add_generation_prompt %}<|assistant|>{% endif %}")


@pytest.fixture
def system_backend(tiny_model_dir):
    """The tiny model behind a chat template with a system prompt."""
    backend = get_backend("hf", model=str(tiny_model_dir), max_batch_size=1024, threads=1)
    backend.tokenizer.chat_template = SYSTEM_TEMPLATE
    return backend


def record_passes(backend):
    """The input_ids shape of every forward pass of ``backend``, and the hook to remove."""
    fed: list[tuple[int, ...]] = []
    hook = backend.model.register_forward_pre_hook(lambda _, args, kwargs: fed.append(tuple(kwargs["input_ids"].shape)),
                                                   with_kwargs=True)
    return fed, hook


def test_the_template_prefix_is_what_the_chat_template_puts_before_the_message(system_backend, hf_backend):
    prefix = system_backend.template_prefix()
    tok = system_backend.tokenizer
    assert prefix == tok(f"<|system|>{SYSTEM_TEXT}<|user|>", add_special_tokens=False)["input_ids"]
    assert tok.unk_token_id not in prefix
    assert all(ids[:len(prefix)] == prefix for ids in system_backend.encode_prompts(PROMPTS))
    # Without a system prompt the template puts "<|user|>" alone first: too short to run apart.
    assert hf_backend.template_prefix() == hf_backend.tokenizer.convert_tokens_to_ids(["<|user|>"])
    assert hf_backend._prefix_pad(hf_backend.encode_prompts(PROMPTS))[0] is None


def test_prefix_pad_splits_off_the_template_prefix_and_counts_positions_on(system_backend):
    import knowbound.backends.hf as hf

    p = len(system_backend.template_prefix())
    assert p >= hf.SHARED_PREFIX_MIN
    head = system_backend.template_prefix()
    seqs = [head + [1, 2, 3], head + [4], head + [5, 6]]
    prefix, ids, mask, positions = system_backend._prefix_pad(seqs)
    pad = system_backend.tokenizer.pad_token_id
    assert prefix.tolist() == [head]
    assert ids.tolist() == [[1, 2, 3], [pad, pad, 4], [pad, 5, 6]]
    assert mask.tolist() == [[1] * p + [1, 1, 1], [1] * p + [0, 0, 1], [1] * p + [0, 1, 1]]
    assert positions.tolist() == [[p, p + 1, p + 2], [p, p, p], [p, p, p + 1]]
    assert system_backend._prefix_pad(seqs[1:2])[0] is not None  # a single row too: no batch dependence
    # A row that keeps fewer than `keep` tokens after it, or does not begin with it: whole prompts.
    assert system_backend._prefix_pad(seqs, keep=[1, 2, 1])[0] is None
    assert system_backend._prefix_pad(seqs, keep=[3, 1, 2])[0] is not None
    assert system_backend._prefix_pad(seqs + [[7] + head])[0] is None


def test_the_template_prefix_runs_once_and_greedy_still_equals_model_generate(system_backend):
    p = len(system_backend.template_prefix())
    fed, hook = record_passes(system_backend)
    try:
        out = system_backend.generate(PROMPTS, SamplingParams(n=2, temperature=0.0, max_new_tokens=6))
    finally:
        hook.remove()
    # The system prompt on one row, then the 4 prompts' rest (not the whole prompt), then decoding.
    longest = max(len(s) for s in system_backend.encode_prompts(PROMPTS))
    assert fed[0] == (1, p) and fed[1] == (4, longest - p)
    assert [[c.text for c in o] for o in out] == [[reference_greedy(system_backend, q, 6)] * 2 for q in PROMPTS]


def test_with_the_template_prefix_samples_still_do_not_depend_on_batch_mates(system_backend):
    params = SamplingParams(n=4, temperature=1.0, max_new_tokens=8, seed=11)
    alone = system_backend.generate([PROMPTS[1]], params)[0]
    crowded = system_backend.generate([PROMPTS[2], PROMPTS[1], PROMPTS[0]], params)[1]
    assert [c.text for c in alone] == [c.text for c in crowded]


def test_the_template_prefix_scores_and_states_as_a_full_pass_does(system_backend, monkeypatch):
    import knowbound.backends.hf as hf

    continuations = [["Oslo", "the Nile river"], ["William Shakespeare"], ["no"], ["It ended in 1945."]]
    answers = ["Oslo", "", "It ended in 1945.", "the blue island of the north"]
    fed, hook = record_passes(system_backend)
    try:
        scored = system_backend.logprobs_of(PROMPTS, continuations)
        score_calls, fed[:] = list(fed), []
        states = system_backend.answer_states(PROMPTS, answers)
        state_calls = list(fed)
    finally:
        hook.remove()
    p = len(system_backend.template_prefix())
    assert score_calls[0] == (1, p) and state_calls[0] == (1, p)  # the prefix, on one row
    monkeypatch.setattr(hf, "SHARED_PREFIX_MIN", 10**6)  # every pass over whole prompts
    whole = system_backend.logprobs_of(PROMPTS, continuations)
    flat = system_backend.answer_states(PROMPTS, answers, share_prompts=False)
    for got, ref in zip(scored, whole):
        assert got == pytest.approx(ref, abs=1e-4)
    for st, f in zip(states, flat):
        assert st["token_logprobs"] == pytest.approx(f["token_logprobs"], abs=1e-4)
        assert torch.allclose(st["hidden"], f["hidden"], atol=1e-4)


@pytest.mark.parametrize(("batch", "budget_rows"), [(1024, None), (2, None), (1024, 12)])
def test_entity_logprobs_are_the_entitys_tokens_in_the_formatted_prompt(hf_backend, monkeypatch, batch, budget_rows):
    """The pair is (the entity's tokens after its first, summed; its first token), read from
    batched, left-padded passes (whole, in pairs, or split by the logit budget); each equals an
    unpadded pass over that prompt alone at the entity's own tokens (its last occurrence), and
    repeated pairs agree."""
    from knowbound.backends import hf

    monkeypatch.setattr(hf_backend, "max_batch_size", batch)
    vocab = hf_backend.model.get_output_embeddings().weight.shape[0]
    if budget_rows is not None:  # room for about one row of 12 tokens at a time
        monkeypatch.setattr(hf, "LOGIT_BUDGET", budget_rows * vocab)
    prompts = [PROMPTS[0], PROMPTS[2], "Where was Hamlet born, and who was Hamlet?", PROMPTS[0], PROMPTS[1]]
    entities = ["Norway", "river flows through Cairo", "Hamlet", "Norway", "wrote Hamlet"]  # a word is a token
    got = hf_backend.entity_logprobs(prompts, entities)
    tok = hf_backend.tokenizer
    for (prompt, entity), (rest, first) in zip(zip(prompts, entities), got):
        ids = tok(hf_backend.format_prompt(prompt), add_special_tokens=not hf_backend.chat)["input_ids"]
        own = tok(entity, add_special_tokens=False)["input_ids"]
        at = max(i for i in range(len(ids) - len(own) + 1) if ids[i:i + len(own)] == own)
        with torch.no_grad():
            logp = hf_backend.model(input_ids=torch.tensor([ids])).logits[0].float().log_softmax(-1)
        lps = [float(logp[i - 1, ids[i]]) for i in range(at, at + len(own))]
        assert len(lps) == len(entity.split())
        assert first == pytest.approx(lps[0], abs=1e-4) and rest == pytest.approx(sum(lps[1:]), abs=1e-4)
        assert first < 0 and (rest < 0) == (len(lps) > 1)
    assert got[0] == got[3]
    with pytest.raises(Exception, match="'Oslo' does not occur in its prompt"):
        hf_backend.entity_logprobs([PROMPTS[0]], ["Oslo"])


@pytest.mark.parametrize("chat", [True, False])
def test_answer_logprobs_after_read_the_tails_tokens(hf_backend, monkeypatch, chat):
    """The tail's tokens after the formatted prompt and the head, summed, from batched passes; each
    equals an unpadded pass over the whole text at the tail's last words (a word is a token here),
    with and without the chat template (where the first answer token takes the prompt's space)."""
    monkeypatch.setattr(hf_backend, "max_batch_size", 2)
    monkeypatch.setattr(hf_backend, "chat", chat)
    prompts = [PROMPTS[0], PROMPTS[1], PROMPTS[3], PROMPTS[0], "Q: Who wrote Hamlet?\nA: "]
    heads = ["the capital of Norway", "Hamlet", "", "Norway", ""]
    tails = [" is Oslo", "", "the war ended in the north", "", "Hamlet"]
    got = hf_backend.answer_logprobs_after(prompts, heads, tails)
    tok = hf_backend.tokenizer
    for prompt, head, tail, value in zip(prompts, heads, tails, got):
        ids = tok(hf_backend.format_prompt(prompt) + head + tail, add_special_tokens=not chat)["input_ids"]
        n = len(tail.split())
        with torch.no_grad():
            logp = hf_backend.model(input_ids=torch.tensor([ids])).logits[0].float().log_softmax(-1)
        expected = sum(float(logp[i - 1, ids[i]]) for i in range(len(ids) - n, len(ids))) if n else 0.0
        assert value == pytest.approx(expected, abs=1e-4)
    assert got[1] == 0.0 and got[3] == 0.0 and got[0] < 0 and got[2] < 0 and got[4] < 0


def test_a_local_model_path_that_does_not_exist_is_named_as_such(tmp_path):
    from knowbound.errors import KnowboundError

    missing = tmp_path / "no-such-model"
    with pytest.raises(KnowboundError, match=f"^cannot load model '{missing}': no such file or directory$"):
        get_backend("hf", model=str(missing))
