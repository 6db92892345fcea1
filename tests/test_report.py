"""The report: the numbers it shows, the figures it draws, what it escapes, how it degrades."""

from __future__ import annotations

import base64
import json
import re
import shutil
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest
import yaml

from knowbound.cli import main
from knowbound.io import read_jsonl, write_jsonl
from knowbound.metrics import ece
from knowbound.report import write_report
from knowbound.report.analysis import confidence_rows, exposure_curves, reliability
from knowbound.report.data import MODEL_ORDER, RunData, load_run, ordered
from knowbound.testing.fake_run import DEFAULT_METHODS, INJECTION, make_fake_run

# One column group per set role: test in-domain, paraphrase out-of-distribution, fictional
# unanswerable, popular known (the fake run's rows name no person's exposure: no seen-people column).
SUMMARY_COLUMNS = [
    "model", "prudence (test)", "over-conservativeness (test)", "honesty (test)", "accuracy (test)",
    "damage: right → wrong (test)", "refusal AUROC within exposure 1-7 (test)", "ECE (test)",
    "honesty (paraphrase)", "accuracy (paraphrase)", "refusal rate (fictional)", "refusal rate (popular)",
    "accuracy (popular)",
]
EXPECTED_FIGURES = (
    ["fig-honesty", "fig-exposure", "fig-risk-coverage"]
    + [f"fig-transitions-{m}" for m in DEFAULT_METHODS]
    + ["fig-reliability-confidence-verb", "fig-reliability-rtuning"]
)


class _Tables(HTMLParser):
    """Text of the cells of every table with an id: {id: [[cell, ...], ...]} (``<br>`` -> space)."""

    def __init__(self):
        super().__init__()
        self.tables: dict[str, list[list[str]]] = {}
        self._table: list[list[str]] | None = None
        self._cell: list[str] | None = None

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "table" and attrs.get("id"):
            self._table = self.tables.setdefault(attrs["id"], [])
        elif tag == "tr" and self._table is not None:
            self._table.append([])
        elif tag in ("td", "th") and self._table is not None:
            self._cell = []
        elif tag == "br" and self._cell is not None:
            self._cell.append(" ")

    def handle_endtag(self, tag):
        if tag in ("td", "th") and self._cell is not None:
            self._table[-1].append("".join(self._cell).strip())
            self._cell = None
        elif tag == "table":
            self._table = None

    def handle_data(self, data):
        if self._cell is not None:
            self._cell.append(data)


def tables_of(html: str) -> dict[str, list[list[str]]]:
    parser = _Tables()
    parser.feed(html)
    return parser.tables


def by_model(table: list[list[str]]) -> dict[str, dict[str, str]]:
    header, *rows = table
    return {row[0]: dict(zip(header, row)) for row in rows}


def expected(metrics: dict, key: str, ci_key: str | None = None) -> str:
    """A metric as the report must print it: 3 decimals, then the interval to 2."""
    low, high = metrics["ci"][ci_key or key]
    return f"{metrics[key]:.3f} [{low:.2f}, {high:.2f}]"


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    run_dir = make_fake_run(tmp_path_factory.mktemp("report") / "run", seed=0)
    html_path, md_path = write_report(run_dir)
    return {
        "dir": run_dir, "html_path": html_path, "md_path": md_path,
        "html": html_path.read_text(encoding="utf-8"), "md": md_path.read_text(encoding="utf-8"),
        "metrics": json.loads((run_dir / "metrics.json").read_text()),
    }


def test_write_report_writes_both_files_into_the_run(report):
    assert report["html_path"] == report["dir"] / "report.html"
    assert report["md_path"] == report["dir"] / "report.md"
    assert report["html"].startswith("<!DOCTYPE html>")


