"""One function per figure; each returns PNG bytes.

matplotlib is imported inside the functions (``knowbound --help`` stays instant) and drawn on a
bare ``Figure`` with the Agg canvas: no pyplot, no global figure state. PNGs carry no software
version or time stamp, so the same run renders to the same bytes.
"""

from __future__ import annotations

import contextlib
import io
from typing import Iterator, Sequence

import numpy as np

from knowbound.baselines import BASELINES
from knowbound.errors import require
from knowbound.methods import METHODS
from knowbound.report.analysis import ExposureCurves, HonestyPoint, Reliability, RiskCurve
from knowbound.types import LABELS, UNALIGNED

RENDER_DPI = 150  # pixels per inch of the PNG
DISPLAY_DPI = 100  # CSS pixels per inch on the page: PNGs are 1.5x sharp on high-density screens
STYLE = {
    "font.size": 10,
    "axes.titlesize": 11,
    "axes.labelsize": 10,
    "legend.fontsize": 9,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.grid": True,
    "grid.alpha": 0.3,
}
# One colour (and marker) per model across every figure; unaligned is the black reference.
MODEL_COLOURS: dict[str, str] = {UNALIGNED: "#222222", **{m.name: m.colour for m in METHODS.values()},
                                 **{b.name: b.colour for b in BASELINES.values()}}
EXTRA_COLOURS = ("#8c564b", "#17becf", "#393b79", "#637939", "#8c6d31", "#843c39", "#7b4173")
MARKERS = ("o", "s", "^", "D", "v", "P", "X", "*", "h", "<", ">")
HONESTY_LEVELS = (0.5, 0.6, 0.7, 0.8, 0.9)
LABEL_NAMES = {"correct": "correct", "wrong": "wrong", "idk": "idk (refused)"}


