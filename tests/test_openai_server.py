"""The openai backend against a real local HTTP server with injected faults."""

from __future__ import annotations

import json

import pytest

from knowbound.backends import RetryPolicy, get_backend
from knowbound.cli import main
from knowbound.errors import KnowboundError
from knowbound.testing.server import ChatServer, Faults
from knowbound.types import SamplingParams

FAST = RetryPolicy(max_attempts=5, backoff_base=0.01, backoff_max=0.02)
ANSWERS = {"Norway": "Oslo", "Hamlet": "William Shakespeare", "Cairo": "The Nile"}
PROMPTS = ["Capital of Norway?", "Who wrote Hamlet?", "Which river flows through Cairo?"]
EXPECTED = ["Oslo", "William Shakespeare", "The Nile"]


def backend_for(server, **options):
    options.setdefault("retry", FAST)
    return get_backend("openai", model="test-model", base_url=server.base_url, **options)


def texts(out):
    return [[c.text for c in o] for o in out]


@pytest.mark.parametrize("faults", [
    Faults(fail_first=4),  # HTTP 500s
    Faults(fail_first=3, fail_status=429, retry_after=0.05),  # rate limited
    Faults(drop_every=2),  # every other request: socket closed, no response
    Faults(fail_every=3, fail_status=503),
], ids=["500", "429", "dropped", "every-3rd-503"])
def test_injected_faults_are_retried_and_results_complete(faults):
    with ChatServer(replies=ANSWERS, faults=faults) as server:
        backend = backend_for(server, concurrency=2)
        out = backend.generate(PROMPTS, SamplingParams(n=3, temperature=1.0, seed=0))
    assert texts(out) == [[e] * 3 for e in EXPECTED]
    assert all(c.finish_reason == "stop" for o in out for c in o)
    assert backend.stats["retries"] >= 1 and backend.stats["failed_requests"] == 0


def test_retry_after_is_waited_for():
    waits: list[float] = []
    with ChatServer(replies=ANSWERS, faults=Faults(fail_first=2, fail_status=429, retry_after=3)) as server:
        backend = backend_for(server, concurrency=1, sleep=waits.append)
        out = backend.generate(PROMPTS[:1], SamplingParams(n=1))
    assert texts(out) == [["Oslo"]]
    # Two waits of the server's Retry-After (3 s, plus at most 10% jitter), not the 0.01 s backoff.
    assert len(waits) == 2 and all(3.0 <= w <= 3.3 for w in waits)


def test_unanswered_requests_time_out_and_are_retried():
    # The first request never gets an answer; the client gives up after its timeout and asks again.
    with ChatServer(replies=ANSWERS, faults=Faults(hang_first=1)) as server:
        backend = backend_for(server, concurrency=1, timeout=2.0)
        out = backend.generate(PROMPTS[:1], SamplingParams(n=2))
        assert server.count == 2
    assert texts(out) == [["Oslo", "Oslo"]]
    assert backend.stats["retries"] == 1


def test_fewer_choices_than_n_are_topped_up():
    with ChatServer(replies=ANSWERS, faults=Faults(max_choices=2)) as server:
        backend = backend_for(server)
        out = backend.generate(PROMPTS, SamplingParams(n=5, temperature=1.0, seed=1))
        asked = sorted(body["n"] for body in server.requests)
    assert texts(out) == [[e] * 5 for e in EXPECTED]
    assert asked == [1, 1, 1, 3, 3, 3, 5, 5, 5]


def test_a_request_that_keeps_failing_is_an_error_and_counted():
    with ChatServer(replies=ANSWERS, faults=Faults(fail_every=1, fail_status=502)) as server:
        backend = backend_for(server)
        out = backend.generate(PROMPTS[:2], SamplingParams(n=2))
        requests = server.count
    assert all(c.failed and c.text == "" for o in out for c in o)
    assert out[0][0].error.startswith("HTTP 502") and "gave up after 5 attempts" in out[0][0].error
    assert backend.stats["failed_requests"] == 2 and requests == 10


def test_client_errors_other_than_429_are_not_retried():
    with ChatServer(replies=ANSWERS, faults=Faults(fail_every=1, fail_status=400)) as server:
        out = backend_for(server).generate(PROMPTS[:1], SamplingParams(n=1))
        assert server.count == 1
    assert out[0][0].failed and "HTTP 400" in out[0][0].error