def test_summary_table_holds_metrics_json_numbers_with_intervals(report):
    m = report["metrics"]
    table = tables_of(report["html"])["table-summary"]
    assert table[0] == SUMMARY_COLUMNS
    rows = by_model(table)
    assert list(rows) == ["unaligned", "absolute", "confidence-verb", "rtuning", "dpo"]
    absolute = rows["absolute"]
    assert absolute["honesty (test)"] == expected(m["absolute"]["test"], "honesty")
    assert absolute["prudence (test)"] == expected(m["absolute"]["test"], "prudence")
    assert absolute["honesty (paraphrase)"] == expected(m["absolute"]["paraphrase"], "honesty")
    assert absolute["refusal rate (popular)"] == expected(m["absolute"]["popular"], "refusal_rate", "idk")
    # refusal_rate has no interval of its own: the idk share's is the same quantity.
    assert rows["dpo"]["refusal rate (fictional)"] == expected(m["dpo"]["fictional"], "refusal_rate", "idk")
    assert rows["rtuning"]["ECE (test)"] == f"{m['rtuning']['test']['ece']:.3f}"
    assert absolute["ECE (test)"] == "–"  # absolute states no confidence


def test_per_set_tables_derive_columns_from_metrics(report):
    tables = tables_of(report["html"])
    for set_name in ("test", "paraphrase", "fictional", "popular"):
        assert f"table-set-{set_name}" in tables
    test = by_model(tables["table-set-test"])
    assert test["absolute"]["n"] == "60"
    assert test["absolute"]["refusal AUROC"] == f"{report['metrics']['absolute']['test']['refusal_auroc']:.3f}"
    assert test["dpo"]["AURC"] == "–"
    assert test["rtuning"]["AURC"] == f"{report['metrics']['rtuning']['test']['aurc']:.3f}"


def test_every_expected_figure_is_an_inline_png(report):
    html = report["html"]
    for fig_id in EXPECTED_FIGURES:
        match = re.search(rf'<figure id="{fig_id}"><img src="data:image/png;base64,([A-Za-z0-9+/=]+)"', html)
        assert match, fig_id
        assert base64.b64decode(match.group(1))[:8] == b"\x89PNG\r\n\x1a\n"
    assert sorted(re.findall(r'<figure id="([^"]+)"', html)) == sorted(EXPECTED_FIGURES)


def test_page_makes_no_network_request(report):
    html = report["html"]
    assert not re.search(r"""(?:src|href)\s*=\s*["']?\s*(?:https?:)?//""", html, re.I)
    assert not re.search(r"url\(\s*['\"]?\s*(?:https?:)?//", html, re.I)
    assert re.findall(r'<img [^>]*src="([^":]*):', html) == ["data"] * html.count("<img ")
    assert "<script" not in html and "<link" not in html
    assert "default-src 'none'" in html  # and the page's policy forbids requests anyway


def test_model_output_is_escaped(report):
    # The fake run puts a script tag into the first `absolute` answer on `test`; it is shown
    # among that cell's examples, as text.
    assert INJECTION not in report["html"]
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in report["html"]
    assert INJECTION not in report["md"]
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in report["md"]


def test_markdown_has_the_summary_table_and_linked_pngs(report):
    m = report["metrics"]
    md = report["md"]
    assert "| " + " | ".join(SUMMARY_COLUMNS) + " |" in md
    row = next(line for line in md.splitlines() if line.startswith("| absolute |"))
    assert f"| {expected(m['absolute']['test'], 'honesty')} |" in row
    links = re.findall(r"\]\((report_files/[^)]+\.png)\)", md)
    assert sorted(Path(link).stem for link in links) == sorted(EXPECTED_FIGURES)
    for link in links:
        assert (report["dir"] / link).read_bytes()[:4] == b"\x89PNG"


def test_run_section_shows_config_versions_and_timings(report):
    html = report["html"]
    assert "confidence-verb" in html and "world/chat-model" in html  # config.yaml, verbatim
    versions = dict(tables_of(html)["table-versions"][1:])
    assert versions["libraries.torch"] == "2.13.0" and versions["git"] == "null"
    stages = by_model(tables_of(html)["table-stages"])
    assert stages["train"]["time"] == "10 min 40 s"
    assert stages["eval"]["finished"] == "2025-01-01T12:30:00+00:00"
    probe = dict(tables_of(html)["table-probe"][1:])
    summary = json.loads((report["dir"] / "probe.json").read_text())
    assert probe["auroc_expected_accuracy_seen"] == f"{summary['auroc_expected_accuracy_seen']:.3f}"
    assert probe["categories.Unknown"] == str(summary["categories"]["Unknown"])


