"""matplotlib figures for the report, returned as inline SVG data URIs (no files, no network).

SVG with its text left as text: a full report draws about seventy figures, and rasterizing them took most of its
time; the page is also half the size, and the labels can be searched and copied.

Figures are drawn on matplotlib.figure.Figure directly (Agg canvas, no pyplot state), so rendering is
independent of any interactive backend. A figure draws the plain series it is handed (labels, numbers, estimates,
breakdowns) and knows nothing of the report: what to draw is chosen by the page (page.py, extras.py).
"""

from __future__ import annotations

import base64
import io
import textwrap
from dataclasses import dataclass, field

from matplotlib import rc_context
from matplotlib.figure import Figure
from matplotlib.patches import Patch

from opbench.attribution import CATEGORIES, Breakdown
from opbench.stats import Estimate

BASELINE_COLOR = "#8c96a3"
CANDIDATE_COLOR = "#2b6cb0"
PALETTE = ("#2b6cb0", "#dd6b20", "#2f855a", "#9b2c2c", "#6b46c1", "#b7791f", "#0987a0", "#d53f8c")
# text as <text> elements, not glyph paths; a fixed salt gives the same ids, so the same results give the same page
SVG_STYLE = {"svg.fonttype": "none", "svg.hashsalt": "opbench"}


@dataclass
class Series:
    """One line of points with error bars: how far below and above each point its interval reaches."""

    label: str
    xs: list[float] = field(default_factory=list)
    ys: list[float] = field(default_factory=list)
    below: list[float] = field(default_factory=list)
    above: list[float] = field(default_factory=list)


def _text(label: str, width: int = 0) -> str:
    """A label as plain text: '$' would start matplotlib mathtext; long labels are wrapped or cut."""
    label = label.replace("$", r"\$")
    if width and len(label) > width:
        label = "\n".join(textwrap.wrap(label, width)[:2])
    return label


def data_uri(fig: Figure, tight: bool = True) -> str:
    """The figure as an SVG data URI, cropped to what it draws unless its layout is fixed (`tight=False`: cropping
    draws the figure twice)."""
    buffer = io.BytesIO()
    with rc_context(SVG_STYLE):
        fig.savefig(buffer, format="svg", bbox_inches="tight" if tight else None)
    return "data:image/svg+xml;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def _unit(values: list[float]) -> tuple[float, str]:
    top = max(values, default=1.0)
    return (1e6, "µs") if top < 1e-3 else (1e3, "ms") if top < 1 else (1.0, "s")


def _err(e: Estimate, scale: float) -> tuple[float, float]:
    if not e.has_interval:
        return (0.0, 0.0)
    return (max(e.value - e.low, 0.0) * scale, max(e.high - e.value, 0.0) * scale)


def comparison_figure(
    labels: list[str],
    baseline: list[Estimate | None],
    candidate: list[Estimate | None],
    baseline_id: str,
    candidate_id: str,
) -> str | None:
    """Baseline and candidate median latency with 95% intervals, one pair of bars per label (a (device, backend));
    None marks a side not measured there."""
    values = [e.high if e.has_interval else e.value for e in (*baseline, *candidate) if e is not None]
    if not values:
        return None
    scale, unit = _unit(values)
    # a fixed layout in inches (labels wrapped at 34 characters on the left, tick labels, axis label and legend
    # below), so that the figure is drawn once; the report draws one per comparison
    width_in, left_in, bottom_in = 6.4, 2.4, 1.05
    height_in = bottom_in + 0.1 + 0.5 * len(labels)
    fig = Figure(figsize=(width_in, height_in))
    fig.subplots_adjust(
        left=left_in / width_in, right=1 - 0.2 / width_in, bottom=bottom_in / height_in, top=1 - 0.1 / height_in
    )
    ax = fig.add_subplot()
    height = 0.38
    for offset, side, color in ((-height / 2, baseline, BASELINE_COLOR), (height / 2, candidate, CANDIDATE_COLOR)):
        ys, widths, errors = [], [], []  # one bar series per side (a call per bar took most of a large report's time)
        for i, e in enumerate(side):
            if e is None:
                ax.text(0, i + offset, " missing", va="center", fontsize=8, color="#9b2c2c")
                continue
            ys.append(i + offset)
            widths.append(e.value * scale)
            errors.append(_err(e, scale))
        if ys:
            xerr = [[low for low, _ in errors], [high for _, high in errors]]
            ax.barh(ys, widths, height, color=color, xerr=xerr, capsize=2, error_kw={"lw": 0.8})
    ax.set_yticks(range(len(labels)), [_text(label, 34) for label in labels], fontsize=8)
    ax.invert_yaxis()
    ax.set_xlabel(f"median latency ({unit}), 95% interval", fontsize=8)
    ax.tick_params(axis="x", labelsize=8)
    ax.grid(axis="x", alpha=0.3)
    ax.set_axisbelow(True)
    ax.set_xlim(left=0)
    handles = [
        Patch(color=BASELINE_COLOR, label=_text("baseline: " + baseline_id, 60)),
        Patch(color=CANDIDATE_COLOR, label=_text("candidate: " + candidate_id, 60)),
    ]
    fig.legend(handles=handles, fontsize=7, loc="lower center", bbox_to_anchor=(0.5, 0.02 / height_in))
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)
    return data_uri(fig, tight=False)


