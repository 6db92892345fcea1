"""Score predictions: grade every answer, then accuracy, honesty (against a reference) and
calibration, with bootstrap intervals.

The rows are read by ``knowbound.prediction_files`` (their columns are described there); labels
are always recomputed, and an answer without a ``confidence`` column gets the one it states, if
any. The metrics of the graded answers are ``knowbound.metrics.scorecard.summarize``, which the
loop's metrics stage calls too.
"""

from __future__ import annotations

import math
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping, Sequence

import numpy as np

from knowbound.errors import DataError, KnowboundError
from knowbound.grading import CORRECT, WRONG, check_mode, extract_confidence, grade_batch, normalize_aliases
from knowbound.metrics.scorecard import summarize
from knowbound.prediction_files import Predictions, collect_predictions, gc_paused, read_predictions

# rows marked wrong -> a verdict per row: True correct, False wrong, None unparseable (stays wrong)
Rejudge = Callable[[list[dict]], list[bool | None]]
# How many missing ids an error message lists.
_SHOW_IDS = 5


@dataclass
class Graded:
    """A prediction set after grading: what the metrics need from it (label codes, loose flags)."""

    source: str
    ids: list[str]
    labels: np.ndarray
    correct: np.ndarray
    skipped: int = 0
    skipped_rows: tuple[str, ...] = ()  # the errors of the rows skipped (file, line, field)


def _normalized_golds(answers: Sequence[tuple[str, ...]], cache: dict) -> list[tuple[str, ...]]:
    # Many rows share an alias list (the reference and new rows of a question, samples of one
    # question): normalise each distinct list once.
    out = []
    for a in answers:
        g = cache.get(a)
        if g is None:
            g = cache[a] = normalize_aliases(a)
        out.append(g)
    return out


def _grade(p: Predictions, mode: str, cache: dict) -> Graded:
    """Grade every row of ``p``, in file order."""
    golds = _normalized_golds(p.answers, cache)
    labels, correct = grade_batch(p.texts, p.questions, golds, p.choices, p.answer_index, mode)
    return Graded(p.source, p.ids, np.asarray(labels, dtype=np.int8), np.asarray(correct, dtype=bool),
                  len(p.errors), tuple(str(e) for e in p.errors))


def _rejudge(p: Predictions, g: Graded, rejudge: Rejudge) -> tuple[int, int]:
    """Ask the judge about the rows marked wrong; flip those it calls correct. Returns the count
    flipped and the count without a verdict (the judge failed or its reply was unparseable: they
    stay wrong)."""
    wrong = np.flatnonzero(g.labels == WRONG)
    if not wrong.size:
        return 0, 0
    rows = [p.row(int(i)) for i in wrong]
    verdicts = list(rejudge(rows))
    if len(verdicts) != len(rows):
        raise KnowboundError(f"the judge returned {len(verdicts)} verdicts for {len(rows)} rows")
    flip = wrong[np.fromiter((v is True for v in verdicts), dtype=bool, count=len(rows))]
    g.labels[flip] = CORRECT
    g.correct[flip] = True
    return int(flip.size), sum(v is None for v in verdicts)


def _align(new: Graded, reference: Graded) -> np.ndarray:
    """For each new row, the index of the reference row with the same id; error if ids differ."""
    position = {qid: i for i, qid in enumerate(reference.ids)}
    only_new = [qid for qid in new.ids if qid not in position]
    n_ref, n_new = len(reference.ids), len(new.ids)
    only_ref = [] if n_ref == n_new - len(only_new) else sorted(set(reference.ids) - set(new.ids))
    if only_new or only_ref:
        parts = []
        for ids, where in ((only_new, new.source), (only_ref, reference.source)):
            if ids:
                shown = ", ".join(ids[:_SHOW_IDS]) + (", ..." if len(ids) > _SHOW_IDS else "")
                parts.append(f"{len(ids)} ids only in {where} ({shown})")
        raise KnowboundError("predictions and reference must cover the same questions: " + "; ".join(parts))
    return np.fromiter((position[qid] for qid in new.ids), dtype=np.int64, count=n_new)


def score_predictions(
    new: Predictions,
    reference: Predictions | None = None,
    *,
    mode: str = "default",
    rejudge: Rejudge | None = None,
    n_bootstrap: int = 1000,
    seed: int = 0,
    ece_bins: int = 15,
    thresholds: Sequence[float] | None = None,
) -> dict[str, Any]:
    """Grade ``new`` (and ``reference``, matched by id) and summarise; see ``summarize``.

    ``rejudge`` (an LLM judge) sees the rows string matching marked wrong, in both sets; the
    result reports how many it flipped to correct (``judge_changed``, ``reference_judge_changed``)
    and how many got no verdict and stay wrong (``judge_unanswered``, ``reference_judge_unanswered``).
    """
    cache: dict = {}  # normalised gold lists, shared by both sets
    graded = _grade(new, mode, cache)
    graded_ref = None if reference is None else _grade(reference, mode, cache)
    extra: dict[str, Any] = {}
    if rejudge is not None:
        extra["judge_changed"], extra["judge_unanswered"] = _rejudge(new, graded, rejudge)
        if reference is not None:
            extra["reference_judge_changed"], extra["reference_judge_unanswered"] = _rejudge(
                reference, graded_ref, rejudge)
    out = _result(new, graded, graded_ref, n_bootstrap=n_bootstrap, seed=seed, ece_bins=ece_bins,
                  **({} if thresholds is None else {"thresholds": tuple(thresholds)}))
    out.update(extra, scoring=mode)
    return out


