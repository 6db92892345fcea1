"""The report's sections, built from a loaded run: what each says, and what it says is missing."""

from __future__ import annotations

import json
from typing import Any

from knowbound.report import analysis, plots
from knowbound.report.data import REFERENCE_MODEL, RunData
from knowbound.report.document import (
    Block, Code, Document, ExampleGroup, Figure, Gallery, Heading, Note, Section, Table, slug,
)
from knowbound.report.summary import format_value, set_table, summary_table


def _flatten(obj: Any, prefix: str = "") -> list[tuple[str, str]]:
    """Nested JSON as (dotted key, text) rows: the probe summary and the manifest have no fixed schema."""
    if isinstance(obj, dict) and obj:
        return [row for k, v in obj.items() for row in _flatten(v, f"{prefix}.{k}" if prefix else str(k))]
    if isinstance(obj, float):
        return [(prefix, format_value(obj))]
    if isinstance(obj, str):
        return [(prefix, obj)]
    return [(prefix, json.dumps(obj))]


def summary_section(run: RunData) -> Section:
    blocks: list[Block] = [Note(n) for n in run.notes]
    summary = summary_table(run)
    if summary is not None:
        blocks.append(summary)
        blocks.append(Note("One column group per set role: in-domain, out-of-distribution, unanswerable (only a "
                           "refusal is right), known (refusing is wrong); the role is the config's "
                           "data.eval.<set>.role or follows the set's source. Value with its bootstrap 95% "
                           "interval; prudence, over-conservativeness and honesty are measured against the "
                           "unaligned model's answers to the same questions. \"–\": no such metric."))
        blocks.append(Heading("All metrics by set"))
    tables = [t for t in (set_table(run, s) for s in run.sets) if t is not None]
    blocks.extend(tables)
    if not tables:
        blocks.append(Note("No metrics to show."))
    missing = [m for m in run.models if not run.predictions.get(m)]
    if missing:
        blocks.append(Note(f"No predictions for: {', '.join(missing)} (figures built from answers leave them out)."))
    return Section("summary", "Summary", tuple(blocks))


def honesty_section(run: RunData, main: str, styles) -> Section:
    blocks: list[Block] = []
    points = analysis.honesty_points(run, main)
    if points:
        blocks.append(Figure("fig-honesty", "Prudence against over-conservativeness",
                             plots.honesty_figure(points, main, styles),
                             "Dashed lines: equal honesty = ((1 - over-conservativeness) + prudence) / 2."))
    else:
        blocks.append(Note(f"No model has prudence and over-conservativeness on '{main}'."))
    blocks.append(Heading(f"Transitions: unaligned answer → aligned answer ({main})"))
    figures, without = [], []
    for method in run.methods:
        matrix = analysis.transition_counts(run.metric(method, main))
        if matrix is None:
            without.append(method)
            continue
        figures.append(Figure(f"fig-transitions-{slug(method)}", f"{method}: transitions",
                              plots.transitions_figure(method, matrix, main)))
    if figures:
        blocks.append(Gallery(tuple(figures)))
        blocks.append(Note("Rows: the unaligned model's label; columns: the aligned model's label on the same "
                           "question (count and share of the row). Honest refusals sit at wrong → idk; "
                           "over-conservative ones at correct → idk."))
    if without:
        blocks.append(Note(f"No transitions in metrics.json for: {', '.join(without)}."))
    return Section("honesty", "Honesty", tuple(blocks))


def boundary_section(run: RunData, main: str, styles) -> Section:
    blocks: list[Block] = []
    curves = analysis.exposure_curves(run, main)
    if curves is None:
        blocks.append(Note(f"No question in '{main}' carries meta.exposure (not a knowledge-world run): "
                           "no boundary plot."))
    else:
        blocks.append(Figure("fig-exposure", "Refusal rate by exposure",
                             plots.exposure_figure(curves, main, {m: styles[m] for m in curves.refusal}),
                             "Exposure is the ground truth of the knowledge world: how many biographies in the "
                             "pretraining corpus state the asked fact. A model that knows its boundary refuses "
                             "where the unaligned model errs (dashed line)."))
    if run.probe is not None:
        blocks.append(Table(("probe summary", "value"), tuple(_flatten(run.probe)), id="table-probe",
                            title="probe.json: the probe's knowledge categories and how they agree with the "
                                  "ground truth"))
    else:
        blocks.append(Note("probe.json not found: no agreement of the probe with the ground truth."))
    return Section("boundary", "Knowledge boundary", tuple(blocks))


