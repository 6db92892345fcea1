"""Sample answers for a question set, resumably: the probe's most expensive step.

Each question gets an optional greedy answer (sample index 0) and ``n`` sampled answers
(indices 1..n); every answer is one ``Sample`` row of a JSON Lines file.

How a run is cut, and why the result does not depend on interruptions:

* The question list is cut into fixed **chunks** of ``batch_size`` questions (chunk k holds
  questions k*B .. k*B+B-1 of the full list). A shard ``(i, n)`` takes the chunks with
  ``k % n == i``; so sharding changes which process runs a chunk, never the chunk itself.
* A chunk's greedy answers are one backend call and its sampled answers another; their rows are
  appended in one write when both are done. A run killed at any moment leaves whole rows of
  finished chunks and possibly part of the chunk in flight (a torn last line is cut on re-open).
* A re-run skips chunks whose rows are all present. A chunk with *absent* rows is generated again
  with exactly the same prompts as an uninterrupted run would use, and only the absent rows are
  written — so, with a deterministic backend (``hf``: per-row seeds, see ``backends/hf.py``), the
  text is identical, bit for bit. A chunk whose rows are all present but some are failures
  (``finish_reason='error'``) asks again for those questions only.
* Failed rows are written (so they are visible) and retried by the next run; the replacement is
  appended. At the end of a run the file is **compacted** atomically when needed: one row per
  key (the successful one where there is one), ordered by question order then sample index. So
  a finished file never holds two rows for a key, and an interrupted-and-resumed run's file is
  byte-identical to an uninterrupted one's.
"""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Sequence

from knowbound.backends.base import Backend
from knowbound.errors import KnowboundError
from knowbound.io import JsonlAppender, existing_rows, write_jsonl
from knowbound.prompts import render_prompt
from knowbound.types import Question, Sample, SamplingParams

Key = tuple[str, int]


@dataclass(frozen=True)
class SampleStats:
    """What a sampling run did: keys it owns, found done, generated now, and failing at the end."""

    planned: int
    skipped: int
    generated: int
    failed: int
    seconds: float

    @property
    def rate(self) -> float:
        """Samples generated per second."""
        return self.generated / self.seconds if self.seconds > 0 else 0.0


# Batches in a row in which every request failed before sampling stops (with more batches to go).
DEAD_CHUNKS = 2


def parse_shard(text: str) -> tuple[int, int]:
    """``"i/n"`` -> (i, n), 0 <= i < n."""
    try:
        i, n = (int(part) for part in text.split("/"))
    except ValueError:
        raise KnowboundError(f"shard must look like i/n (e.g. 0/4), got '{text}'") from None
    if not 0 <= i < n:
        raise KnowboundError(f"shard {text}: need 0 <= i < n")
    return i, n


def chunk_questions(questions: Sequence[Question], batch_size: int,
                    shard: tuple[int, int] | None = None) -> list[list[tuple[int, Question]]]:
    """The fixed chunks of (position, question) this shard owns, in question order."""
    if batch_size < 1:
        raise KnowboundError(f"batch_size must be at least 1, got {batch_size}")
    i, n = shard or (0, 1)
    indexed = list(enumerate(questions))
    chunks = [indexed[s:s + batch_size] for s in range(0, len(indexed), batch_size)]
    return [c for k, c in enumerate(chunks) if k % n == i]


def _best_rows(rows: Iterable[dict]) -> dict[Key, dict]:
    """Per key, the last successful row, else the last row."""
    best: dict[Key, dict] = {}
    for row in rows:
        key = (str(row["question_id"]), int(row["sample_index"]))
        if key not in best or best[key].get("finish_reason") == "error" or row.get("finish_reason") != "error":
            best[key] = row
    return best


def _check_settings(best: dict[Key, dict], temperature: float, seed: int, out_path: Path) -> None:
    # Mixing settings in one file would silently corrupt the knowledge estimate.
    for (qid, index), row in best.items():
        if index > 0 and (row.get("temperature") != temperature or row.get("seed") != seed):
            raise KnowboundError(
                f"{out_path} holds samples written with temperature={row.get('temperature')} "
                f"seed={row.get('seed')} (question {qid}); resume with the same settings or use another --out")


