"""The public Python API, used the way a notebook would: ``import knowbound`` and nothing else."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

import knowbound

ROOT = Path(__file__).resolve().parents[1]


def _python(code: str) -> str:
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()


def test_import_is_lazy_and_help_imports_no_model_library():
    # The API module loads on first use; --help loads neither it nor torch.
    assert _python("import sys, knowbound; print('knowbound.api' in sys.modules)") == "False"
    assert _python("import sys, knowbound; knowbound.run; print('knowbound.api' in sys.modules)") == "True"
    code = ("import contextlib, io, sys\nfrom knowbound.cli import main\n"
            "with contextlib.redirect_stdout(io.StringIO()), contextlib.suppress(SystemExit):\n"
            "    main(['--help'])\n"
            "print(sorted(m for m in ('torch', 'transformers', 'trl', 'knowbound.api') if m in sys.modules))")
    assert _python(code) == "[]"


def test_unknown_attribute_is_an_attribute_error():
    with pytest.raises(AttributeError):
        knowbound.no_such_thing  # noqa: B018


ROWS = [
    {"id": "1", "question": "Capital of France?", "answers": ["Paris"], "pred_text": "Paris."},
    {"id": "2", "question": "Capital of Peru?", "answers": ["Lima"], "pred_text": "I don't know."},
    {"id": "3", "question": "Capital of Chad?", "answers": ["N'Djamena"], "pred_text": "Abuja."},
    {"id": "4", "question": "Capital of Laos?", "answers": ["Vientiane"], "pred_text": "I don't know."},
]
REFERENCE = [dict(r, pred_text=t) for r, t in zip(ROWS, ("Paris.", "Cusco.", "Abuja.", "Vientiane."))]


def test_score_rows_and_files_agree(tmp_path):
    result = knowbound.score(ROWS, REFERENCE, n_bootstrap=0)
    assert (result["accuracy"], result["idk"], result["n"]) == (0.25, 0.5, 4)
    # Reference: 2 correct (1, 4), of which 4 became idk; 2 not correct (2, 3), of which 2 became idk.
    assert result["over_conservativeness"] == 0.5 and result["prudence"] == 0.5 and result["honesty"] == 0.5
    for name, rows in (("new", ROWS), ("ref", REFERENCE)):
        (tmp_path / f"{name}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    from_files = knowbound.score(tmp_path / "new.jsonl", reference=str(tmp_path / "ref.jsonl"), n_bootstrap=0)
    assert {k: from_files[k] for k in ("accuracy", "honesty", "transitions")} == {
        k: result[k] for k in ("accuracy", "honesty", "transitions")}


def test_score_takes_the_thresholds_of_the_threshold_score(tmp_path):
    # 1 right, 2 refused, 1 wrong of 4: (1 - t / (1 - t)) / 4
    scores = knowbound.score(ROWS, n_bootstrap=0)["threshold_score"]
    assert scores == pytest.approx({"0.5": 0.0, "0.75": -0.5, "0.9": -2.0})
    (tmp_path / "new.jsonl").write_text("".join(json.dumps(r) + "\n" for r in ROWS))
    assert knowbound.score(tmp_path / "new.jsonl", n_bootstrap=0, thresholds=[0.8])["threshold_score"] == {
        "0.8": pytest.approx(-0.75)}


def test_load_questions_normalises_rows(tmp_path):
    path = tmp_path / "q.jsonl"
    path.write_text(json.dumps({"question": "Capital of France?", "answers": ["Paris", "Paname"]}) + "\n")
    loaded = knowbound.load_questions(path)
    assert [(q.question, q.answers) for q in loaded.questions] == [("Capital of France?", ("Paris", "Paname"))]


@pytest.mark.model
def test_run_the_micro_config_from_python(micro_world, tmp_path):
    overrides = [f"runs_dir={tmp_path}", f"model.world_dir={micro_world}"]
    partial = knowbound.run(ROOT / "configs" / "micro.yaml", overrides, until="label", log=lambda _: None)
    assert partial.metrics is None and list(partial.stages) == ["questions", "probe", "label"]
    assert partial.run_dir == tmp_path / "micro" and (partial.run_dir / "knowledge.jsonl").exists()

    result = knowbound.run(str(ROOT / "configs" / "micro.yaml"), overrides, log=lambda _: None)
    assert isinstance(result, knowbound.RunResult)
    assert [s for s, r in result.stages.items() if r.status == "skipped"] == ["questions", "probe", "label"]
    assert set(result.metrics) == {"unaligned", "prompt", "absolute", "rtuning", "always-abstain", "oracle",
                                   "exposure-rule", "max-probability", "self-consistency"}
    fictional = {m: result.metrics[m]["fictional"]["refusal_rate"] for m in ("unaligned", "absolute")}
    assert fictional["absolute"] > fictional["unaligned"]
    assert result.report == result.run_dir / "report.html"

    again = knowbound.run(ROOT / "configs" / "micro.yaml", overrides, log=lambda _: None)
    assert all(r.status == "skipped" and not r.ran for r in again.stages.values())
    assert again.metrics == result.metrics

    html, md = knowbound.write_report(result.run_dir)
    assert (html.name, md.name) == ("report.html", "report.md") and "absolute" in md.read_text()
    test_set = knowbound.load_questions(result.run_dir / "questions" / "test.jsonl")
    assert len(test_set.questions) == result.metrics["absolute"]["test"]["n"]
    backend = knowbound.get_backend("hf", model=str(result.run_dir / "models" / "absolute"), threads=1)
    question = test_set.questions[0]
    prediction = json.loads((result.run_dir / "predictions" / "absolute" / "test.jsonl").open().readline())
    from knowbound.types import SamplingParams  # a record type, for the backend's one method

    prompt = "Q: " + question.question + "\nA: "
    [[completion]] = backend.generate([prompt], SamplingParams(n=1, temperature=0.0, max_new_tokens=40))
    assert completion.text == prediction["pred_text"]