def sweep_figure(xs: list[int], x_label: str, lines: list[tuple[Series, Series]]) -> str | None:
    """Achieved GMAC/s against the swept parameter (`xs`, a log-2 axis): per target a colour, its candidate line
    solid and its baseline dashed (Obs 1's kernel sweep); None when no line has a point."""
    if not xs:
        return None
    fig = Figure(figsize=(6.4, 3.6))
    ax = fig.add_subplot()
    drawn = False
    for i, pair in enumerate(lines):
        color = PALETTE[i % len(PALETTE)]
        for series, style in zip(pair, ("-o", "--s"), strict=True):
            if series.xs:
                drawn = True
                ax.errorbar(
                    series.xs, series.ys, yerr=[series.below, series.above], fmt=style, color=color, ms=4, lw=1.2,
                    capsize=2, label=_text(series.label, 60),
                )  # fmt: skip
    if not drawn:
        return None
    ax.set_xscale("log", base=2)
    ax.set_xticks(xs, [str(x) for x in xs])
    ax.set_xlabel(_text(x_label), fontsize=8)
    ax.set_ylabel("achieved GMAC/s (higher is better)", fontsize=8)
    ax.tick_params(labelsize=8)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)
    return data_uri(fig)


def model_map_figure(panels: list[tuple[str, list[tuple[str, float, float]]]]) -> str | None:
    """Latency against published top-1 (the paper's Figure 1): one panel per (title, points), each point
    (model name, median latency in ms, top-1 %) labelled with its model; panels without a point are left out."""
    panels = [(label, pts) for label, pts in panels if pts]
    if not panels:
        return None
    columns = min(3, len(panels))
    rows = -(-len(panels) // columns)
    fig = Figure(figsize=(4.4 * columns, 3.4 * rows))
    for i, (label, pts) in enumerate(panels, start=1):
        ax = fig.add_subplot(rows, columns, i)
        color = PALETTE[(i - 1) % len(PALETTE)]
        ax.scatter([p[1] for p in pts], [p[2] for p in pts], s=14, color=color)
        for name, ms, top1 in pts:
            ax.annotate(_text(name), (ms, top1), fontsize=6, xytext=(3, 2), textcoords="offset points")
        ax.set_xscale("log")
        ax.set_title(_text(label, 48), fontsize=8)
        ax.set_xlabel("median latency (ms)", fontsize=7)
        ax.set_ylabel("published top-1 (%)", fontsize=7)
        ax.tick_params(labelsize=7)
        ax.grid(alpha=0.3)
    fig.tight_layout()
    return data_uri(fig)


def breakdown_figure(panels: list[tuple[str, list[tuple[str, Breakdown]]]]) -> str | None:
    """Where each case's time goes (the paper's Figure 2): per (title, bars), a bar per (name, breakdown) stacked
    by category, as the share of its profiled time; the label carries the profile's coverage of the end-to-end
    median."""
    if not panels:
        return None
    fig = Figure(figsize=(7.2, sum(0.9 + 0.22 * len(bars) for _, bars in panels)))
    heights = [0.9 + 0.22 * len(bars) for _, bars in panels]
    grid = fig.add_gridspec(len(panels), 1, height_ratios=heights)
    for i, (title, bars) in enumerate(panels):
        ax = fig.add_subplot(grid[i])
        left = [0.0] * len(bars)
        for j, category in enumerate(CATEGORIES):
            widths = [b.shares[category] * 100 for _, b in bars]
            color = PALETTE[j % len(PALETTE)] if category != "other" else BASELINE_COLOR
            ax.barh(range(len(bars)), widths, left=left, color=color, label=category if i == 0 else None)
            left = [a + w for a, w in zip(left, widths, strict=True)]
        ax.set_yticks(range(len(bars)), [f"{n} ({b.coverage:.2f})" for n, b in bars], fontsize=6)
        ax.invert_yaxis()
        ax.set_xlim(0, 100)
        ax.set_title(_text(title), fontsize=8, loc="left")
        ax.tick_params(axis="x", labelsize=7)
    fig.axes[0].legend(fontsize=6, ncol=5, loc="lower left", bbox_to_anchor=(0.0, 1.12))
    fig.axes[-1].set_xlabel("share of the profiled time (%); in brackets: profiled / end-to-end median", fontsize=7)
    return data_uri(fig)
