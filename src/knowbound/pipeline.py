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


@dataclass
class Run:
    """A run directory with its config, manifest and the unaligned model's location."""

    cfg: RunConfig
    log: Log = print
    model_path: str = ""
    sources: dict[str, str] = field(default_factory=dict)
    model_id: str = ""
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


def _versions() -> dict:
    import importlib.metadata as md
    import platform
    import subprocess

    out = {"python": platform.python_version()}
    for pkg in ("knowbound", "torch", "transformers", "trl", "peft", "datasets", "accelerate"):
        try:
            out[pkg] = md.version(pkg)
        except md.PackageNotFoundError:
            out[pkg] = None
    try:
        here = Path(__file__).resolve().parent
        out["git"] = subprocess.run(["git", "rev-parse", "HEAD"], cwd=here, capture_output=True, text=True,
                                    timeout=5).stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        out["git"] = None
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
              "versions": _versions()})
    m.setdefault("stages", {})
    write_json(run.manifest_path, m)
    return run


def _resolve_source(run: Run, source: str) -> str:
    if source.startswith("world:"):
        if "world" not in run.sources:
            raise KnowboundError(f"set source '{source}' needs model.world in the config")
        return str(Path(run.sources["world"]) / f"{source.split(':', 1)[1]}.jsonl")
    return source


def stage_questions(run: Run) -> str:
    """Load and normalise every question set into questions/<set>.jsonl."""
    from knowbound.datasets import load_questions

    cfg = run.cfg
    sets = {"train": cfg.data.train, **cfg.data.eval}
    digest = config_hash({"sets": to_dict(sets), "model": run.model_id})

    def work():
        for name, spec in sets.items():
            result = load_questions(_resolve_source(run, spec.source), spec.adapter, split=spec.split, limit=spec.limit)
            write_jsonl(run.dir / "questions" / f"{name}.jsonl", (q.to_dict() for q in result.questions))
            run.log(f"questions: {name}: {len(result.questions)} from {spec.source}")

    run.stage("questions", digest, [run.dir / "questions" / f"{n}.jsonl" for n in sets], work)
    return digest


def _perf_free(model_section) -> dict:
    d = to_dict(model_section)
    for k in ("max_batch_size", "threads", "device", "world_dir"):
        d.pop(k, None)
    return d


def stage_probe(run: Run, upstream: str) -> str:
    """Greedy + M sampled answers of the unaligned model to every training question."""
    from knowbound.sampling import sample_questions

    cfg, p = run.cfg, run.cfg.probe
    probe_cfg = {k: v for k, v in to_dict(p).items() if k != "batch_size"}
    digest = config_hash({"up": upstream, "probe": probe_cfg, "model": _perf_free(cfg.model), "id": run.model_id,
                          "prompt": cfg.prompt, "seed": cfg.seed})
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

    run.stage("probe", digest, [out, *variants], work, resumable=True)
    return digest


def load_probe_items(run: Run):
    from knowbound.knowledge import load_items

    variants = [run.dir / "samples" / f"train.{v}.jsonl" for v in run.cfg.probe.prompt_variants]
    return load_items(run.questions("train"), run.dir / "samples" / "train.jsonl", run.cfg.grading, variants)


def stage_label(run: Run, upstream: str) -> str:
    """knowledge.jsonl (per question) and probe.json (summary)."""
    from knowbound.knowledge import probe_summary

    digest = config_hash({"up": upstream, "grading": run.cfg.grading})

    def work():
        items = load_probe_items(run)
        write_jsonl(run.dir / "knowledge.jsonl", (i.knowledge.to_dict() for i in items))
        summary = probe_summary(items)
        write_json(run.dir / "probe.json", summary)
        run.log("label: " + ", ".join(f"{k} {v}" for k, v in summary["categories"].items())
                + (f"; AUROC of expected accuracy, seen vs never seen: {summary['auroc_expected_accuracy_seen']:.3f}"
                   if summary.get("auroc_expected_accuracy_seen") is not None else ""))

    run.stage("label", digest, [run.dir / "knowledge.jsonl", run.dir / "probe.json"], work)
    return digest


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


def stage_build(run: Run, upstream: str) -> dict[str, str]:
    """data/<method>.jsonl for every method that trains."""
    from knowbound.methods.builders import BuildOptions

    cfg = run.cfg
    b = cfg.build
    opts = BuildOptions(prompt=cfg.prompt, tau=b.tau, seed=cfg.seed, multisample_max=b.multisample_max)
    digests: dict[str, str] = {}
    items_cache: list = []

    for name in cfg.methods:
        method = get_method(name)
        if method.kind == "none":
            continue
        digest = config_hash({"up": upstream, "build": to_dict(b), "method": name, "prompt": cfg.prompt, "seed": cfg.seed})
        digests[name] = digest
        out = run.dir / "data" / f"{name}.jsonl"

        def work(method=method, out=out):
            if not items_cache:
                items_cache.extend(select_items(load_probe_items(run), b.select, b.balance, cfg.seed))
            rows = method.build(items_cache, opts)
            write_jsonl(out, rows)
            known = sum(1 for r in rows if r["known"])
            run.log(f"build: {method.name}: {len(items_cache)} questions -> {len(rows)} rows "
                    f"({known} known, {len(rows) - known} unknown)")

        run.stage(f"build/{name}", digest, [out], work)
    return digests


