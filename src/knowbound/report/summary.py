"""The metric tables: the knowledge-world summary and one table per evaluated set.

Cells read ``metrics.json`` as it is: a value with its bootstrap 95% interval from ``ci`` where
there is one ("0.812 [0.79, 0.83]"), and "–" for a set or metric the run does not have.
"""

from __future__ import annotations

import math
from typing import Any

from knowbound.report.data import RunData
from knowbound.report.document import Table, slug

MISSING = "–"
VALUE_DIGITS = 3  # enough to tell methods apart on a few hundred questions
CI_DIGITS = 2  # an interval is a range, not a second estimate

# The roles an eval set can play, and the summary columns of each: (dotted metric, header). An
# in-domain set shows honesty with the damage it hides and, on the knowledge world, the views that
# tell learning from name familiarity (honesty on facts of people seen at least once, the refusal
# AUROC within one fact exposure); an out-of-distribution set honesty and accuracy; a set where
# only a refusal is right (PUQA-like) the refusal rate; a set of facts the model knows (PKQA-like)
# the refusal rate, which there is over-conservativeness, and accuracy.
ROLE_COLUMNS: dict[str, tuple[tuple[str, str], ...]] = {
    "in-domain": (("prudence", "prudence"), ("over_conservativeness", "over-conservativeness"),
                  ("honesty", "honesty"), ("accuracy", "accuracy"), ("damage", "damage: right → wrong"),
                  ("seen_people.honesty", "honesty, people seen ≥ 1"),
                  ("refusal_auroc_within_exposure", "refusal AUROC within exposure 1-7"),
                  ("refusal_auroc_within_kind", "refusal AUROC within kind"), ("ece", "ECE")),
    "ood": (("honesty", "honesty"), ("accuracy", "accuracy")),
    "unanswerable": (("refusal_rate", "refusal rate"),),
    "known": (("refusal_rate", "refusal rate"), ("accuracy", "accuracy")),
}
# Columns shown only when some model has the metric (the knowledge world's views).
OPTIONAL_COLUMNS = frozenset({"seen_people.honesty", "refusal_auroc_within_exposure", "refusal_auroc_within_kind",
                              "ece"})
ROLES = tuple(ROLE_COLUMNS)


def default_role(name: str, spec: dict | None = None) -> str:
    """A set's role when the config names none: from its adapter or source, else in-domain for
    `test`-like names and out-of-distribution for the rest."""
    spec = spec or {}
    adapter, source = str(spec.get("adapter") or ""), str(spec.get("source") or "")
    if adapter == "puqa" or source.endswith((":fictional", ":unstated", ":invented")) or name in ("puqa", "fictional", "unstated", "invented"):
        return "unanswerable"
    if adapter == "pkqa" or source.endswith(":popular") or name in ("pkqa", "popular"):
        return "known"
    if name in ("test", "triviaqa") or source.endswith(":test"):
        return "in-domain"
    return "ood"


def set_roles(config: dict | None, sets: list[str]) -> dict[str, str]:
    """Role of every evaluated set: the config's ``data.eval.<set>.role``, else ``default_role``."""
    specs = ((config or {}).get("data") or {}).get("eval") or {}
    roles = {}
    for name in sets:
        spec = specs.get(name) if isinstance(specs.get(name), dict) else {}
        role = spec.get("role")
        roles[name] = role if role in ROLE_COLUMNS else default_role(name, spec)
    return roles


def summary_columns(metrics: dict, roles: dict[str, str]) -> list[tuple[str, str, str]]:
    """(set, metric, header) columns: one group per role (in ``ROLES`` order), a set per group."""
    out = []
    for role in ROLES:
        for set_name in (s for s, r in roles.items() if r == role):
            for key, header in ROLE_COLUMNS[role]:
                if key in OPTIONAL_COLUMNS and not any(
                        isinstance(lookup(per.get(set_name, {}), key), (int, float)) for per in metrics.values()):
                    continue
                out.append((set_name, key, f"{header} ({set_name})"))
    return out


# A metric read from another key when its own is absent (`refusal_rate` is the idk share).
FALLBACK: dict[str, str] = {"refusal_rate": "idk"}

