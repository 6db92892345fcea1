"""The questions stage: every question set of the run, loaded and normalised into
``questions/<set>.jsonl`` (the training set, then every eval set)."""

from __future__ import annotations

from pathlib import Path

from knowbound.config import RunConfig
from knowbound.errors import KnowboundError
from knowbound.io import write_jsonl
from knowbound.loop.rundir import ConfigView, Output, RunDir, StageResult, fill

NAME = "questions"
# A set's own section (source, adapter, split, limit); the content of its file is an identity.
READS = ("{set_key}.source", "{set_key}.adapter", "{set_key}.split", "{set_key}.limit")


def question_sets(cfg: RunConfig) -> dict[str, tuple[str, object]]:
    """Every question set of a run: name -> (the config key that defines it, its section)."""
    return {"train": ("data.train", cfg.data.train),
            **{name: (f"data.eval.{name}", spec) for name, spec in cfg.data.eval.items()}}


def resolve_source(run: RunDir, source: str) -> str:
    """A set's source with ``world:<set>`` turned into the knowledge world's file."""
    if source.startswith("world:"):
        if "world" not in run.sources:
            raise KnowboundError(f"set source '{source}' needs model.world in the config")
        folder = Path(run.sources["world"])
        path = folder / f"{source.split(':', 1)[1]}.jsonl"
        if not path.is_file():
            known = ", ".join(sorted(p.stem for p in folder.glob("*.jsonl")))
            raise KnowboundError(f"set source '{source}': the knowledge world has no such set "
                                 f"(known: {known}; files in {folder})")
        return str(path)
    return source


def file_digest(source: str) -> str | None:
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


def outputs(run: RunDir) -> list[Output]:
    """One output per question set."""
    outs = []
    for name, (key, spec) in question_sets(run.cfg).items():
        path = run.dir / "questions" / f"{name}.jsonl"

        def work(view: ConfigView, name=name, key=key, path=path) -> None:
            from knowbound.datasets import load_questions

            spec = view.data.train if key == "data.train" else view.data.eval[name]
            result = load_questions(resolve_source(run, spec.source), spec.adapter, split=spec.split,
                                    limit=spec.limit)
            write_jsonl(path, (q.to_dict() for q in result.questions))
            run._questions.pop(name, None)
            run.log(f"questions: {name}: {len(result.questions)} from {spec.source}")

        outs.append(Output(f"questions/{name}", (path,), work, reads=fill(READS, set_key=key),
                           identity={"file": file_digest(resolve_source(run, spec.source))}))
    return outs


def run(rundir: RunDir) -> StageResult:
    """Load every question set that is not loaded yet."""
    return rundir.run_stage(NAME, outputs(rundir))