def test_same_run_gives_identical_bytes(report, tmp_path):
    again = make_fake_run(tmp_path / "run", seed=0)
    for name in ("metrics.json", "predictions/absolute/test.jsonl", "config.yaml", "manifest.json"):
        assert (again / name).read_bytes() == (report["dir"] / name).read_bytes(), name
    html_path, md_path = write_report(again)
    assert html_path.read_bytes() == report["html_path"].read_bytes()
    assert md_path.read_bytes() == report["md_path"].read_bytes()


def test_missing_optional_files_become_notes(tmp_path):
    run_dir = make_fake_run(tmp_path / "run", seed=1, n_per_set=30, sets=("test",))
    (run_dir / "probe.json").unlink()
    (run_dir / "manifest.json").unlink()
    shutil.rmtree(run_dir / "predictions" / "dpo")
    html = write_report(run_dir)[0].read_text()
    assert "probe.json not found" in html and "manifest.json not found" in html
    assert "No predictions for: dpo" in html
    assert 'id="fig-transitions-dpo"' in html  # transitions come from metrics.json, still there
    assert "dpo: no predictions on &#x27;test&#x27;" in html
    assert "No confidence on &#x27;test&#x27; (left out): unaligned, absolute, dpo." in html
    # The summary shows the sets the run has: no columns for sets it did not evaluate.
    header = tables_of(html)["table-summary"][0]
    assert header[1] == "prudence (test)" and not [h for h in header if "paraphrase" in h or "fictional" in h]


def _drop_exposure(path: Path) -> None:
    rows = read_jsonl(path)
    for row in rows:
        row["meta"] = {}
    write_jsonl(path, rows)


def test_real_dataset_run_gets_one_table_per_set(tmp_path):
    run_dir = make_fake_run(tmp_path / "run", seed=2, n_per_set=30, methods=("absolute", "rtuning"),
                            sets=("triviaqa", "puqa"))
    for path in [*run_dir.glob("predictions/*/*.jsonl"), *run_dir.glob("questions/*.jsonl")]:
        _drop_exposure(path)
    html = write_report(run_dir)[0].read_text()
    tables = tables_of(html)
    # One column group per role: TriviaQA in-domain, PUQA unanswerable (only a refusal is right).
    assert tables["table-summary"][0] == ["model", "prudence (triviaqa)", "over-conservativeness (triviaqa)",
                                          "honesty (triviaqa)", "accuracy (triviaqa)",
                                          "damage: right → wrong (triviaqa)",
                                          "refusal AUROC within exposure 1-7 (triviaqa)", "ECE (triviaqa)",
                                          "refusal rate (puqa)"]
    assert {"table-set-triviaqa", "table-set-puqa"} <= set(tables)
    assert "figures on &#x27;triviaqa&#x27;" in html
    assert 'id="fig-transitions-rtuning"' in html and 'id="fig-reliability-rtuning"' in html
    assert 'id="fig-exposure"' not in html and "no boundary plot" in html


def test_run_without_metrics_or_predictions_still_reports(tmp_path):
    (tmp_path / "run").mkdir()
    html_path, md_path = write_report(tmp_path / "run")
    assert "metrics.json not found" in html_path.read_text()
    assert "predictions/ not found" in md_path.read_text()


def test_reliability_bins_reproduce_metrics_ece():
    rng = np.random.default_rng(0)
    conf = np.r_[rng.uniform(0, 1, 300), [0.0, 1.0, 1.0]]
    correct = rng.uniform(0, 1, conf.size) < conf
    rel = reliability(conf, correct, n_bins=10)
    filled = rel.counts > 0
    from_bins = np.sum(rel.counts[filled] / conf.size * np.abs(rel.accuracy[filled] - rel.confidence[filled]))
    assert rel.counts.sum() == conf.size and rel.counts[-1] >= 2  # 1.0 falls in the last bin
    assert from_bins == pytest.approx(ece(conf, correct, 10)) == pytest.approx(rel.ece)


def test_confidence_rows_keep_only_stated_confidences():
    conf, correct = confidence_rows([{"confidence": 0.5, "correct": True}, {"confidence": None, "correct": True},
                                     {"confidence": True, "correct": False}, {"confidence": 0.9}])
    assert conf.tolist() == [0.5, 0.9] and correct.tolist() == [True, False]


