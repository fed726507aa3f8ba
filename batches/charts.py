"""Charts of the batch record drawn on the server as SVG (no JavaScript; the same markup
goes into the PDF batch record).

``expansion_chart_svg`` plots viable cells (log scale, left axis) and viability (%,
right axis) over the culture, with the viability action limit when the recipe has one.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from decimal import Decimal
from html import escape

from django.utils.translation import gettext, gettext_noop

from batches.quantities import format_value

WIDTH, HEIGHT = 760, 300
LEFT, RIGHT, TOP, BOTTOM = 78, 64, 34, 48
CELLS_COLOUR = "#0a58a6"
VIABILITY_COLOUR = "#14642f"
LIMIT_COLOUR = "#a3121a"
GRID = "#dfe5ec"
INK = "#13202d"
MUTED = "#47566a"


@dataclass(frozen=True)
class ExpansionPoint:
    x: float                      # culture day, or count number when the days are not known
    viable_cells: Decimal | None
    viability_pct: Decimal | None
    label: str = ""               # e.g. "#3"


def _esc(text: str) -> str:
    return escape(str(text), quote=True)


def _nice_log_range(values: list[float]) -> tuple[int, int]:
    lo = math.floor(math.log10(min(values)))
    hi = math.ceil(math.log10(max(values)))
    if hi <= lo:
        hi = lo + 1
    return lo, hi


def _superscript(n: int) -> str:
    return str(n).translate(str.maketrans("0123456789-", "⁰¹²³⁴⁵⁶⁷⁸⁹⁻"))


def expansion_chart_svg(points: list[ExpansionPoint], *, x_title: str = "Day of culture",
                        viability_action_min: Decimal | None = None, title: str = "Expansion") -> str:
    """An accessible SVG (role img, title and description) of the expansion; empty
    string when there is nothing to plot."""
    cells = [(p.x, float(p.viable_cells), p) for p in points if p.viable_cells is not None and p.viable_cells > 0]
    viab = [(p.x, float(p.viability_pct), p) for p in points if p.viability_pct is not None]
    if not cells and not viab:
        return ""
    xs = [x for x, _, _ in cells + viab]
    x_lo, x_hi = min(xs), max(xs)
    if x_hi - x_lo < 1:
        x_lo, x_hi = x_lo - 0.5, x_hi + 0.5
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM

    def sx(x: float) -> float:
        return LEFT + (x - x_lo) / (x_hi - x_lo) * plot_w

    log_lo, log_hi = _nice_log_range([v for _, v, _ in cells]) if cells else (6, 10)

    def sy_cells(v: float) -> float:
        return TOP + plot_h - (math.log10(v) - log_lo) / (log_hi - log_lo) * plot_h

    v_lo = 50.0 if all(v >= 50 for _, v, _ in viab) and (viability_action_min is None or viability_action_min >= 50) else 0.0

    def sy_viab(v: float) -> float:
        return TOP + plot_h - (max(v, v_lo) - v_lo) / (100 - v_lo) * plot_h

    last_cells = cells[-1][2] if cells else None
    last_viab = viab[-1][2] if viab else None
    desc = (gettext("%(count)s viable cell counts") % {"count": len(cells)}
            + (gettext(", last %(cells)s cells") % {"cells": format_value(last_cells.viable_cells)}
               if last_cells else "")
            + (gettext("; viability last %(pct)s %%") % {"pct": format_value(last_viab.viability_pct)}
               if last_viab else ""))
    # Outside the f-strings, where makemessages finds them.
    cells_axis, viability_axis = gettext("Viable cells (log)"), gettext("Viability (%)")
    cells_legend, viability_legend = gettext("Viable cells"), gettext("Viability")
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" '
        f'aria-labelledby="chart-title chart-desc" font-family="DejaVu Sans, Arial, sans-serif" font-size="12">',
        f'<title id="chart-title">{_esc(title)}</title><desc id="chart-desc">{_esc(desc)}</desc>',
        f'<rect x="{LEFT}" y="{TOP}" width="{plot_w}" height="{plot_h}" fill="#ffffff" stroke="{GRID}"/>',
    ]
    # left axis: decades of cells, with 2× and 5× marks when there are few decades
    for exp in range(log_lo, log_hi + 1):
        y: float = sy_cells(10.0 ** exp)
        out.append(f'<line x1="{LEFT}" x2="{LEFT + plot_w}" y1="{y:.1f}" y2="{y:.1f}" stroke="{GRID}"/>')
        out.append(f'<text x="{LEFT - 8}" y="{y + 4:.1f}" text-anchor="end" fill="{CELLS_COLOUR}">10{_superscript(exp)}</text>')
        if log_hi - log_lo <= 3 and exp < log_hi:
            for factor in (2, 5):
                y = sy_cells(factor * 10.0 ** exp)
                out.append(f'<line x1="{LEFT}" x2="{LEFT + plot_w}" y1="{y:.1f}" y2="{y:.1f}" stroke="{GRID}" '
                           'stroke-dasharray="1 3"/>')
                out.append(f'<text x="{LEFT - 8}" y="{y + 4:.1f}" text-anchor="end" fill="{CELLS_COLOUR}" '
                           f'font-size="10">{factor}×10{_superscript(exp)}</text>')
    # right axis: viability
    step = 10 if v_lo >= 50 else 20
    for pct in range(int(v_lo), 101, step):
        y = sy_viab(float(pct))
        out.append(f'<text x="{LEFT + plot_w + 8}" y="{y + 4:.1f}" fill="{VIABILITY_COLOUR}">{pct} %</text>')
    # x axis ticks
    span = x_hi - x_lo
    tick = 1 if span <= 14 else 2 if span <= 28 else 5
    first = math.ceil(x_lo)
    for day in range(first, math.floor(x_hi) + 1, tick):
        px = sx(day)
        out.append(f'<line x1="{px:.1f}" x2="{px:.1f}" y1="{TOP + plot_h}" y2="{TOP + plot_h + 5}" stroke="{MUTED}"/>')
        out.append(f'<text x="{px:.1f}" y="{TOP + plot_h + 18}" text-anchor="middle" fill="{INK}">{day}</text>')
    out.append(f'<text x="{LEFT + plot_w / 2:.1f}" y="{HEIGHT - 8}" text-anchor="middle" fill="{MUTED}">{_esc(gettext(x_title))}</text>')
    out.append(f'<text x="14" y="{TOP + plot_h / 2:.1f}" transform="rotate(-90 14 {TOP + plot_h / 2:.1f})" '
               f'text-anchor="middle" fill="{CELLS_COLOUR}">{_esc(cells_axis)}</text>')
    out.append(f'<text x="{WIDTH - 10}" y="{TOP + plot_h / 2:.1f}" transform="rotate(90 {WIDTH - 10} {TOP + plot_h / 2:.1f})" '
               f'text-anchor="middle" fill="{VIABILITY_COLOUR}">{_esc(viability_axis)}</text>')
    if viability_action_min is not None and float(viability_action_min) >= v_lo:
        y = sy_viab(float(viability_action_min))
        out.append(f'<line x1="{LEFT}" x2="{LEFT + plot_w}" y1="{y:.1f}" y2="{y:.1f}" stroke="{LIMIT_COLOUR}" '
                   f'stroke-dasharray="2 4" stroke-width="1.5"/>')
        limit_text = gettext("viability action limit %(limit)s %%") % {"limit": format_value(viability_action_min)}
        out.append(f'<text x="{LEFT + 6}" y="{y - 5:.1f}" fill="{LIMIT_COLOUR}">{_esc(limit_text)}</text>')
    if viab:
        path = " ".join(f"{'M' if i == 0 else 'L'}{sx(x):.1f},{sy_viab(v):.1f}" for i, (x, v, _) in enumerate(viab))
        out.append(f'<path d="{path}" fill="none" stroke="{VIABILITY_COLOUR}" stroke-width="2" stroke-dasharray="6 4"/>')
        for x, v, p in viab:
            out.append(f'<rect x="{sx(x) - 4:.1f}" y="{sy_viab(v) - 4:.1f}" width="8" height="8" fill="{VIABILITY_COLOUR}">'
                       f'<title>{_esc(p.label)} viability {_esc(format_value(p.viability_pct))} %</title></rect>')
    if cells:
        path = " ".join(f"{'M' if i == 0 else 'L'}{sx(x):.1f},{sy_cells(v):.1f}" for i, (x, v, _) in enumerate(cells))
        out.append(f'<path d="{path}" fill="none" stroke="{CELLS_COLOUR}" stroke-width="2.5"/>')
        for x, v, p in cells:
            out.append(f'<circle cx="{sx(x):.1f}" cy="{sy_cells(v):.1f}" r="4.5" fill="{CELLS_COLOUR}">'
                       f'<title>{_esc(p.label)} {_esc(format_value(p.viable_cells))} viable cells</title></circle>')
        last_x, last_v, p = cells[-1]
        anchor = "end" if sx(last_x) > LEFT + plot_w * 0.75 else "start"
        dx = -8 if anchor == "end" else 8
        out.append(f'<text x="{sx(last_x) + dx:.1f}" y="{sy_cells(last_v) - 9:.1f}" text-anchor="{anchor}" fill="{CELLS_COLOUR}" '
                   f'font-weight="bold">{_esc(format_value(p.viable_cells))}</text>')
    # legend
    out.append(f'<line x1="{LEFT}" x2="{LEFT + 26}" y1="16" y2="16" stroke="{CELLS_COLOUR}" stroke-width="2.5"/>'
               f'<circle cx="{LEFT + 13}" cy="16" r="4.5" fill="{CELLS_COLOUR}"/>'
               f'<text x="{LEFT + 32}" y="20" fill="{INK}">{_esc(cells_legend)}</text>')
    out.append(f'<line x1="{LEFT + 140}" x2="{LEFT + 166}" y1="16" y2="16" stroke="{VIABILITY_COLOUR}" stroke-width="2" '
               f'stroke-dasharray="6 4"/><rect x="{LEFT + 149}" y="12" width="8" height="8" fill="{VIABILITY_COLOUR}"/>'
               f'<text x="{LEFT + 172}" y="20" fill="{INK}">{_esc(viability_legend)}</text>')
    out.append("</svg>")
    return "".join(out)


def expansion_points(plan) -> tuple[list[ExpansionPoint], str, Decimal | None]:
    """The points of ``plan``'s repeatable counts: cells from the repeatable value step
    counted in cells, viability from the one in %. The x axis is the day of culture
    (from the batch's start) when the counts span at least a day, else the count number."""
    cells_step = next((s for s in plan.steps if s.definition.repeatable and s.definition.kind == "value"
                       and s.definition.unit == "cells"), None)
    viab_step = next((s for s in plan.steps if s.definition.repeatable and s.definition.kind == "value"
                      and s.definition.unit == "%"), None)
    if cells_step is None and viab_step is None:
        return [], "", None
    start = plan.batch.started_at
    rows: dict[int, dict] = {}
    for step, key in ((cells_step, "cells"), (viab_step, "viab")):
        if step is None:
            continue
        for rec in step.records:
            row = rows.setdefault(rec.record.occurrence, {"at": rec.record.performed_at})
            row[key] = rec.record.value
    if not rows:
        return [], "", None
    days = {n: (row["at"] - start).total_seconds() / 86400 for n, row in rows.items()} if start else {}
    by_day = bool(days) and max(days.values()) - min(days.values()) >= 1
    points = [
        ExpansionPoint(x=days[n] if by_day else float(n), viable_cells=row.get("cells"), viability_pct=row.get("viab"),
                       label=f"Count #{n}")
        for n, row in sorted(rows.items())
    ]
    limit = viab_step.definition.action_min if viab_step is not None else None
    # English (kept in a record's data); the chart translates it when drawn.
    return points, gettext_noop("Day of culture") if by_day else gettext_noop("Count number (one per day)"), limit
