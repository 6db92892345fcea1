"""The loop of "Alignment for Honesty" as stages over a run directory (docs/run-directory.md).

questions -> probe -> label -> build (per method) -> train (per method) -> eval (per model and
set) -> metrics -> report. Each stage records a hash of everything its output depends on in
``manifest.json``; a stage whose output exists with the same hash is skipped, a changed one is
redone, and an interrupted one resumes (the probe row by row, the others per method, model and
set — each of those outputs is written atomically).
"""

from __future__ import annotations

import datetime as dt
import json
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from knowbound.config import RunConfig, config_hash, dump_config, to_dict
from knowbound.errors import KnowboundError
from knowbound.io import atomic_write_text, read_jsonl, write_json, write_jsonl
from knowbound.methods import get_method
from knowbound.types import Question

STAGES = ("questions", "probe", "label", "build", "train", "eval", "metrics", "report")
UNALIGNED = "unaligned"
Log = Callable[[str], None]

# How the unaligned model is asked, beside which model it is. Which model it is (model.world with
# model.world_seed, or model.path) reaches every stage as the model's identity, ``Run.model_id``.
# The speed settings (max_batch_size, threads, device) and the world cache (world_dir) change no
# answer.
MODEL_KEYS = ("model.backend", "model.base_url", "model.prompt_format", "model.dtype")
# The config keys each stage reads. A stage's digest is built from these keys and the digests of
# the outputs it reads, and from nothing else: see ``stage_digests``. ``{set_key}`` and
# ``{method}`` stand for the set or method the output belongs to. A key in no list changes no
# output: names and directories, the method list (which outputs exist) and speed settings.
READS: dict[str, tuple[str, ...]] = {
    "questions": ("{set_key}",),
    "probe": ("probe.m", "probe.temperature", "probe.top_p", "probe.max_new_tokens", "probe.prompt_variants",
              "prompt", "seed", *MODEL_KEYS),
    "label": ("grading",),
    "build": ("build.tau", "build.select", "build.balance", "prompt", "seed"),
    # The resolved training config: `train` with `method_train.{method}` and `seed` applied.
    "train": ("train", "method_train.{method}", "seed"),
    # Trained models are always answered with the hf backend; the unaligned one adds MODEL_KEYS.
    "eval": ("eval.max_new_tokens", "prompt", "grading", "model.prompt_format", "model.dtype"),
    "metrics": ("eval.bootstrap", "eval.ece_bins", "seed"),
    "report": (),
}
# Keys only some methods' builders read.
BUILD_READS_BY_METHOD: dict[str, tuple[str, ...]] = {"multisample": ("build.multisample_max",)}
# Training settings that change the log, not the weights; and those only DPO reads.
TRAIN_LOG_ONLY = ("logging_steps",)
TRAIN_DPO_ONLY = ("dpo_beta", "sft_weight")