def sample_questions(
    questions: Sequence[Question],
    backend: Backend,
    out_path: str | Path,
    *,
    n: int = 10,
    temperature: float = 1.0,
    top_p: float = 1.0,
    max_new_tokens: int = 64,
    greedy: bool = True,
    seed: int = 0,
    prompt: str = "typical",
    stop: tuple[str, ...] = (),
    shard: tuple[int, int] | None = None,
    batch_size: int = 100,
    progress: bool = True,
    first: int = 1,
) -> SampleStats:
    """Append greedy (index 0) and ``n`` sampled answers (1..n) per question to ``out_path``,
    skipping rows already there; see the module docstring for chunks, resume and compaction.

    ``first`` > 1 asks for the sampled answers first..first+n-1 instead, the same ones a call for
    all of 1..first+n-1 writes (a round of the adaptive probe, ``knowbound.adaptive``)."""
    started = time.perf_counter()
    out_path = Path(out_path)
    ids = [q.id for q in questions]
    if len(set(ids)) != len(ids):
        dup = next(q for k, q in enumerate(ids) if q in ids[:k])
        raise KnowboundError(f"duplicate question id '{dup}': sample rows are keyed by id")
    if n < 0 or (n == 0 and not greedy):
        raise KnowboundError("nothing to sample: pass n >= 1 or greedy")
    if first < 1:
        raise KnowboundError(f"first sample index must be at least 1, got {first}")
    indices = ([0] if greedy else []) + list(range(first, first + n))
    chunks = chunk_questions(questions, batch_size, shard)
    planned = [(q.id, j) for chunk in chunks for _, q in chunk for j in indices]
    best = _best_rows(existing_rows(out_path))
    _check_settings(best, temperature, seed, out_path)
    done = {k for k, row in best.items() if row.get("finish_reason") != "error"}
    todo = sum(k not in done for k in planned)
    calls = []
    if greedy:
        calls.append((SamplingParams(n=1, temperature=0.0, top_p=1.0, max_new_tokens=max_new_tokens,
                                     stop=tuple(stop), seed=seed), 0))
    if n:
        calls.append((SamplingParams(n=n, temperature=temperature, top_p=top_p, max_new_tokens=max_new_tokens,
                                     stop=tuple(stop), seed=seed, first_index=first - 1), first))
    bar = _progress(todo, progress)
    generated = failures = dead = 0
    with JsonlAppender(out_path) as out:
        for chunk in chunks:
            rows = []
            for params, first in calls:
                rows += _run_call(chunk, backend, params, first, prompt, best, done, temperature, seed)
            rows.sort(key=lambda r: (chunk_position(chunk, r.question_id), r.sample_index))
            out.write(r.to_dict() for r in rows)
            chunk_failures = sum(r.finish_reason == "error" for r in rows)
            generated += len(rows) - chunk_failures
            failures += chunk_failures
            bar.set_postfix(failed=failures, refresh=False)
            bar.update(len(rows))
            dead = dead + 1 if rows and chunk_failures == len(rows) else 0
            if dead == DEAD_CHUNKS and len(chunks) > DEAD_CHUNKS:
                # A backend that answers nothing (a server that is down, a wrong URL or key) would
                # otherwise take every remaining request through all its retries.
                bar.close()
                compact(out_path, questions)
                error = next((r.error for r in rows if r.error), "no error text")
                raise KnowboundError(f"{out_path}: every request of the last {DEAD_CHUNKS} batches failed "
                                     f"({error}); stopped early. The rows so far are kept: re-run to resume")
    bar.close()
    failed = compact(out_path, questions)
    failed_planned = sum(1 for k in planned if k in failed)
    return SampleStats(planned=len(planned), skipped=len(planned) - todo, generated=generated,
                       failed=failed_planned, seconds=time.perf_counter() - started)


def chunk_position(chunk: list[tuple[int, Question]], question_id: str) -> int:
    """Position in the full question list of a question of ``chunk``."""
    return next(pos for pos, q in chunk if q.id == question_id)