def stage_train(run: Run, upstream: dict[str, str]) -> dict[str, str]:
    """models/<method>/ for every method that trains."""
    from knowbound.training import train

    digests = {}
    for name, build_digest in upstream.items():
        method = get_method(name)
        tcfg = run.cfg.train_config(name, method.kind)
        digest = config_hash({"up": build_digest, "train": to_dict(tcfg), "model": run.model_id})
        digests[name] = digest
        out = run.dir / "models" / name

        def work(name=name, tcfg=tcfg, out=out):
            rows = read_jsonl(run.dir / "data" / f"{name}.jsonl")
            run._backends.clear()  # free the memory of a loaded model before training
            result = train(run.model_path, rows, out, tcfg)
            run.log(f"train: {name}: {result.rows} rows, {result.steps} steps, {result.seconds:.0f} s, "
                    f"final loss {result.final_loss if result.final_loss is None else round(result.final_loss, 4)}")

        run.stage(f"train/{name}", digest, [out], work)
    return digests


def stage_eval(run: Run, upstream: dict[str, str], question_digest: str) -> dict[str, str]:
    """predictions/<model>/<set>.jsonl for the unaligned model and every method."""
    from knowbound.evaluation import predict

    cfg = run.cfg
    models = [(UNALIGNED, None, run.model_id)]
    # Prompt-only methods answer with the unaligned model: evaluate them while it is loaded.
    methods = sorted((get_method(name) for name in cfg.methods), key=lambda m: m.kind != "none")
    for method in methods:
        models.append((method.name, method, upstream.get(method.name, run.model_id)))
    digests = {}
    for model, method, model_digest in models:
        for set_name in cfg.data.eval:
            digest = config_hash({"model": model_digest, "method": model, "questions": question_digest,
                                  "set": set_name, "eval": cfg.eval.max_new_tokens, "prompt": cfg.prompt,
                                  "grading": cfg.grading})
            digests[f"{model}/{set_name}"] = digest
            out = run.dir / "predictions" / model / f"{set_name}.jsonl"
            backend_model = UNALIGNED if method is None or method.kind == "none" else model

            def work(method=method, out=out, set_name=set_name, backend_model=backend_model, model=model):
                rows = predict(run.backend(backend_model), run.questions(set_name), method, cfg.prompt,
                               max_new_tokens=cfg.eval.max_new_tokens, mode=cfg.grading)
                write_jsonl(out, rows)
                idk = sum(r["label"] == "idk" for r in rows) / max(1, len(rows))
                acc = sum(bool(r["correct"]) for r in rows) / max(1, len(rows))
                run.log(f"eval: {model} on {set_name}: accuracy {acc:.3f}, refusals {idk:.3f}")

            run.stage(f"eval/{model}/{set_name}", digest, [out], work)
    return digests


def stage_metrics(run: Run, upstream: dict[str, str]) -> dict:
    """metrics.json: {model: {set: {metric: value}}} against the unaligned model's labels."""
    from knowbound.evaluation import set_metrics

    cfg = run.cfg
    digest = config_hash({"up": upstream, "eval": to_dict(cfg.eval), "seed": cfg.seed})
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

    run.stage("metrics", digest, [out], work)
    return json.loads(out.read_text())


def stage_report(run: Run, upstream: dict) -> Path | None:
    """report.html and report.md (when the report module is installed)."""
    try:
        from knowbound.report import write_report
    except ImportError:
        return None
    digest = config_hash({"metrics": upstream})
    html = run.dir / "report.html"
    run.stage("report", digest, [html, run.dir / "report.md"], lambda: write_report(run.dir))
    return html


def run_loop(cfg: RunConfig, until: str = "report", log: Log = print) -> Run:
    """Run every stage up to and including ``until``; finished stages are skipped."""
    if until not in STAGES:
        raise KnowboundError(f"unknown stage '{until}' (known: {', '.join(STAGES)})")
    for name in cfg.methods:
        get_method(name)  # fail fast on a typo
    stop = STAGES.index(until)
    run = prepare(cfg, log)
    done: dict = {}
    steps = {
        "questions": lambda: stage_questions(run),
        "probe": lambda: stage_probe(run, done["questions"]),
        "label": lambda: stage_label(run, done["probe"]),
        "build": lambda: stage_build(run, done["label"]),
        "train": lambda: stage_train(run, done["build"]),
        "eval": lambda: stage_eval(run, done["train"], done["questions"]),
        "metrics": lambda: stage_metrics(run, done["eval"]),
        "report": lambda: stage_report(run, {"metrics": config_hash(done["metrics"])}),
    }
    for stage in STAGES[: stop + 1]:
        done[stage] = steps[stage]()
    return run