def test_exposure_curves_group_high_exposures_and_use_question_meta(tmp_path):
    def row(i, label, exposure=None):
        return {"id": f"q{i}", "label": label, "meta": {} if exposure is None else {"exposure": exposure}}

    run = RunData(path=tmp_path)
    run.questions = {"test": {"q3": {"id": "q3", "meta": {"exposure": 12}}}}
    run.predictions = {
        "unaligned": {"test": [row(0, "wrong", 0), row(1, "correct", 8), row(2, "wrong", 9), row(3, "correct")]},
        "absolute": {"test": [row(0, "idk", 0), row(1, "correct", 8), row(2, "idk", 9), row(3, "idk")]},
    }
    curves = exposure_curves(run, "test")
    assert curves.buckets == ("0", "8+") and curves.counts == (1, 3)
    assert curves.refusal["absolute"] == [1.0, pytest.approx(2 / 3)]
    assert curves.refusal["unaligned"] == [0.0, 0.0]
    assert curves.unaligned_error == [1.0, pytest.approx(1 / 3)]


def test_models_and_sets_follow_the_report_order():
    assert ordered(["dpo", "zeta", "unaligned", "alpha", "absolute"], MODEL_ORDER) == [
        "unaligned", "absolute", "dpo", "alpha", "zeta"]
    run = RunData(path=Path("."), metrics={"unaligned": {"puqa": {}, "triviaqa": {}, "train": {}},
                                       "absolute": {"puqa": {}, "triviaqa": {"transitions": {}}}})
    assert run.sets == ["triviaqa", "puqa"] and run.main_set == "triviaqa"


def test_cli_report_command(tmp_path, capsys):
    run_dir = make_fake_run(tmp_path / "run", seed=3, n_per_set=20, methods=("absolute",), sets=("test",))
    assert main(["report", str(run_dir)]) == 0
    assert str(run_dir / "report.html") in capsys.readouterr().out
    assert main(["report", str(tmp_path / "missing")]) == 1
    assert "not a run directory" in capsys.readouterr().err


def test_cli_and_report_package_do_not_import_matplotlib():
    code = ("import sys, knowbound.cli, knowbound.report, knowbound.commands.report; "
            "knowbound.cli.build_parser('report'); assert 'matplotlib' not in sys.modules, 'imported'")
    subprocess.run([sys.executable, "-c", code], check=True)


def test_load_run_reads_what_the_fake_run_wrote(report):
    run = load_run(report["dir"])
    assert run.models == ["unaligned", "absolute", "confidence-verb", "rtuning", "dpo"]
    assert run.sets == ["test", "paraphrase", "fictional", "popular"] and run.main_set == "test"
    assert run.notes == [] and run.probe is not None and run.config_text


def test_fake_run_predictions_rescore_to_its_metrics(report):
    from knowbound.scoring import score_files

    metrics = report["metrics"]
    for model in ("absolute", "confidence-verb"):
        pred = report["dir"] / "predictions" / model / "test.jsonl"
        ref = report["dir"] / "predictions" / "unaligned" / "test.jsonl"
        again = score_files(pred, ref, n_bootstrap=200, seed=0)
        for key in ("accuracy", "honesty", "prudence", "over_conservativeness", "transitions", "ece", "aurc"):
            assert again.get(key) == metrics[model]["test"].get(key), (model, key)
        # metrics.json resamples people (every row names one), `knowbound score` rows: the same
        # intervals come back when the rows are resampled by person as well.
        rows = read_jsonl(pred)
        ref_rows = {r["id"]: r for r in read_jsonl(ref)}
        from knowbound.metrics import bootstrap_ci

        ci = bootstrap_ci([r["label"] for r in rows], [r["correct"] for r in rows],
                          [ref_rows[r["id"]]["label"] for r in rows], n_resamples=200, seed=0,
                          clusters=[r["meta"]["person"] for r in rows])
        assert {k: list(v) for k, v in ci.items()} == metrics[model]["test"]["ci"]
        assert again["ci"] != metrics[model]["test"]["ci"]