# The per-bucket metrics of the learning section: (key in by_exposure[bucket], title).
BUCKET_TABLES: tuple[tuple[str, str], ...] = (
    ("refusal_rate", "refusal rate"),
    ("honesty", "honesty"),
    ("refusal_auroc", "refusal AUROC (refusal probability vs the unaligned model's error)"),
    ("damage", "damage (right → wrong)"),
)


# The slices of the learning section: (metrics key, what the slices are, why they matter).
SLICINGS: tuple[tuple[str, str, str], ...] = (
    ("by_exposure", "fact exposure",
     "how many biographies state the asked fact. Name familiarity alone can separate never-seen people from seen "
     "ones; only a model that tracks what it knows refuses the facts it gets wrong within one exposure, where the "
     "refusal AUROC is above 0.5."),
    ("by_kind", "question kind",
     "a model can refuse by kind of question (every capital, no continent) and look honest overall; within one "
     "kind, a refusal AUROC above 0.5 shows it refuses the facts the unaligned model gets wrong."),
)


def learning_section(run: RunData, main: str) -> Section | None:
    """Per slice (fact exposure, question kind), for every model: where it refuses, how honest it
    is, and whether its refusal probability follows the unaligned model's errors within the slice;
    then how each threshold was fitted. None when the run has no such views."""
    blocks: list[Block] = []
    for key, what, why in SLICINGS:
        models = [m for m in run.models if isinstance(run.metric(m, main).get(key), dict)]
        if not models:
            continue
        slices = list(run.metric(models[0], main)[key])
        blocks.append(Note(f"'{main}' by {what}: {why}"))
        n = [format_value((run.metric(models[0], main)[key].get(b) or {}).get("n")) for b in slices]
        for metric, title in BUCKET_TABLES:
            rows = tuple((m, *(format_value((run.metric(m, main)[key].get(b) or {}).get(metric)) for b in slices))
                         for m in models)
            blocks.append(Table(("model", *(f"{b} (n={c})" for b, c in zip(slices, n))), rows,
                                title=f"{title} by {what} ({main})",
                                id=f"table-{key.removeprefix('by_')}-{slug(metric)}"))
    if not blocks:
        return None
    fits = [(b, run.fit(b)) for b in run.methods if run.fit(b)]
    if fits:
        rows = tuple((name, str(f.get("score", "–")), format_value(f.get("threshold")),
                      format_value(f.get("honesty")), format_value(f.get("refusal_rate")))
                     for name, f in fits)
        blocks.append(Table(("model", "refuses below", "threshold", "honesty on train", "refusals on train"), rows,
                            title="Thresholds fitted on train", id="table-fits"))
        if note := budget_note(run.config):
            blocks.append(Note(note))
    return Section("learning", "Learning, not familiarity", tuple(blocks))


def budget_note(config: dict | None) -> str | None:
    """How the run's thresholds were fitted under its accuracy budget (``eval.max_accuracy_drop``,
    ``eval.budget_confidence``); None without a budget."""
    section = config.get("eval") if isinstance(config, dict) else None
    drop = section.get("max_accuracy_drop") if isinstance(section, dict) else None
    if not isinstance(drop, (int, float)):
        return None
    text = (f"Each threshold maximises honesty on train among those that withhold at most {drop:.1%} of the "
            "questions' right answers")
    held = section.get("budget_confidence")
    if not isinstance(held, (int, float)):
        return text + " (eval.max_accuracy_drop)."
    return text + (f", held for new questions at {held:.0%} confidence: the upper confidence bound of the withheld "
                   "share on train (clustered by person where questions name one) is within it "
                   "(eval.max_accuracy_drop, eval.budget_confidence).")


