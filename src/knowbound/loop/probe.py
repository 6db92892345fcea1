"""The probe stage: the unaligned model's greedy answer and M sampled answers (the paper: M = 10
at temperature 1) to every training question, in ``samples/train.jsonl``; with
``probe.prompt_variants``, one more greedy answer per extra prompt (``samples/train.<prompt>.jsonl``).

Sampling itself, resumable row by row, is ``knowbound.sampling.sample_questions``.
"""

from __future__ import annotations

from pathlib import Path

from knowbound.errors import KnowboundError
from knowbound.loop.rundir import ConfigView, Output, RunDir, StageResult
from knowbound.types import UNALIGNED

NAME = "probe"
# How the unaligned model is asked, beside which model it is (the run's model identity). The
# unaligned model's other settings (max_batch_size, threads, device, api_key_env) change no answer.
MODEL_READS = ("model.backend", "model.base_url", "model.prompt_format", "model.dtype", "model.stop")
MODEL_USES = ("model.device", "model.max_batch_size", "model.threads", "model.api_key_env")
READS = ("probe.m", "probe.temperature", "probe.top_p", "probe.max_new_tokens", "probe.prompt_variants",
         "prompt", "seed", *MODEL_READS)
USES = ("probe.batch_size", *MODEL_USES)


def sample_paths(run_dir: Path, prompt_variants: tuple[str, ...]) -> tuple[Path, list[Path]]:
    """The probe's sample file and one file per prompt variant."""
    return run_dir / "samples" / "train.jsonl", [run_dir / "samples" / f"train.{v}.jsonl" for v in prompt_variants]


def outputs(run: RunDir) -> list[Output]:
    """One output: every sample file of the probe."""
    out, variants = sample_paths(run.dir, run.cfg.probe.prompt_variants)

    def work(view: ConfigView) -> None:
        from knowbound.sampling import sample_questions

        p = view.probe
        questions = run.questions("train")
        backend = run.backend(UNALIGNED, view)
        run.log(f"probe: {len(questions)} questions x (greedy + {p.m} samples at T={p.temperature})")
        stats = sample_questions(questions, backend, out, n=p.m, temperature=p.temperature, top_p=p.top_p,
                                 max_new_tokens=p.max_new_tokens, greedy=True, seed=view.seed, prompt=view.prompt,
                                 batch_size=p.batch_size, stop=view.model.stop)
        for name, path in zip(p.prompt_variants, variants):
            sample_questions(questions, backend, path, n=0, greedy=True, seed=view.seed,
                             max_new_tokens=p.max_new_tokens, prompt=name, batch_size=p.batch_size,
                             stop=view.model.stop)
        if stats.failed:
            raise KnowboundError(f"probe: {stats.failed} samples failed; re-run to retry them")
        run.log(f"probe: {stats.generated} answers generated ({stats.rate:.0f}/s), {stats.skipped} already done")

    return [Output("probe", (out, *variants), work, reads=READS, uses=USES, after=("questions/train",),
                   identity={"model": run.model_id}, resumable=True)]


def run(rundir: RunDir) -> StageResult:
    """Probe the unaligned model (resuming an interrupted probe row by row)."""
    return rundir.run_stage(NAME, outputs(rundir))
