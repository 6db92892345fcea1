"""The run directory: manifest, digests, skip and resume (docs/run-directory.md).

Every stage module (``knowbound.loop.<stage>``) describes its outputs as ``Output`` records: the
files, the config keys the output depends on (``reads``), the keys it reads that change nothing
(``uses``: speed settings, logging), the outputs it reads (``after``) and anything else it depends
on (``identity``: a model, a question file's content). The digest of an output is built from those
declarations alone (``stage_digests``), and the output's work receives a ``ConfigView`` that lets it
read only the declared keys: a key the work reads is a key the digest covers, by construction.

An output whose files exist with the same digest and status ``done``, computed after every output
it reads (``seq`` in the manifest), is skipped; one left ``running`` with the same digest resumes
(when ``resumable``); anything else stale is removed and redone.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import importlib
import json
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping

from knowbound.config import RunConfig, config_hash, dump_config, to_dict
from knowbound.errors import KnowboundError
from knowbound.io import atomic_write_text, read_jsonl, write_json
from knowbound.types import UNALIGNED, Question

# The stages in loop order; each is the module knowbound.loop.<stage>.
STAGES = ("questions", "probe", "label", "build", "train", "eval", "metrics", "report")
Log = Callable[[str], None]


class UndeclaredRead(KnowboundError):
    """A stage read a config key it does not declare (its digest would miss the key)."""


class ConfigView:
    """Read-only access to the declared keys of a config (a dataclass, or a mapping inside one).

    ``view.probe.m`` works when ``probe.m`` (or ``probe``) is declared; any other key raises
    ``UndeclaredRead``. Properties and methods of the underlying class run against the view, so
    they too can read only what was declared.
    """

    def __init__(self, obj: Any, allowed: frozenset[str], owner: str, prefix: str = ""):
        self._obj, self._allowed, self._owner, self._prefix = obj, allowed, owner, prefix

    def _child(self, name: str, value: Any) -> Any:
        path = self._prefix + name
        if any(path == a or path.startswith(a + ".") for a in self._allowed):
            return value
        if any(a.startswith(path + ".") for a in self._allowed):
            return ConfigView(value, self._allowed, self._owner, path + ".")
        raise UndeclaredRead(f"{self._owner} reads config key '{path}', which it does not declare")

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):
            raise AttributeError(name)
        if dataclasses.is_dataclass(self._obj) and name in {f.name for f in dataclasses.fields(self._obj)}:
            return self._child(name, getattr(self._obj, name))
        attr = getattr(type(self._obj), name, None)
        if attr is None:
            raise AttributeError(name)
        return attr.__get__(self)  # a property or method, reading through this view

    def get(self, key: str, default: Any = None) -> Any:
        """A mapping's entry (``method_train.get(m, {})``), if declared."""
        return self._child(key, self._obj.get(key, default))

    def __getitem__(self, key: str) -> Any:
        return self._child(key, self._obj[key])


@dataclass(frozen=True)
class Output:
    """One output of a stage, with what it depends on and the work that writes it."""

    key: str  # the manifest's key: "probe", "build/absolute", "eval/unaligned/test", ...
    paths: tuple[Path, ...]
    work: Callable[[ConfigView], None]
    reads: tuple[str, ...] = ()  # config keys that change the output
    uses: tuple[str, ...] = ()  # config keys the work reads that never change the output
    after: tuple[str, ...] = ()  # the outputs it reads
    identity: Mapping[str, Any] = field(default_factory=dict)  # other inputs: a model, a file's hash
    resumable: bool = False


@dataclass(frozen=True)
class StageResult:
    """What one stage did: the outputs it computed now and those it found done."""

    stage: str
    ran: tuple[str, ...] = ()
    skipped: tuple[str, ...] = ()

    @property
    def status(self) -> str:
        """``ran`` when any output was computed now, else ``skipped``."""
        return "ran" if self.ran else "skipped"


def fill(keys: tuple[str, ...], **names: str) -> tuple[str, ...]:
    """Declared keys with their ``{set_key}``/``{method}`` placeholders filled in."""
    return tuple(k.format(**names) if "{" in k else k for k in keys)


def lookup(data: Any, dotted: str) -> Any:
    """The value at a dotted key of plain config data, None when absent."""
    node = data
    for key in dotted.split("."):
        if not isinstance(node, dict) or key not in node:
            return None
        node = node[key]
    return node


def stage_module(stage: str):
    """The module of a stage (``knowbound.loop.<stage>``)."""
    if stage not in STAGES:
        raise KnowboundError(f"unknown stage '{stage}' (known: {', '.join(STAGES)})")
    return importlib.import_module(f"knowbound.loop.{stage}")