def test_request_carries_the_sampling_parameters():
    with ChatServer(replies=ANSWERS) as server:
        backend_for(server, logprobs=True).generate(
            PROMPTS[:1], SamplingParams(n=2, temperature=0.7, top_p=0.9, max_new_tokens=33, stop=("\n",), seed=5))
        body = server.requests[0]
    assert body["messages"] == [{"role": "user", "content": PROMPTS[0]}]
    assert (body["model"], body["n"], body["temperature"], body["top_p"], body["max_tokens"], body["stop"]) == (
        "test-model", 2, 0.7, 0.9, 33, ["\n"])
    assert isinstance(body["seed"], int) and body["logprobs"] is True


def test_extra_body_fields_reach_the_server_but_cannot_replace_knowbounds_own():
    with ChatServer(replies=ANSWERS) as server:
        backend_for(server, extra_body={"top_k": 0, "min_p": 0.0, "repeat_penalty": 1.0}).generate(
            PROMPTS[:1], SamplingParams(n=1, temperature=1.0, max_new_tokens=8, seed=1))
        body = server.requests[0]
    assert (body["top_k"], body["min_p"], body["repeat_penalty"], body["temperature"]) == (0, 0.0, 1.0, 1.0)
    with pytest.raises(KnowboundError, match="extra_body may not set n, temperature"):
        get_backend("openai", model="m", base_url="http://127.0.0.1:9/v1", extra_body={"temperature": 0, "n": 3})


def test_sample_cli_sends_extra_body_and_rejects_a_non_object(tmp_path, capsys):
    questions = tmp_path / "q.jsonl"
    questions.write_text('{"id": "1", "question": "Capital of Norway?", "answers": ["Oslo"]}\n')
    with ChatServer(replies=ANSWERS) as server:
        rc = main(["sample", "--backend", "openai", "--model", "m", "--base-url", server.base_url,
                   "--questions", str(questions), "--n", "2", "--extra-body", '{"top_k": 0}',
                   "--out", str(tmp_path / "s.jsonl")])
        bodies = list(server.requests)
    assert rc == 0 and bodies and all(b["top_k"] == 0 for b in bodies)
    with pytest.raises(SystemExit) as exc:
        main(["sample", "--backend", "openai", "--model", "m", "--questions", str(questions),
              "--extra-body", "[1]", "--out", str(tmp_path / "t.jsonl")])
    assert exc.value.code == 2 and "must be a JSON object, got list" in capsys.readouterr().err


@pytest.mark.model
def test_model_backed_server_matches_the_hf_backend(hf_backend):
    params = SamplingParams(n=1, temperature=0.0, max_new_tokens=8)
    direct = hf_backend.generate(PROMPTS, params)
    with ChatServer(backend=hf_backend) as server:
        via_http = backend_for(server, logprobs=True).generate(PROMPTS, params)
    assert texts(via_http) == texts(direct)
    assert [o[0].logprob for o in via_http] == pytest.approx([o[0].logprob for o in direct])


def test_api_key_is_sent_but_never_written_or_printed(tmp_path, monkeypatch, capsys):
    secret = "sk-test-very-secret-1234567890"
    monkeypatch.setenv("KB_TEST_KEY", secret)
    questions = tmp_path / "questions.jsonl"
    questions.write_text("".join(json.dumps({"id": f"q{k}", "question": p, "answers": [e]}) + "\n"
                                 for k, (p, e) in enumerate(zip(PROMPTS, EXPECTED))))
    out = tmp_path / "samples.jsonl"
    with ChatServer(replies=ANSWERS, api_key=secret) as server:
        code = main(["sample", "--backend", "openai", "--model", "m", "--base-url", server.base_url,
                     "--api-key-env", "KB_TEST_KEY", "--questions", str(questions), "--out", str(out),
                     "--n", "2", "--greedy", "--prompt", "bare", "--no-progress"])
        backend = backend_for(server, api_key_env="KB_TEST_KEY")
        assert secret not in repr(backend) and secret not in str(vars(backend).get("api_key_env"))
    captured = capsys.readouterr()
    assert code == 0
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert [r["text"] for r in rows] == [e for e in EXPECTED for _ in range(3)]  # the server accepted the key
    assert secret not in captured.out + captured.err
    for path in tmp_path.rglob("*"):
        if path.is_file():
            assert secret not in path.read_text(errors="replace")


def test_wrong_api_key_is_a_recorded_failure(monkeypatch):
    monkeypatch.setenv("KB_TEST_KEY", "sk-wrong")
    with ChatServer(replies=ANSWERS, api_key="sk-right") as server:
        out = backend_for(server, api_key_env="KB_TEST_KEY").generate(PROMPTS[:1], SamplingParams(n=1))
        assert server.count == 0  # rejected before counting, and 401 is not retried
    assert out[0][0].failed and out[0][0].error.startswith("HTTP 401") and "sk-wrong" not in out[0][0].error
