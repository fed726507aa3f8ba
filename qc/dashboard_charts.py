"""Charts of the vein-to-vein dashboard, drawn on the server as SVG: no JavaScript, the
same picture on screen and on paper (dark ink, values written on the marks, the
target band hatched as well as tinted so that it survives black-and-white printing).
"""

from __future__ import annotations

import math
from html import escape

from django.utils.formats import date_format
from django.utils.translation import gettext as _

from qc.dashboard import MonthMedian, StageCount

INK = "#13202d"
MUTED = "#47566a"
GRID = "#dfe5ec"
BAR = "#0a58a6"
OUTSIDE = "#a3121a"
BAND = "#e3f1e6"
BAND_EDGE = "#14642f"
FONT = 'font-family="DejaVu Sans, Arial, sans-serif" font-size="12"'


def _esc(text: object) -> str:
    return escape(str(text), quote=True)


def _days(value: float) -> str:
    return f"{value:.0f}" if value == int(value) else f"{value:.1f}"


def stage_chart_svg(stages: list[StageCount], *, title: str | None = None) -> str:
    """Horizontal bars, one per stage, the count written at the end of each bar."""
    if not stages:
        return ""
    title = title or _("Batches in flight by stage")
    row_h, right, top = 30, 60, 10
    width = 760
    # Room for the longest stage name (about 7 px a character at 12 px; Russian names
    # run longer than English ones), within bounds that leave the bars room.
    left = int(min(440, max(160, 7.2 * max(len(s.stage) for s in stages) + 20)))
    height = top * 2 + row_h * len(stages)
    most = max(s.count for s in stages)
    plot_w = width - left - right
    desc = "; ".join(f"{s.stage}: {s.count}" for s in stages)
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" viewBox="0 0 {width} {height}" role="img" '
        f'aria-labelledby="stage-chart-title stage-chart-desc" {FONT}>',
        f'<title id="stage-chart-title">{_esc(title)}</title><desc id="stage-chart-desc">{_esc(desc)}</desc>',
    ]
    for i, stage in enumerate(stages):
        y = top + i * row_h
        w = max(2.0, plot_w * stage.count / most)
        out.append(f'<text x="{left - 10}" y="{y + row_h / 2 + 4:.1f}" text-anchor="end" fill="{INK}">{_esc(stage.stage)}</text>')
        out.append(f'<rect x="{left}" y="{y + 5}" width="{w:.1f}" height="{row_h - 10}" fill="{BAR}"/>')
        out.append(f'<text x="{left + w + 6:.1f}" y="{y + row_h / 2 + 4:.1f}" fill="{INK}" font-weight="bold">{stage.count}</text>')
    out.append("</svg>")
    return "".join(out)