@dataclass
class RunDir:
    """A run directory with its config, manifest, digests and the unaligned model's location."""

    cfg: RunConfig
    log: Log = print
    model_path: str = ""
    model_id: str = ""  # which unaligned model: the world's name and seed, or model.path
    sources: dict[str, str] = field(default_factory=dict)  # "world" -> the world's question directory
    provenance: dict = field(default_factory=dict)  # where the model came from (GGUF hash, licence)
    served_model: str = ""  # the model's name for a server backend (model.path as written)
    digests: dict[str, str] = field(default_factory=dict)  # output key -> digest (stage_digests)
    results: dict[str, StageResult] = field(default_factory=dict)  # stage -> what it did (run_loop)
    # The manifest's header for this session (model, versions, ...), held back while nothing is
    # computed over a run that has finished outputs: opening a run to read it or to skip its
    # stages must not claim that outputs made elsewhere came from this machine and commit.
    pending_header: dict | None = None
    _backends: dict = field(default_factory=dict)
    _questions: dict = field(default_factory=dict)

    @property
    def dir(self) -> Path:
        return self.cfg.run_dir

    @property
    def manifest_path(self) -> Path:
        return self.dir / "manifest.json"

    def manifest(self) -> dict:
        """manifest.json as a dict ({} before the first stage)."""
        return json.loads(self.manifest_path.read_text()) if self.manifest_path.exists() else {}

    def _record(self, key: str, record: dict) -> None:
        m = self.manifest()
        if self.pending_header is not None:  # the first output computed in this session
            m.update(self.pending_header)
            self.pending_header = None
        m.setdefault("stages", {})[key] = record
        write_json(self.manifest_path, m)

    def is_done(self, key: str) -> bool:
        """Whether output ``key`` is finished with its current digest."""
        rec = self.manifest().get("stages", {}).get(key)
        return bool(rec and rec.get("hash") == self.digests.get(key) and rec.get("status") == "done")

    def run_output(self, out: Output) -> bool:
        """Run ``out``'s work unless it is done with the same digest; True when it ran."""
        digest = self.digests[out.key]
        rec = self.manifest().get("stages", {}).get(out.key)
        if self._finished(out):
            return False
        self._check_upstream([out])
        if not (out.resumable and rec and rec.get("hash") == digest):
            for p in out.paths:
                if p.is_dir():
                    shutil.rmtree(p)
                elif p.exists():
                    p.unlink()
        self._record(out.key, {"hash": digest, "status": "running"})
        start = time.perf_counter()
        out.work(ConfigView(self.cfg, frozenset(out.reads + out.uses), f"stage output '{out.key}'"))
        seq = 1 + max((r.get("seq", 0) for r in self.manifest().get("stages", {}).values()), default=0)
        self._record(out.key, {"hash": digest, "status": "done", "seconds": round(time.perf_counter() - start, 2),
                               "finished": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
                               "seq": seq})
        return True

    def _finished(self, out: Output) -> bool:
        """Done with its digest, its files present, and computed after every output it reads.

        The last condition catches an input recomputed with an unchanged digest (its files deleted,
        or a run that crashed between the two): the digests alone would keep the stale output.
        ``seq`` counts computations in the manifest; records written before it existed count as 0.
        """
        if not (self.is_done(out.key) and all(p.exists() for p in out.paths)):
            return False
        stages = self.manifest().get("stages", {})
        own = stages[out.key].get("seq", 0)
        return all(stages.get(k, {}).get("seq", 0) <= own for k in out.after)

    def _check_upstream(self, outputs: list[Output], within: frozenset[str] = frozenset()) -> None:
        """An error naming the first output read by ``outputs`` that is not done (outputs in
        ``within``, written earlier in the same stage, are checked when their reader runs)."""
        for out in outputs:
            missing = [k for k in out.after if k not in within and not self.is_done(k)]
            if missing:
                raise KnowboundError(f"{out.key} reads {missing[0]}, which is not done: run the loop up to "
                                     f"'{missing[0].split('/')[0]}' first")

    def run_stage(self, stage: str, outputs: list[Output]) -> StageResult:
        """Every output of one stage, in order; nothing runs when one of them lacks an input from an
        earlier stage."""
        self._check_upstream([out for out in outputs if not self._finished(out)], frozenset(o.key for o in outputs))
        ran = [out.key for out in outputs if self.run_output(out)]
        return StageResult(stage, tuple(ran), tuple(o.key for o in outputs if o.key not in ran))

    def questions(self, name: str) -> list[Question]:
        """A question set of this run (read once)."""
        if name not in self._questions:
            rows = read_jsonl(self.dir / "questions" / f"{name}.jsonl")
            self._questions[name] = [Question.from_dict(r) for r in rows]
        return self._questions[name]

    def backend(self, model: str, view: ConfigView):
        """The backend answering as ``model`` (the unaligned one, or a method's trained model).

        ``view`` is the calling output's: the model settings it reads are those it declares.
        """
        if model in self._backends:
            return self._backends[model]
        from knowbound.backends import open_backend

        m = view.model
        if model == UNALIGNED:
            name = self.model_path if m.backend == "hf" else (self.served_model or self.model_path)
            backend = open_backend(m.backend, name, model_settings=m)
        else:
            path = self.dir / "models" / model
            if (path / "adapter_config.json").exists():
                backend = open_backend("hf", self.model_path, adapter=str(path), model_settings=m)
            else:
                backend = open_backend("hf", str(path), model_settings=m)
        self._backends = {model: backend}  # keep one model in memory at a time
        return backend

    def free_models(self) -> None:
        """Drop the loaded model (before training needs the memory)."""
        self._backends.clear()