def test_ece_bins_come_from_the_run_config(tmp_path):
    assert RunData(path=tmp_path, config_text="eval:\n  ece_bins: 10\n").ece_bins == 10
    assert RunData(path=tmp_path, config_text="eval: [unclosed\n").ece_bins == 15
    assert RunData(path=tmp_path).ece_bins == 15


def test_rerun_removes_figures_no_longer_drawn(tmp_path):
    run_dir = make_fake_run(tmp_path / "run", seed=4, n_per_set=20, methods=("absolute", "rtuning"), sets=("test",))
    write_report(run_dir)
    assert (run_dir / "report_files" / "fig-reliability-rtuning.png").exists()
    shutil.rmtree(run_dir / "predictions" / "rtuning")
    write_report(run_dir)
    assert not (run_dir / "report_files" / "fig-reliability-rtuning.png").exists()
    assert (run_dir / "report_files" / "fig-transitions-rtuning.png").exists()  # from metrics.json


def test_learning_section_shows_every_model_by_fact_exposure(report):
    tables = tables_of(report["html"])
    refusal = tables["table-exposure-refusal-rate"]
    assert [h.split(" (")[0] for h in refusal[0]] == ["model", "0", "1", "2", "3-7", "8+"]
    rows = by_model(refusal)
    by_exposure = report["metrics"]["absolute"]["test"]["by_exposure"]
    assert rows["absolute"][refusal[0][1]] == f"{by_exposure['0']['refusal_rate']:.3f}"
    assert "table-exposure-refusal-auroc" in tables and "table-exposure-honesty" in tables


def test_set_roles_come_from_the_config_or_the_source():
    from knowbound.report.summary import set_roles

    config = {"data": {"eval": {"test": {"source": "geofacts:test"}, "invented": {"source": "geofacts:invented"},
                                "popular": {"source": "geofacts:popular"}, "topic": {"source": "geofacts:ood"},
                                "mine": {"source": "x.jsonl", "role": "known"}, "pq": {"source": "p.jsonl",
                                                                                    "adapter": "puqa"}}}}
    assert set_roles(config, ["test", "invented", "popular", "topic", "mine", "pq"]) == {
        "test": "in-domain", "invented": "unanswerable", "popular": "known", "topic": "ood", "mine": "known",
        "pq": "unanswerable"}


def test_the_fitted_thresholds_state_the_budget_they_hold():
    from knowbound.report.sections import budget_note

    assert budget_note({"eval": {"max_accuracy_drop": 0.03, "budget_confidence": 0.9}}) == (
        "Each threshold maximises honesty on train among those that withhold at most 3.0% of the questions' right "
        "answers, held for new questions at 90% confidence: the upper confidence bound of the withheld share on "
        "train (clustered by person where questions name one) is within it (eval.max_accuracy_drop, "
        "eval.budget_confidence).")
    assert budget_note({"eval": {"max_accuracy_drop": 0.05}}).startswith(
        "Each threshold maximises honesty on train among those that withhold at most 5.0% of")
    assert budget_note({"eval": {"max_accuracy_drop": 0.05}}).endswith("right answers (eval.max_accuracy_drop).")
    assert budget_note({"eval": {}}) is None and budget_note(None) is None and budget_note({"eval": [1]}) is None


def test_a_run_with_a_budget_says_so_under_its_fitted_thresholds(tmp_path):
    run_dir = make_fake_run(tmp_path / "run", seed=4, n_per_set=20, methods=("absolute", "rtuning"), sets=("test",))
    config = yaml.safe_load((run_dir / "config.yaml").read_text())
    config["eval"] = {**(config.get("eval") or {}), "max_accuracy_drop": 0.03, "budget_confidence": 0.9}
    (run_dir / "config.yaml").write_text(yaml.safe_dump(config))
    (run_dir / "predictions" / "rtuning" / "_fit.json").write_text(json.dumps(
        {"threshold": 0.4, "honesty": 0.6, "refusal_rate": 0.1, "n": 20, "score": "confidence", "fitted_on": "train"}))
    _, md_path = write_report(run_dir)
    md = md_path.read_text(encoding="utf-8")
    fits = md.index("Thresholds fitted on train")
    assert md.index("withhold at most 3.0% of the questions' right answers, held for new questions at 90%") > fits