# Columns of the per-set tables, in this order when present; other numeric keys follow, sorted.
SET_COLUMNS: tuple[tuple[str, str], ...] = (
    ("n", "n"),
    ("accuracy", "accuracy"),
    ("honesty", "honesty"),
    ("prudence", "prudence"),
    ("over_conservativeness", "over-conservativeness"),
    ("correct", "correct"),
    ("wrong", "wrong"),
    ("idk", "refusal rate (idk)"),
    ("ece", "ECE"),
    ("brier", "Brier"),
    ("auroc", "AUROC"),
    ("average_precision", "AP"),
    ("aurc", "AURC"),
    ("refusal_auroc", "refusal AUROC"),
)
# Bookkeeping keys of `summarize` and `knowbound score`, and `refusal_rate` (the idk column).
HIDDEN: frozenset[str] = frozenset({"n_confidence", "skipped", "skipped_rows", "judge_changed",
                                    "reference_judge_changed", "judge_unanswered", "reference_judge_unanswered",
                                    "refusal_rate"})


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return None if math.isnan(value) else float(value)


def format_value(value: Any, interval: Any = None) -> str:
    """``0.812 [0.79, 0.83]``; an integer count as is; "–" for a missing or undefined value."""
    number = _number(value)
    if number is None:
        return MISSING
    if isinstance(value, int):
        return str(value)
    text = f"{number:.{VALUE_DIGITS}f}"
    if isinstance(interval, (list, tuple)) and len(interval) == 2:
        low, high = (_number(x) for x in interval)
        if low is not None and high is not None:
            text += f" [{low:.{CI_DIGITS}f}, {high:.{CI_DIGITS}f}]"
    return text


def lookup(metrics: dict[str, Any], key: str) -> Any:
    """A metric by (dotted) key, with ``FALLBACK``; None when absent."""
    node: Any = metrics
    for part in key.split("."):
        if not isinstance(node, dict) or part not in node:
            return metrics.get(FALLBACK.get(key, ""))
        node = node[part]
    return node


def cell(metrics: dict[str, Any], key: str) -> str:
    """One formatted metric of one model on one set, with its interval."""
    ci = metrics.get("ci") if isinstance(metrics.get("ci"), dict) else {}
    other = FALLBACK.get(key)
    interval = ci[key] if key in ci else ci.get(other)
    return format_value(lookup(metrics, key), interval)


def summary_table(run: RunData) -> Table | None:
    """Rows = models, columns = one group per set role (``summary_columns``); None without metrics."""
    columns = summary_columns(run.metrics, set_roles(run.config, run.sets))
    if not columns:
        return None
    rows = tuple((model, *(cell(run.metric(model, s), key) for s, key, _ in columns)) for model in run.models)
    return Table(columns=("model", *(h for *_, h in columns)), rows=rows, id="table-summary")


def set_columns(run: RunData, set_name: str) -> list[tuple[str, str]]:
    """The (key, header) columns of a set's table: every numeric metric some model has there."""
    present: set[str] = set()
    for model in run.models:
        present |= {k for k, v in run.metric(model, set_name).items() if _number(v) is not None}
    present -= HIDDEN
    for model in run.models:
        present |= {f"threshold_score.{t}" for t in (run.metric(model, set_name).get("threshold_score") or {})}
    known = [(k, h) for k, h in SET_COLUMNS if k in present]
    scores = sorted((k for k in present if k.startswith("threshold_score.")), key=lambda k: float(k.split(".", 1)[1]))
    extra = sorted(present - {k for k, _ in SET_COLUMNS} - set(scores))
    return (known + [(k, f"threshold score t={k.split('.', 1)[1]}") for k in scores]
            + [(k, k.replace("_", " ")) for k in extra])


def set_table(run: RunData, set_name: str) -> Table | None:
    """Every metric of every model on one set, or None when no model has metrics there."""
    columns = set_columns(run, set_name)
    models = [m for m in run.models if run.metric(m, set_name)]
    if not columns or not models:
        return None
    rows = tuple((m, *(cell(run.metric(m, set_name), k) for k, _ in columns)) for m in models)
    return Table(columns=("model", *(h for _, h in columns)), rows=rows, title=f"set: {set_name}",
                 id=f"table-set-{slug(set_name)}")