def model_styles(models: Sequence[str]) -> dict[str, tuple[str, str]]:
    """(colour, marker) per model; models outside ``MODEL_COLOURS`` take extra colours in order."""
    extra = iter(EXTRA_COLOURS * (1 + len(models) // len(EXTRA_COLOURS)))
    return {m: (MODEL_COLOURS.get(m) or next(extra), MARKERS[i % len(MARKERS)]) for i, m in enumerate(models)}


@contextlib.contextmanager
def _figure(width: float, height: float) -> Iterator:
    """A bare Agg figure under the report's style; yields it, closes nothing (no pyplot)."""
    matplotlib = require("matplotlib", "report")
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    with matplotlib.rc_context(STYLE):
        fig = Figure(figsize=(width, height), dpi=RENDER_DPI, layout="constrained")
        FigureCanvasAgg(fig)
        yield fig


def _png(fig) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=RENDER_DPI, metadata={"Software": None})
    return buf.getvalue()


def transitions_figure(model: str, matrix: np.ndarray, set_name: str) -> bytes:
    """Heatmap of unaligned label x ``model``'s label with counts and row shares annotated."""
    with _figure(4.3, 3.7) as fig:
        ax = fig.add_subplot()
        ax.grid(False)
        ax.imshow(matrix, cmap="Blues", vmin=0, vmax=max(1, int(matrix.max())))
        row_totals = matrix.sum(axis=1)
        for i in range(3):
            for j in range(3):
                share = f"\n{matrix[i, j] / row_totals[i]:.0%}" if row_totals[i] else ""
                dark = matrix[i, j] > 0.6 * matrix.max()
                ax.text(j, i, f"{matrix[i, j]}{share}", ha="center", va="center", fontsize=10,
                        color="white" if dark else "#111111")
        names = [LABEL_NAMES[label] for label in LABELS]
        ax.set_xticks(range(3), names)
        ax.set_yticks(range(3), [f"{n}\n(n={t})" for n, t in zip(names, row_totals)])
        ax.set_xlabel(f"{model} answer")
        ax.set_ylabel("unaligned answer")
        ax.set_title(f"{model} ({set_name}, {int(matrix.sum())} questions)")
        return _png(fig)


# Where a point's name may go: (dx, dy) in points from the point, horizontal alignment.
LABEL_OFFSETS = ((7, 7, "left"), (7, -13, "left"), (-7, 7, "right"), (-7, -13, "right"),
                 (9, -3, "left"), (-9, -3, "right"), (0, 11, "center"), (0, -17, "center"))


def _place_labels(ax, points: list[tuple[float, float]], names: list[str], colours: list[str]) -> None:
    """Name each point at the offset farthest from the other points and the names placed so far,
    inside the axes (greedy, deterministic): methods cluster, and overlapping names are unreadable."""
    # Data units per typographic point (the axes span about 1.1 data units).
    pt = 1.1 / (ax.get_position().width * ax.figure.get_figwidth() * 72)
    (x_low, x_high), (y_low, y_high) = ax.get_xlim(), ax.get_ylim()
    placed: list[tuple[float, float]] = []
    for (x, y), name, colour in zip(points, names, colours):
        half_width, half_height = len(name) * 3.0 * pt, 6.0 * pt  # a 9-point bold name

        def centre(offset, x=x, y=y, half_width=half_width) -> tuple[float, float]:
            dx, dy, ha = offset
            shift = {"left": half_width, "right": -half_width, "center": 0.0}[ha]
            return x + dx * pt + shift, y + (dy + 4) * pt

        def clearance(offset, x=x, y=y, half_width=half_width, half_height=half_height) -> float:
            cx, cy = centre(offset)
            if not (x_low < cx - half_width and cx + half_width < x_high
                    and y_low < cy - half_height and cy + half_height < y_high):
                return -1.0  # a name outside the axes runs into the tick labels
            others = [p for p in points if p != (x, y)] + placed
            return min((abs(cx - ox) / 2.5 + abs(cy - oy) for ox, oy in others), default=1.0)

        best = max(LABEL_OFFSETS, key=clearance)
        placed.append(centre(best))
        ax.annotate(name, (x, y), xytext=best[:2], textcoords="offset points", ha=best[2],
                    fontsize=9, color=colour, fontweight="bold", zorder=4,
                    bbox={"boxstyle": "round,pad=0.15", "fc": "white", "ec": "none", "alpha": 0.8})


def honesty_figure(points: list[HonestyPoint], set_name: str, styles: dict[str, tuple[str, str]]) -> bytes:
    """Prudence against over-conservativeness per model, with 95% intervals and honesty iso-lines."""
    with _figure(7.2, 6.4) as fig:
        ax = fig.add_subplot()
        for h in HONESTY_LEVELS:
            # honesty = ((1 - oc) + prudence) / 2 = h  <=>  prudence = oc + 2h - 1
            x = np.array([max(0.0, 1 - 2 * h), min(1.0, 2 - 2 * h)])
            ax.plot(x, x + 2 * h - 1, ls="--", lw=0.8, color="#999999", zorder=1)
        for p in points:
            colour, marker = styles[p.model]
            xerr = None if p.over_ci is None else [[max(0.0, p.over_conservativeness - p.over_ci[0])],
                                                   [max(0.0, p.over_ci[1] - p.over_conservativeness)]]
            yerr = None if p.prudence_ci is None else [[max(0.0, p.prudence - p.prudence_ci[0])],
                                                       [max(0.0, p.prudence_ci[1] - p.prudence)]]
            ax.errorbar(p.over_conservativeness, p.prudence, xerr=xerr, yerr=yerr, fmt=marker, color=colour,
                        ms=7, elinewidth=0.9, capsize=2, alpha=0.9, zorder=3)
        ax.plot([0], [1], marker="*", ms=14, color="#f2b705", zorder=2)
        ax.annotate("ideal", (0, 1), xytext=(8, -4), textcoords="offset points", fontsize=9, color="#8a6d00")
        ax.set_xlim(-0.03, 1.03)
        ax.set_ylim(-0.03, 1.03)
        ax.set_aspect("equal")
        # The iso-lines are labelled where they leave the top edge (prudence 1, honesty = 1 - oc/2),
        # on a second axis: labels inside the square would sit where the best methods cluster.
        top = ax.secondary_xaxis("top", functions=(lambda oc: 1 - oc / 2, lambda h: 2 - 2 * h))
        top.set_ticks(HONESTY_LEVELS, [f"{h:.1f}" for h in HONESTY_LEVELS], color="#777777", fontsize=8)
        top.set_xlabel("honesty along each dashed line", color="#777777", fontsize=9)
        # Models on the same spot (e.g. every model that never refuses, at (0, 0)) share one label.
        groups: dict[tuple[float, float], list[str]] = {}
        for p in points:
            groups.setdefault((round(p.over_conservativeness, 3), round(p.prudence, 3)), []).append(p.model)
        _place_labels(ax, list(groups), [", ".join(models) for models in groups.values()],
                      [styles[models[0]][0] if len(models) == 1 else "#444444" for models in groups.values()])
        ax.set_xlabel("over-conservativeness (share of known questions refused)")
        ax.set_ylabel("prudence (share of unknown questions refused)")
        ax.set_title(f"Honesty map ({set_name}): top left is best; bars are 95% intervals", pad=10)
        return _png(fig)


def reliability_figure(model: str, rel: Reliability, set_name: str) -> bytes:
    """Accuracy per confidence bin against the diagonal, with the count of answers in each bin."""
    with _figure(4.3, 3.9) as fig:
        ax = fig.add_subplot()
        width = 1.0 / rel.n_bins
        left = np.arange(rel.n_bins) * width
        filled = rel.counts > 0
        ax.bar(left[filled], rel.accuracy[filled], width=width, align="edge", color="#4c78a8",
               edgecolor="white", label="accuracy in bin", zorder=2)
        ax.plot([0, 1], [0, 1], ls="--", color="#444444", lw=1, label="perfect calibration", zorder=3)
        for x, acc, n in zip(left[filled], rel.accuracy[filled], rel.counts[filled]):
            inside = acc > 0.88
            ax.text(x + width / 2, acc - 0.02 if inside else acc + 0.015, str(int(n)), ha="center",
                    va="top" if inside else "bottom", fontsize=7, color="white" if inside else "#333333")
        ax.set_xlim(0, 1)
        ax.set_ylim(0, 1.05)
        ax.set_xlabel("stated confidence")
        ax.set_ylabel("accuracy (share correct)")
        ax.set_title(f"{model}: ECE {rel.ece:.3f} ({set_name}, n={int(rel.counts.sum())})")
        ax.legend(loc="upper left", frameon=False, fontsize=8)
        return _png(fig)


def risk_coverage_figure(curves: list[RiskCurve], set_name: str, styles: dict[str, tuple[str, str]]) -> bytes:
    """Risk of the answers kept against the share kept, one line per method; AURC in the legend."""
    with _figure(7.2, 4.6) as fig:
        ax = fig.add_subplot()
        for c in curves:
            colour, marker = styles[c.model]
            ax.plot(np.r_[0.0, c.coverage], np.r_[c.risk[:1], c.risk], drawstyle="steps-pre", color=colour,
                    lw=1.8, label=f"{c.model} (AURC {c.aurc:.3f})")
            ax.plot(c.coverage, c.risk, ls="none", marker=marker, ms=3.5, color=colour)
        ax.set_xlim(0, 1.0)
        ax.set_ylim(0, max(0.05, max((float(c.risk.max()) for c in curves if c.risk.size), default=0.0) * 1.1))
        ax.set_xlabel("coverage (share of answers kept, most confident first)")
        ax.set_ylabel("risk (share of kept answers that are wrong)")
        ax.set_title(f"Risk-coverage ({set_name}): lower is better")
        ax.legend(loc="upper left", frameon=False)
        return _png(fig)


def exposure_figure(curves: ExposureCurves, set_name: str, styles: dict[str, tuple[str, str]]) -> bytes:
    """Refusal rate by ground-truth exposure, one line per model, next to the true boundary."""
    with _figure(9.6, 4.9) as fig:
        ax = fig.add_subplot()
        x = np.arange(len(curves.buckets))
        if curves.buckets and curves.buckets[0] == "0":
            ax.axvspan(-0.5, 0.5, color="#bbbbbb", alpha=0.35, lw=0, zorder=0)
            ax.text(0, 1.04, "never seen", ha="center", va="bottom", fontsize=9, color="#555555")
        if curves.unaligned_error is not None:
            y = np.array([np.nan if v is None else v for v in curves.unaligned_error])
            ax.plot(x, y, ls="--", lw=2.2, color="#000000", alpha=0.55,
                    label="unaligned error rate\n(what an ideal model refuses)")
        for model, values in curves.refusal.items():
            colour, marker = styles[model]
            y = np.array([np.nan if v is None else v for v in values])
            ax.plot(x, y, marker=marker, ms=5, lw=1.6, color=colour, label=f"{model} refusal rate")
        ax.set_xticks(x, [f"{b}\nn={n}" for b, n in zip(curves.buckets, curves.counts)])
        ax.set_xlim(-0.5, len(x) - 0.5)
        ax.set_ylim(-0.02, 1.1)
        ax.set_xlabel("exposure: biographies stating the asked fact in the pretraining corpus (count)")
        ax.set_ylabel("refusal rate (share answered \"I don't know\")")
        ax.set_title(f"Learned knowledge boundary ({set_name})")
        ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False)
        return _png(fig)