def vein_to_vein_chart_svg(months: list[MonthMedian], *, target_min: int, target_max: int,
                           title: str | None = None) -> str:
    """One bar per month (median days from apheresis to first infusion), over the
    target band; a month outside the target is drawn in red and marked "!"; a month
    without infusions shows "—"."""
    if not months:
        return ""
    title = title or _("Median vein-to-vein time per month")
    width, height = 760, 300
    left, right, top, bottom = 56, 20, 40, 52
    plot_w, plot_h = width - left - right, height - top - bottom
    highest = max([m.median_days or 0 for m in months] + [target_max + 4])
    y_max = int(math.ceil(highest / 7.0) * 7)  # whole weeks

    def sy(days: float) -> float:
        return top + plot_h - days / y_max * plot_h

    slot = plot_w / len(months)
    known = [m for m in months if m.median_days is not None]
    desc = (_("Target %(min)s to %(max)s days.") % {"min": target_min, "max": target_max} + " "
            + ("; ".join(_("%(month)s: median %(days)s days of %(n)s") % {
                "month": f"{m.month:%Y-%m}", "days": _days(m.median_days), "n": m.infusions}  # type: ignore[arg-type]
                for m in known) or _("No infusions in these months.")))
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" viewBox="0 0 {width} {height}" role="img" '
        f'aria-labelledby="v2v-chart-title v2v-chart-desc" {FONT}>',
        f'<title id="v2v-chart-title">{_esc(title)}</title><desc id="v2v-chart-desc">{_esc(desc)}</desc>',
        '<defs><pattern id="v2v-hatch" width="8" height="8" patternUnits="userSpaceOnUse" patternTransform="rotate(45)">'
        f'<line x1="0" y1="0" x2="0" y2="8" stroke="{BAND_EDGE}" stroke-width="1" stroke-opacity="0.35"/></pattern></defs>',
    ]
    band_top, band_bottom = sy(target_max), sy(target_min)
    out.append(f'<rect x="{left}" y="{band_top:.1f}" width="{plot_w}" height="{band_bottom - band_top:.1f}" fill="{BAND}"/>')
    out.append(f'<rect x="{left}" y="{band_top:.1f}" width="{plot_w}" height="{band_bottom - band_top:.1f}" '
               'fill="url(#v2v-hatch)"/>')
    for edge in (band_top, band_bottom):
        out.append(f'<line x1="{left}" x2="{left + plot_w}" y1="{edge:.1f}" y2="{edge:.1f}" stroke="{BAND_EDGE}" '
                   'stroke-dasharray="5 3" stroke-width="1.5"/>')
    band_label = _("target %(min)s–%(max)s days") % {"min": target_min, "max": target_max}
    axis_label = _("Days, apheresis to infusion")
    out.append(f'<text x="{left + plot_w - 4}" y="{band_top - 5:.1f}" text-anchor="end" fill="{BAND_EDGE}">'
               f'{_esc(band_label)}</text>')
    for days in range(0, y_max + 1, 7):
        y = sy(days)
        out.append(f'<line x1="{left}" x2="{left + plot_w}" y1="{y:.1f}" y2="{y:.1f}" stroke="{GRID}"/>')
        out.append(f'<text x="{left - 8}" y="{y + 4:.1f}" text-anchor="end" fill="{MUTED}">{days}</text>')
    out.append(f'<text x="14" y="{top + plot_h / 2:.1f}" transform="rotate(-90 14 {top + plot_h / 2:.1f})" '
               f'text-anchor="middle" fill="{MUTED}">{_esc(axis_label)}</text>')
    bar_w = min(36.0, slot * 0.6)
    for i, month in enumerate(months):
        cx = left + slot * (i + 0.5)
        out.append(f'<text x="{cx:.1f}" y="{top + plot_h + 18}" text-anchor="middle" fill="{INK}">'
                   f'{_esc(date_format(month.month, "M"))}</text>')
        out.append(f'<text x="{cx:.1f}" y="{top + plot_h + 33}" text-anchor="middle" fill="{MUTED}" font-size="10">'
                   f'{month.month:%Y}</text>')
        if month.median_days is None:
            out.append(f'<text x="{cx:.1f}" y="{top + plot_h - 6}" text-anchor="middle" fill="{MUTED}">—</text>')
            continue
        y = sy(month.median_days)
        tooltip = _("%(month)s: median %(days)s days, %(n)s infusion(s)") % {
            "month": f"{month.month:%Y-%m}", "days": _days(month.median_days), "n": month.infusions}
        colour = BAR if month.within_target else OUTSIDE
        mark = "" if month.within_target else " !"
        out.append(f'<rect x="{cx - bar_w / 2:.1f}" y="{y:.1f}" width="{bar_w:.1f}" height="{top + plot_h - y:.1f}" '
                   f'fill="{colour}" fill-opacity="0.85"><title>{_esc(tooltip)}</title></rect>')
        out.append(f'<text x="{cx:.1f}" y="{y - 6:.1f}" text-anchor="middle" fill="{INK}" font-weight="bold">'
                   f'{_days(month.median_days)}{mark}</text>')
        out.append(f'<text x="{cx:.1f}" y="{top + plot_h + 46}" text-anchor="middle" fill="{MUTED}" font-size="10">'
                   f'n={month.infusions}</text>')
    out.append(f'<line x1="{left}" x2="{left + plot_w}" y1="{top + plot_h}" y2="{top + plot_h}" stroke="{MUTED}"/>')
    out.append("</svg>")
    return "".join(out)