@dataclass
class Run:
    """A run directory with its config, manifest and the unaligned model's location."""

    cfg: RunConfig
    log: Log = print
    model_path: str = ""
    sources: dict[str, str] = field(default_factory=dict)
    model_id: str = ""
    digests: dict[str, str] = field(default_factory=dict)  # stage output -> digest (stage_digests)
    _backends: dict = field(default_factory=dict)
    _questions: dict = field(default_factory=dict)

    @property
    def dir(self) -> Path:
        return self.cfg.run_dir

    # -- manifest -------------------------------------------------------------------------------
    @property
    def manifest_path(self) -> Path:
        return self.dir / "manifest.json"

    def manifest(self) -> dict:
        return json.loads(self.manifest_path.read_text()) if self.manifest_path.exists() else {}

    def _record(self, key: str, record: dict | None) -> None:
        m = self.manifest()
        stages = m.setdefault("stages", {})
        if record is None:
            stages.pop(key, None)
        else:
            stages[key] = record
        write_json(self.manifest_path, m)

    def stage(self, key: str, digest: str, outputs: list[Path], work: Callable[[], None], resumable: bool = False) -> bool:
        """Run ``work`` unless ``outputs`` exist from a finished stage with the same hash.

        Returns True when the stage ran. A stage left unfinished with the same hash keeps its
        partial outputs when ``resumable``; anything else stale is removed first.
        """
        rec = self.manifest().get("stages", {}).get(key)
        if rec and rec.get("hash") == digest and rec.get("status") == "done" and all(p.exists() for p in outputs):
            return False
        if not (resumable and rec and rec.get("hash") == digest):
            for p in outputs:
                if p.is_dir():
                    shutil.rmtree(p)
                elif p.exists():
                    p.unlink()
        self._record(key, {"hash": digest, "status": "running"})
        start = time.perf_counter()
        work()
        self._record(key, {"hash": digest, "status": "done", "seconds": round(time.perf_counter() - start, 2),
                           "finished": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")})
        return True

    # -- helpers ----------------------------------------------------------------------------------
    def questions(self, name: str) -> list[Question]:
        """A question set of this run (read once)."""
        if name not in self._questions:
            self._questions[name] = [Question.from_dict(r) for r in read_jsonl(self.dir / "questions" / f"{name}.jsonl")]
        return self._questions[name]

    def backend(self, model: str):
        """The backend answering as ``model`` (the unaligned one, or a method's trained model)."""
        if model in self._backends:
            return self._backends[model]
        from knowbound.backends import get_backend

        m = self.cfg.model
        common = dict(prompt_format=m.prompt_format, dtype=m.dtype, device=m.device,
                      max_batch_size=m.max_batch_size, threads=m.threads)
        if model == UNALIGNED:
            if m.backend == "hf":
                backend = get_backend("hf", model=self.model_path, **common)
            else:
                backend = get_backend(m.backend, model=self.model_path, base_url=m.base_url, api_key_env=m.api_key_env)
        else:
            path = self.dir / "models" / model
            if (path / "adapter_config.json").exists():
                backend = get_backend("hf", model=self.model_path, adapter=str(path), **common)
            else:
                backend = get_backend("hf", model=str(path), **common)
        self._backends = {model: backend}  # keep one model in memory at a time
        return backend


LOCK_FILE = "requirements.lock"


def source_checkout() -> Path | None:
    """The knowbound checkout this package runs from (an editable install), else None.

    A wheel installed inside some other repository must not record that repository's commit.
    """
    root = Path(__file__).resolve().parents[2]
    project = root / "pyproject.toml"
    if project.is_file() and 'name = "knowbound"' in project.read_text(encoding="utf-8"):
        return root
    return None


def environment() -> dict:
    """Versions of Python and the packages that decide the numbers, the commit, and the lock's hash."""
    import hashlib
    import importlib.metadata as md
    import platform
    import subprocess

    out = {"python": platform.python_version()}
    for pkg in ("knowbound", "torch", "transformers", "trl", "peft", "datasets", "accelerate", "tokenizers",
                "numpy"):
        try:
            out[pkg] = md.version(pkg)
        except md.PackageNotFoundError:
            out[pkg] = None
    root = source_checkout()
    out["git"] = out["lock_sha256"] = None
    if root is not None:
        try:
            out["git"] = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True,
                                        timeout=5).stdout.strip() or None
        except (OSError, subprocess.SubprocessError):
            pass
        lock = root / LOCK_FILE
        if lock.is_file():
            out["lock_sha256"] = hashlib.sha256(lock.read_bytes()).hexdigest()
    return out


def prepare(cfg: RunConfig, log: Log = print) -> Run:
    """Resolve the model and question sources (building the knowledge world if asked) and write
    config.yaml and the manifest's header."""
    run = Run(cfg, log)
    if cfg.model.world:
        from knowbound.world.build import build_world
        from knowbound.world.config import preset

        world_cfg = preset(cfg.model.world, seed=cfg.model.world_seed)
        paths = build_world(world_cfg, Path(cfg.model.world_dir) if cfg.model.world_dir else None, log=log)
        run.model_path = str(paths.chat_model)
        run.model_id = f"world:{paths.root.name}"
        run.sources = {"world": str(paths.root / "questions")}
    elif cfg.model.path:
        run.model_path = cfg.model.path
        run.model_id = cfg.model.path
    else:
        raise KnowboundError("the config names no model: set model.world or model.path")
    run.dir.mkdir(parents=True, exist_ok=True)
    atomic_write_text(run.dir / "config.yaml", dump_config(cfg))
    m = run.manifest()
    m.update({"name": cfg.name, "seed": cfg.seed, "config_hash": config_hash(cfg), "model": run.model_id,
              "versions": environment()})
    m.setdefault("stages", {})
    write_json(run.manifest_path, m)
    run.digests = stage_digests(run)
    return run


def _resolve_source(run: Run, source: str) -> str:
    if source.startswith("world:"):
        if "world" not in run.sources:
            raise KnowboundError(f"set source '{source}' needs model.world in the config")
        return str(Path(run.sources["world"]) / f"{source.split(':', 1)[1]}.jsonl")
    return source


def question_sets(cfg: RunConfig) -> dict[str, tuple[str, object]]:
    """Every question set of a run: name -> (the config key that defines it, its section)."""
    return {"train": ("data.train", cfg.data.train),
            **{name: (f"data.eval.{name}", spec) for name, spec in cfg.data.eval.items()}}


def _lookup(data: dict, dotted: str):
    node = data
    for key in dotted.split("."):
        if not isinstance(node, dict) or key not in node:
            return None
        node = node[key]
    return node


def _file_digest(source: str) -> str | None:
    """Content hash of a question file, so that editing it in place redoes what reads it."""
    import hashlib

    path = Path(source)
    if not path.is_file():
        return None  # a Hub dataset or a directory: its name and split stand for it
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _reads(cfg: RunConfig, stage: str, **names: str) -> dict:
    """The values of the config keys ``stage`` reads (READS), by key."""
    if stage == "train":
        # `train`, `method_train.{method}` and `seed` as the trainer gets them: resolved into one
        # TrainConfig, less what does not change the weights.
        tcfg = to_dict(cfg.train_config(names["method"], names["kind"]))
        drop = TRAIN_LOG_ONLY + (TRAIN_DPO_ONLY if names["kind"] != "dpo" else ())
        return {"train": {k: v for k, v in tcfg.items() if k not in drop}}
    data = to_dict(cfg)
    keys = list(READS[stage])
    if stage == "eval" and names.get("model_kind") != "trained":
        keys += [k for k in MODEL_KEYS if k not in keys]  # the unaligned model answers
    if stage == "build":
        keys += BUILD_READS_BY_METHOD.get(names["method"], ())
    return {key: _lookup(data, key.format(**names) if "{" in key else key) for key in keys}


def stage_digests(run: Run) -> dict[str, str]:
    """The digest of every output of the run: the config keys its stage reads (READS) and the
    digests of the outputs it reads, so a change reruns exactly the outputs that depend on it."""
    cfg = run.cfg

    def digest(stage: str, upstream: dict, **names: str) -> str:
        return config_hash({"stage": stage, "reads": _reads(cfg, stage, **names), "up": upstream})

    out: dict[str, str] = {}
    for name, (key, spec) in question_sets(cfg).items():
        source = _resolve_source(run, spec.source)
        out[f"questions/{name}"] = digest("questions", {"file": _file_digest(source)}, set_key=key)
    out["probe"] = digest("probe", {"questions": out["questions/train"], "model": run.model_id})
    out["label"] = digest("label", {"probe": out["probe"]})
    methods = [get_method(name) for name in cfg.methods]
    for m in methods:
        if m.kind != "none":
            out[f"build/{m.name}"] = digest("build", {"label": out["label"], "method": m.name}, method=m.name)
            out[f"train/{m.name}"] = digest("train", {"data": out[f"build/{m.name}"], "model": run.model_id},
                                            method=m.name, kind=m.kind)
    for model, kind in [(UNALIGNED, "unaligned")] + [(m.name, "trained" if m.kind != "none" else "prompt")
                                                     for m in methods]:
        weights = out[f"train/{model}"] if kind == "trained" else run.model_id
        for set_name in cfg.data.eval:
            out[f"eval/{model}/{set_name}"] = digest(
                "eval", {"questions": out[f"questions/{set_name}"], "model": weights, "method": model},
                model_kind=kind)
    out["metrics"] = digest("metrics", {k: v for k, v in out.items() if k.startswith("eval/")})
    out["report"] = digest("report", {"metrics": out["metrics"], "label": out["label"]})
    return out


def stage_questions(run: Run) -> None:
    """Load and normalise every question set into questions/<set>.jsonl."""
    from knowbound.datasets import load_questions

    for name, (_, spec) in question_sets(run.cfg).items():
        out = run.dir / "questions" / f"{name}.jsonl"

        def work(name=name, spec=spec, out=out):
            result = load_questions(_resolve_source(run, spec.source), spec.adapter, split=spec.split, limit=spec.limit)
            write_jsonl(out, (q.to_dict() for q in result.questions))
            run._questions.pop(name, None)
            run.log(f"questions: {name}: {len(result.questions)} from {spec.source}")

        run.stage(f"questions/{name}", run.digests[f"questions/{name}"], [out], work)


def stage_probe(run: Run) -> None:
    """Greedy + M sampled answers of the unaligned model to every training question."""
    from knowbound.sampling import sample_questions

    cfg, p = run.cfg, run.cfg.probe
    out = run.dir / "samples" / "train.jsonl"
    variants = [run.dir / "samples" / f"train.{v}.jsonl" for v in p.prompt_variants]

    def work():
        questions = run.questions("train")
        run.log(f"probe: {len(questions)} questions x (greedy + {p.m} samples at T={p.temperature})")
        stats = sample_questions(questions, run.backend(UNALIGNED), out, n=p.m, temperature=p.temperature,
                                 top_p=p.top_p, max_new_tokens=p.max_new_tokens, greedy=True, seed=cfg.seed,
                                 prompt=cfg.prompt, batch_size=p.batch_size)
        for name, path in zip(p.prompt_variants, variants):
            sample_questions(questions, run.backend(UNALIGNED), path, n=0, greedy=True, seed=cfg.seed,
                             max_new_tokens=p.max_new_tokens, prompt=name, batch_size=p.batch_size)
        if stats.failed:
            raise KnowboundError(f"probe: {stats.failed} samples failed; re-run to retry them")
        run.log(f"probe: {stats.generated} answers generated ({stats.rate:.0f}/s), {stats.skipped} already done")

    run.stage("probe", run.digests["probe"], [out, *variants], work, resumable=True)


def load_probe_items(run: Run):
    from knowbound.knowledge import load_items

    variants = [run.dir / "samples" / f"train.{v}.jsonl" for v in run.cfg.probe.prompt_variants]
    return load_items(run.questions("train"), run.dir / "samples" / "train.jsonl", run.cfg.grading, variants)


def stage_label(run: Run) -> None:
    """knowledge.jsonl (per question) and probe.json (summary)."""
    from knowbound.knowledge import probe_summary

    def work():
        items = load_probe_items(run)
        write_jsonl(run.dir / "knowledge.jsonl", (i.knowledge.to_dict() for i in items))
        summary = probe_summary(items)
        write_json(run.dir / "probe.json", summary)
        run.log("label: " + ", ".join(f"{k} {v}" for k, v in summary["categories"].items())
                + (f"; AUROC of expected accuracy, seen vs never seen: {summary['auroc_expected_accuracy_seen']:.3f}"
                   if summary.get("auroc_expected_accuracy_seen") is not None else ""))

    run.stage("label", run.digests["label"], [run.dir / "knowledge.jsonl", run.dir / "probe.json"], work)


def select_items(items, select: int | None, balance: bool, seed: int):
    """Keep ``select`` items; with ``balance``, half greedy-correct and half not (seeded)."""
    import random

    if select is None or select >= len(items):
        return list(items)
    rng = random.Random(seed)
    if not balance:
        return sorted(rng.sample(list(items), select), key=lambda i: i.question.id)
    known = [i for i in items if i.knowledge.greedy_correct]
    unknown = [i for i in items if not i.knowledge.greedy_correct]
    half = min(select // 2, len(known), len(unknown))
    picked = rng.sample(known, half) + rng.sample(unknown, min(len(unknown), select - half))
    return sorted(picked, key=lambda i: i.question.id)


def trained_methods(cfg: RunConfig) -> list:
    """The run's methods that train a model, in config order."""
    return [m for m in (get_method(name) for name in cfg.methods) if m.kind != "none"]


def stage_build(run: Run) -> None:
    """data/<method>.jsonl for every method that trains."""
    from knowbound.methods.builders import BuildOptions

    cfg = run.cfg
    b = cfg.build
    opts = BuildOptions(prompt=cfg.prompt, tau=b.tau, seed=cfg.seed, multisample_max=b.multisample_max)
    items_cache: list = []

    for method in trained_methods(cfg):
        out = run.dir / "data" / f"{method.name}.jsonl"

        def work(method=method, out=out):
            if not items_cache:
                items_cache.extend(select_items(load_probe_items(run), b.select, b.balance, cfg.seed))
            rows = method.build(items_cache, opts)
            write_jsonl(out, rows)
            known = sum(1 for r in rows if r["known"])
            run.log(f"build: {method.name}: {len(items_cache)} questions -> {len(rows)} rows "
                    f"({known} known, {len(rows) - known} unknown)")

        run.stage(f"build/{method.name}", run.digests[f"build/{method.name}"], [out], work)


def stage_train(run: Run) -> None:
    """models/<method>/ for every method that trains."""
    from knowbound.training import train

    for method in trained_methods(run.cfg):
        name = method.name
        tcfg = run.cfg.train_config(name, method.kind)
        out = run.dir / "models" / name

        def work(name=name, tcfg=tcfg, out=out):
            rows = read_jsonl(run.dir / "data" / f"{name}.jsonl")
            run._backends.clear()  # free the memory of a loaded model before training
            result = train(run.model_path, rows, out, tcfg)
            run.log(f"train: {name}: {result.rows} rows, {result.steps} steps, {result.seconds:.0f} s, "
                    f"final loss {result.final_loss if result.final_loss is None else round(result.final_loss, 4)}")

        run.stage(f"train/{name}", run.digests[f"train/{name}"], [out], work)


def stage_eval(run: Run) -> None:
    """predictions/<model>/<set>.jsonl for the unaligned model and every method."""
    from knowbound.crash import crash_point
    from knowbound.evaluation import predict

    cfg = run.cfg
    models = [(UNALIGNED, None)]
    # Prompt-only methods answer with the unaligned model: evaluate them while it is loaded.
    methods = sorted((get_method(name) for name in cfg.methods), key=lambda m: m.kind != "none")
    models += [(method.name, method) for method in methods]
    for model, method in models:
        for set_name in cfg.data.eval:
            out = run.dir / "predictions" / model / f"{set_name}.jsonl"
            backend_model = UNALIGNED if method is None or method.kind == "none" else model

            def work(method=method, out=out, set_name=set_name, backend_model=backend_model, model=model):
                rows = predict(run.backend(backend_model), run.questions(set_name), method, cfg.prompt,
                               max_new_tokens=cfg.eval.max_new_tokens, mode=cfg.grading)
                crash_point(f"eval/{model}/{set_name}")
                write_jsonl(out, rows)
                idk = sum(r["label"] == "idk" for r in rows) / max(1, len(rows))
                acc = sum(bool(r["correct"]) for r in rows) / max(1, len(rows))
                run.log(f"eval: {model} on {set_name}: accuracy {acc:.3f}, refusals {idk:.3f}")

            run.stage(f"eval/{model}/{set_name}", run.digests[f"eval/{model}/{set_name}"], [out], work)


def stage_metrics(run: Run) -> dict:
    """metrics.json: {model: {set: {metric: value}}} against the unaligned model's labels."""
    from knowbound.evaluation import set_metrics

    cfg = run.cfg
    out = run.dir / "metrics.json"

    def work():
        models = [UNALIGNED] + list(cfg.methods)
        metrics: dict = {}
        for set_name in cfg.data.eval:
            ref = read_jsonl(run.dir / "predictions" / UNALIGNED / f"{set_name}.jsonl")
            for model in models:
                rows = ref if model == UNALIGNED else read_jsonl(run.dir / "predictions" / model / f"{set_name}.jsonl")
                metrics.setdefault(model, {})[set_name] = set_metrics(
                    rows, ref, n_bootstrap=cfg.eval.bootstrap, seed=cfg.seed, ece_bins=cfg.eval.ece_bins)
        write_json(out, metrics)

    run.stage("metrics", run.digests["metrics"], [out], work)
    return json.loads(out.read_text())


def stage_report(run: Run) -> Path | None:
    """report.html and report.md (when the report module is installed)."""
    try:
        from knowbound.report import write_report
    except ImportError:
        return None
    html = run.dir / "report.html"
    run.stage("report", run.digests["report"], [html, run.dir / "report.md"], lambda: write_report(run.dir))
    return html


def run_loop(cfg: RunConfig, until: str = "report", log: Log = print) -> Run:
    """Run every stage up to and including ``until``; finished stages are skipped."""
    if until not in STAGES:
        raise KnowboundError(f"unknown stage '{until}' (known: {', '.join(STAGES)})")
    for name in cfg.methods:
        get_method(name)  # fail fast on a typo
    stop = STAGES.index(until)
    run = prepare(cfg, log)
    steps = {"questions": stage_questions, "probe": stage_probe, "label": stage_label, "build": stage_build,
             "train": stage_train, "eval": stage_eval, "metrics": stage_metrics, "report": stage_report}
    for stage in STAGES[: stop + 1]:
        steps[stage](run)
    return run