def _stated_confidence(text: str) -> float:
    """The confidence an answer states, NaN when it states none (a stated 0% stays 0.0)."""
    value = extract_confidence(text)
    return math.nan if value is None else value


def _result(new: Predictions, graded: Graded, reference: Graded | None, **options) -> dict[str, Any]:
    """``summarize`` of graded sets: pairs the reference with the new rows, adds stated confidences."""
    ref_labels = ref_correct = None
    if reference is not None:
        order = _align(graded, reference)
        ref_labels, ref_correct = reference.labels[order], reference.correct[order]
    confidences = [c if not math.isnan(c) else _stated_confidence(t) for c, t in zip(new.confidences, new.texts)]
    out = summarize(graded.labels, graded.correct, confidences, ref_labels, ref_correct, **options)
    out["skipped"] = graded.skipped + (reference.skipped if reference is not None else 0)
    out["skipped_rows"] = list(graded.skipped_rows) + (list(reference.skipped_rows) if reference is not None else [])
    return out


def score_rows(rows: Iterable[Mapping[str, Any]], reference_rows: Iterable[Mapping[str, Any]] | None = None,
               mode: str = "default", *, skip_bad: bool = False, **options: Any) -> dict[str, Any]:
    """Score in-memory prediction rows (dicts); errors cite ``<rows>``/``<reference>`` and the 1-based row.

    ``options`` are ``score_predictions``'s: rejudge, n_bootstrap, seed, ece_bins.
    """
    new = collect_predictions("<rows>", enumerate(rows, start=1), skip_bad=skip_bad)
    ref = None
    if reference_rows is not None:
        ref = collect_predictions("<reference>", enumerate(reference_rows, start=1), skip_bad=skip_bad)
    return score_predictions(new, ref, mode=mode, **options)


def score_files(
    predictions: str | os.PathLike,
    reference: str | os.PathLike | None = None,
    mode: str = "default",
    *,
    skip_bad: bool = False,
    rejudge: Rejudge | None = None,
    n_bootstrap: int = 1000,
    seed: int = 0,
    ece_bins: int = 15,
    workers: int = 1,
    thresholds: Sequence[float] | None = None,
) -> dict[str, Any]:
    """Read and score prediction files (what ``knowbound score`` runs).

    With ``workers`` >= 2 a large reference file is read and graded in a second process while
    this one does the predictions (same results; about half the time on two idle cores). A judge
    (``rejudge``) keeps everything in this process.
    """
    extra = {} if thresholds is None else {"thresholds": tuple(thresholds)}
    with gc_paused():
        if (reference is None or rejudge is not None or workers < 2 or not Path(reference).is_file()
                or Path(reference).stat().st_size < _WORKER_MIN_BYTES):
            new = read_predictions(predictions, skip_bad=skip_bad)
            ref = read_predictions(reference, skip_bad=skip_bad) if reference is not None else None
            return score_predictions(new, ref, mode=mode, rejudge=rejudge, n_bootstrap=n_bootstrap, seed=seed,
                                     ece_bins=ece_bins, **extra)
        check_mode(mode)
        with _Worker(_graded_file, str(reference), mode, skip_bad) as worker:
            new = read_predictions(predictions, skip_bad=skip_bad)
            graded = _grade(new, mode, {})
            graded_ref = worker.result()
        out = _result(new, graded, graded_ref, n_bootstrap=n_bootstrap, seed=seed, ece_bins=ece_bins, **extra)
        out["scoring"] = mode
        return out


# Below this size the second process costs more (start-up, transfer) than it saves.
_WORKER_MIN_BYTES = 8 << 20


def _graded_file(path: str, mode: str, skip_bad: bool) -> Graded:
    """Read and grade one prediction file (the reference worker's job)."""
    with gc_paused():
        return _grade(read_predictions(path, skip_bad=skip_bad), mode, {})


def _run_in_child(conn, fn, args) -> None:
    # Errors travel as data: a DataError's fields do not survive pickling as an exception.
    try:
        conn.send(("ok", fn(*args)))
    except DataError as exc:
        conn.send(("data", (exc.path, exc.message, exc.line, exc.field)))
    except KnowboundError as exc:
        conn.send(("error", str(exc)))
    except BaseException as exc:  # noqa: BLE001 - reported in the parent, not lost in the child
        conn.send(("error", f"{type(exc).__name__}: {exc}"))
    finally:
        conn.close()


class _Worker:
    """``fn(*args)`` in a second process; ``result()`` returns it or raises its error.
    Leaving the block early (an error in this process) stops the child."""

    def __init__(self, fn, *args):
        import multiprocessing

        # Fork on Linux: no re-import of the caller's __main__, so unguarded scripts work too; the
        # child runs pure Python. Elsewhere fork is unsafe or missing: spawn (needs a guarded main).
        ctx = multiprocessing.get_context("fork" if sys.platform == "linux" else "spawn")
        self._conn, child = ctx.Pipe(duplex=False)
        self._process = ctx.Process(target=_run_in_child, args=(child, fn, args), daemon=True)
        self._process.start()
        child.close()

    def result(self):
        try:
            kind, value = self._conn.recv()
        except EOFError:
            raise KnowboundError("the reference worker process died (out of memory?); retry with --workers 1") from None
        if kind == "data":
            raise DataError(*value)
        if kind == "error":
            raise KnowboundError(value)
        return value

    def __enter__(self) -> "_Worker":
        return self

    def __exit__(self, exc_type, *exc) -> None:
        if exc_type is not None and self._process.is_alive():
            self._process.terminate()  # this side failed: the child's work is not wanted
        self._process.join()
        self._conn.close()
