"""The probe stage: the unaligned model's greedy answer and M sampled answers (the paper: M = 10
at temperature 1) to every training question, in ``samples/train.jsonl``; with
``probe.prompt_variants``, one more greedy answer per extra prompt (``samples/train.<prompt>.jsonl``).

Sampling itself, resumable row by row, is ``knowbound.sampling.sample_questions``; with
``probe.adaptive``, ``knowbound.adaptive.sample_adaptive`` draws the M samples in rounds and stops a
question once its label at ``build.tau`` is settled (so the probe then also reads the build's
labelling rule and the grading).
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
# Read by a server backend only (an hf run's digests stay as they were without them).
SERVER_READS = ("model.extra_body",)
MODEL_USES = ("model.device", "model.max_batch_size", "model.threads", "model.api_key_env")
READS = ("probe.m", "probe.temperature", "probe.top_p", "probe.max_new_tokens", "probe.prompt_variants",
         "prompt", "seed", *MODEL_READS)
USES = ("probe.batch_size", *MODEL_USES)
# Read only by an adaptive probe: a full probe's digest (and its files) stay as they were.
ADAPTIVE_READS = ("probe.adaptive", "probe.round_size", "probe.confidence", "build.tau", "build.known_rule",
                  "grading")
# Methods and baselines that use the samples themselves or their count k, not only the label.
SAMPLE_USERS = ("confidence-num", "confidence-verb", "multisample", "self-consistency")


def sample_paths(run_dir: Path, prompt_variants: tuple[str, ...]) -> tuple[Path, list[Path]]:
    """The probe's sample file and one file per prompt variant."""
    return run_dir / "samples" / "train.jsonl", [run_dir / "samples" / f"train.{v}.jsonl" for v in prompt_variants]


def server_reads(run: RunDir) -> tuple[str, ...]:
    """The model keys a server backend reads beside MODEL_READS (none for hf)."""
    return SERVER_READS if run.cfg.model.backend != "hf" else ()


def outputs(run: RunDir) -> list[Output]:
    """One output: every sample file of the probe."""
    out, variants = sample_paths(run.dir, run.cfg.probe.prompt_variants)
    adaptive = run.cfg.probe.adaptive
    sample_users = [n for n in (*run.cfg.methods, *run.cfg.eval.baselines) if n in SAMPLE_USERS] if adaptive else []

    def work(view: ConfigView) -> None:
        from knowbound.sampling import sample_questions

        p = view.probe
        questions = run.questions("train")
        backend = run.backend(UNALIGNED, view)
        if adaptive:
            stats = _adaptive(run, view, questions, backend, out, sample_users)
        else:
            run.log(f"probe: {len(questions)} questions x (greedy + {p.m} samples at T={p.temperature})")
            stats = sample_questions(questions, backend, out, n=p.m, temperature=p.temperature, top_p=p.top_p,
                                     max_new_tokens=p.max_new_tokens, greedy=True, seed=view.seed,
                                     prompt=view.prompt, batch_size=p.batch_size, stop=view.model.stop)
        for name, path in zip(p.prompt_variants, variants):
            sample_questions(questions, backend, path, n=0, greedy=True, seed=view.seed,
                             max_new_tokens=p.max_new_tokens, prompt=name, batch_size=p.batch_size,
                             stop=view.model.stop)
        if stats.failed:
            raise KnowboundError(f"probe: {stats.failed} samples failed; re-run to retry them")
        run.log(f"probe: {stats.generated} answers generated ({stats.rate:.0f}/s), {stats.skipped} already done")

    reads = READS + server_reads(run) + (ADAPTIVE_READS if adaptive else ())
    return [Output("probe", (out, *variants), work, reads=reads, uses=USES, after=("questions/train",),
                   identity={"model": run.model_id}, resumable=True)]


def _adaptive(run: RunDir, view: ConfigView, questions, backend, out: Path, sample_users: list[str]):
    """The adaptive probe (``knowbound.adaptive``), with what it saved in the log."""
    from knowbound.adaptive import sample_adaptive

    p = view.probe
    run.log(f"probe: {len(questions)} questions x (greedy + up to {p.m} samples at T={p.temperature}, "
            f"in rounds of {p.round_size} until the label at tau={view.build.tau} is settled "
            f"with confidence {p.confidence})")
    if sample_users:
        run.log("probe: note: an adaptive probe draws fewer samples, and these read the samples themselves or "
                f"their count: {', '.join(sample_users)} (docs/adaptive-probing.md)")
    stats = sample_adaptive(questions, backend, out, mode=view.grading, m=p.m, tau=view.build.tau,
                            known_rule=view.build.known_rule, round_size=p.round_size, confidence=p.confidence,
                            temperature=p.temperature, top_p=p.top_p, max_new_tokens=p.max_new_tokens,
                            seed=view.seed, prompt=view.prompt, stop=view.model.stop, batch_size=p.batch_size)
    run.log(f"probe: {stats.drawn} of {stats.full} samples drawn ({stats.saving:.2f}x fewer); questions ended: "
            + ", ".join(f"{k} {v}" for k, v in stats.ended.items()))
    return stats


def run(rundir: RunDir) -> StageResult:
    """Probe the unaligned model (resuming an interrupted probe row by row)."""
    return rundir.run_stage(NAME, outputs(rundir))