def stage_digests(run: RunDir) -> dict[str, str]:
    """The digest of every output of the run, from its declared reads, upstream outputs and
    identity only, so a change reruns exactly the outputs that depend on it."""
    data = to_dict(run.cfg)
    out: dict[str, str] = {}
    for stage in STAGES:
        for o in stage_module(stage).outputs(run):
            out[o.key] = config_hash({"stage": stage, "reads": {k: lookup(data, k) for k in o.reads},
                                      "up": {k: out[k] for k in o.after}, "identity": dict(o.identity)})
    return out


def resolve_model(run: RunDir) -> None:
    """Set the unaligned model's path and identity (building the knowledge world if asked)."""
    cfg = run.cfg
    if cfg.model.world:
        from knowbound.world.build import build_world
        from knowbound.world.config import preset

        world_cfg = preset(cfg.model.world, seed=cfg.model.world_seed)
        paths = build_world(world_cfg, Path(cfg.model.world_dir) if cfg.model.world_dir else None, log=run.log)
        run.model_path = str(paths.chat_model)
        run.model_id = f"world:{paths.root.name}"
        run.sources = {"world": str(paths.root / "questions")}
    elif cfg.model.path:
        from knowbound.gguf_models import resolve_model_source

        resolved = resolve_model_source(cfg.model.path, cfg.model.gguf_file, log=run.log)
        run.model_path, run.model_id, run.provenance = resolved.path, resolved.identity, resolved.provenance
        run.served_model = cfg.model.path
    else:
        raise KnowboundError("the config names no model: set model.world or model.path")


def prepare(cfg: RunConfig, log: Log = print) -> RunDir:
    """Resolve the model, write config.yaml and the manifest's header, and compute the digests."""
    from knowbound.cpu import summary as cpu_summary
    from knowbound.loop.environment import environment

    run = RunDir(cfg, log)
    log(cpu_summary())
    resolve_model(run)
    run.dir.mkdir(parents=True, exist_ok=True)
    atomic_write_text(run.dir / "config.yaml", dump_config(cfg))
    header = {"name": cfg.name, "seed": cfg.seed, "config_hash": config_hash(cfg), "model": run.model_id,
              "versions": environment()}
    if run.provenance:
        header["model_source"] = run.provenance
    sources = [cfg.data.train.source, *(spec.source for spec in cfg.data.eval.values())]
    if any(src.startswith("geofacts:") for src in sources):
        from knowbound.datasets.geofacts import provenance

        header["data_source"] = {"geofacts": provenance()}
    m = run.manifest()
    if any(r.get("status") == "done" for r in m.get("stages", {}).values()):
        run.pending_header = header  # written with the first output this session computes
    else:
        m.update(header)
        m.setdefault("stages", {})
        write_json(run.manifest_path, m)
    run.digests = stage_digests(run)
    return run


def open_run(path: str | Path, log: Log = print) -> RunDir:
    """An existing run directory, with the config it was run with (its config.yaml)."""
    from knowbound.config import load_config

    path = Path(path)
    cfg = load_config(path / "config.yaml")
    # The directory may have moved since: it is where it is now.
    cfg = dataclasses.replace(cfg, runs_dir=str(path.parent), name=path.name)
    return prepare(cfg, log)


def budget_reads(cfg) -> tuple[str, ...]:
    """The config keys of a threshold fitted under the accuracy budget: ``eval.budget_confidence``
    only where it and the budget are set (without a budget it changes nothing), so the runs that
    leave it unset keep their digests."""
    held = cfg.eval.budget_confidence is not None and cfg.eval.max_accuracy_drop is not None
    return ("eval.max_accuracy_drop",) + (("eval.budget_confidence",) if held else ())


def budget_confidence(view: "ConfigView", reads: tuple[str, ...]) -> float | None:
    """``eval.budget_confidence`` through ``view`` where ``reads`` (``budget_reads``) declares it."""
    return view.eval.budget_confidence if "eval.budget_confidence" in reads else None