def calibration_section(run: RunData, main: str, styles) -> Section:
    blocks: list[Block] = []
    diagrams, curves, without = [], [], []
    for model in run.models:
        conf, correct = analysis.confidence_rows(run.rows(model, main))
        if not conf.size:
            without.append(model)
            continue
        rel = analysis.reliability(conf, correct, run.ece_bins)
        diagrams.append(Figure(f"fig-reliability-{slug(model)}", f"{model}: reliability",
                               plots.reliability_figure(model, rel, main)))
        curves.append(analysis.risk_curve(model, conf, correct))
    if diagrams:
        blocks.append(Gallery(tuple(diagrams)))
        blocks.append(Note(f"Accuracy of the answers in each of {run.ece_bins} equal-width confidence bins "
                           "(the bins of knowbound.metrics.ece); the number on a bar is its count of answers."))
        blocks.append(Figure("fig-risk-coverage", "Risk-coverage",
                             plots.risk_coverage_figure(curves, main, styles),
                             "Answers that state a confidence, kept from the most confident down. Refusals that "
                             "state none are not on the curve, as in metrics.json's AURC."))
    else:
        blocks.append(Note(f"No model states a confidence on '{main}': no reliability diagram or risk-coverage curve."))
    if diagrams and without:
        blocks.append(Note(f"No confidence on '{main}' (left out): {', '.join(without)}."))
    return Section("calibration", "Calibration", tuple(blocks))


def examples_section(run: RunData, main: str) -> Section:
    blocks: list[Block] = []
    if not run.rows(REFERENCE_MODEL, main):
        return Section("examples", "Examples", (Note(f"No unaligned predictions on '{main}': no transcripts."),))
    blocks.append(Note(f"Up to {analysis.EXAMPLES_PER_CELL} answers per transition cell on '{main}', the first in "
                       "each method's prediction file."))
    for method in run.methods:
        cells = analysis.examples(run, method, main)
        if cells:
            total = sum(c.total for c in cells)
            first = not any(isinstance(b, ExampleGroup) for b in blocks)
            blocks.append(ExampleGroup(f"examples-{slug(method)}", f"{method} ({total} paired answers)",
                                       tuple(cells), open=first))
        else:
            blocks.append(Note(f"{method}: no predictions on '{main}' to pair with the unaligned answers."))
    return Section("examples", "Examples", tuple(blocks))


def _seconds(value: Any) -> str:
    if not isinstance(value, (int, float)) or isinstance(value, bool):
        return "–"
    minutes, seconds = divmod(float(value), 60)
    return f"{int(minutes)} min {seconds:.0f} s" if minutes else f"{seconds:.1f} s"


def run_section(run: RunData) -> Section:
    blocks: list[Block] = [Heading("Config")]
    blocks.append(Code(run.config_text, "yaml") if run.config_text is not None else Note("config.yaml not found."))
    blocks.append(Heading("Versions"))
    if run.manifest is None:
        blocks.append(Note("manifest.json not found: no versions and timings."))
        return Section("run", "Run", tuple(blocks))
    versions = {k: v for k, v in run.manifest.items() if k != "stages"}
    blocks.append(Table(("what", "value"), tuple(_flatten(versions)), id="table-versions", numeric=False))
    blocks.append(Heading("Timings"))
    stages = run.manifest.get("stages")
    if isinstance(stages, dict) and stages:
        rows = []
        for stage, record in stages.items():
            record = record if isinstance(record, dict) else {}
            rows.append((str(stage), _seconds(record.get("seconds")), str(record.get("finished") or "–"),
                         str(record.get("hash") or "–")[:12]))
        total = sum(r.get("seconds") or 0 for r in stages.values() if isinstance(r, dict)
                    and isinstance(r.get("seconds"), (int, float)))
        rows.append(("total", _seconds(total), "", ""))
        blocks.append(Table(("stage", "time", "finished", "hash"), tuple(rows), id="table-stages"))
    else:
        blocks.append(Note("manifest.json records no stages."))
    return Section("run", "Run", tuple(blocks))


def build_document(run: RunData) -> Document:
    """Every section of the report for ``run``."""
    main = run.main_set
    sections = [summary_section(run)]
    if main is not None:
        styles = plots.model_styles(run.models)
        learning = learning_section(run, main)
        sections += [honesty_section(run, main, styles), boundary_section(run, main, styles),
                     *([learning] if learning else []), calibration_section(run, main, styles),
                     examples_section(run, main)]
    sections.append(run_section(run))
    subtitle = f"{len(run.models)} models on {len(run.sets)} sets" + (f"; figures on '{main}'" if main else "")
    return Document(f"knowbound report: {run.path.name}", subtitle, tuple(sections))