def _run_call(chunk, backend, params: SamplingParams, first: int, prompt: str,
              best: dict[Key, dict], done: set[Key], temperature: float, seed: int) -> list[Sample]:
    """Rows this chunk still lacks for one call (greedy or sampled)."""
    keys = {q.id: [(q.id, first + j) for j in range(params.n)] for _, q in chunk}
    if all(k in done for ks in keys.values() for k in ks):
        return []
    absent = any(k not in best for ks in keys.values() for k in ks)
    # Absent rows: the same prompts as an uninterrupted run, so a deterministic backend repeats
    # itself exactly. Only failures: just the questions that failed.
    ask = [q for _, q in chunk if absent or any(k not in done for k in keys[q.id])]
    completions = backend.generate([render_prompt(prompt, q) for q in ask], params)
    rows = []
    for q, outs in zip(ask, completions):
        if len(outs) != params.n:
            raise KnowboundError(f"backend returned {len(outs)} completions for {q.id}, expected {params.n}")
        for key, c in zip(keys[q.id], outs):
            if key in done:
                continue
            rows.append(Sample(question_id=q.id, sample_index=key[1], text=c.text, finish_reason=c.finish_reason,
                               greedy=key[1] == 0, temperature=0.0 if key[1] == 0 else temperature,
                               seed=seed, logprob=c.logprob, error=c.error))
    return rows


def compact(out_path: str | Path, questions: Sequence[Question]) -> set[Key]:
    """Rewrite ``out_path`` atomically with one row per key in question then sample order, when
    it is not already so; returns the keys whose row is a failure. Rows of unknown questions are
    kept, after the others, in file order."""
    rows = existing_rows(out_path)
    file_order = {id(r): k for k, r in enumerate(rows)}
    position = {q.id: k for k, q in enumerate(questions)}

    def order(row: dict) -> tuple[int, int, int]:
        pos = position.get(str(row["question_id"]))
        if pos is None:
            return (len(position), 0, file_order[id(row)])
        return (pos, int(row["sample_index"]), 0)

    ordered = sorted(_best_rows(rows).values(), key=order)
    if [id(r) for r in ordered] != [id(r) for r in rows]:
        write_jsonl(out_path, ordered)
    return {(str(r["question_id"]), int(r["sample_index"])) for r in ordered if r.get("finish_reason") == "error"}


def merge_samples(out_path: str | Path, shard_paths: Sequence[str | Path],
                  questions: Sequence[Question] | None = None) -> tuple[int, int]:
    """Join shard files into ``out_path`` (atomically), ordered by question then sample index.

    A key in two shards, or a key missing (with ``questions``: any question lacking a sample
    index that others have; without: any question seen lacking one), is an error. Without
    ``questions`` the order of questions is their first appearance in the shards. Returns
    (rows written, failed rows kept).
    """
    merged: dict[Key, dict] = {}
    origin: dict[Key, str] = {}
    for path in shard_paths:
        if not Path(path).exists():
            raise KnowboundError(f"{path}: shard file not found")
        for key, row in _best_rows(existing_rows(path)).items():
            if key in merged:
                raise KnowboundError(f"duplicate key (question {key[0]}, sample {key[1]}) in {origin[key]} and {path}")
            merged[key], origin[key] = row, str(path)
    if not merged:
        raise KnowboundError("the shards hold no rows")
    order = [q.id for q in questions] if questions is not None else list(dict.fromkeys(k[0] for k in merged))
    indices = sorted({k[1] for k in merged})
    missing = [(qid, j) for qid in order for j in indices if (qid, j) not in merged]
    if missing:
        qid, j = missing[0]
        raise KnowboundError(f"{len(missing)} samples missing, e.g. question {qid} sample {j}: "
                             "finish (re-run) every shard before merging")
    position = {qid: k for k, qid in enumerate(order)}
    stray = [k for k in merged if k[0] not in position]
    if stray:
        raise KnowboundError(f"{len(stray)} rows belong to questions not in the question set, e.g. {stray[0][0]}")
    rows = sorted(merged.values(), key=lambda r: (position[str(r["question_id"])], int(r["sample_index"])))
    write_jsonl(out_path, rows)
    return len(rows), sum(r.get("finish_reason") == "error" for r in rows)


def _progress(total: int, enabled: bool):
    from tqdm import tqdm

    return tqdm(total=total, unit="sample", disable=not enabled or total == 0, file=sys.stderr,
                dynamic_ncols=True, smoothing=0.1)
