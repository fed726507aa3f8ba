"""Showing recorded manufacturing data: numbers as people read them, limits, results."""

from __future__ import annotations

from decimal import Decimal, InvalidOperation

from django import template
from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString, mark_safe
from django.utils.translation import gettext, gettext_noop

from batches.models import LimitResult, StepKind
from batches.quantities import format_value as _format_value
from carmfg.numbers import localize_number_text

register = template.Library()


def format_value(value, places: int | None = None) -> str:
    """A value as people read it, with the decimal separator of the page's language."""
    return localize_number_text(_format_value(value, places))


@register.filter
def qty(value, places=None):
    """``1.20 × 10⁹`` for big counts, ``72.5`` otherwise."""
    if value in (None, ""):
        return "—"
    if isinstance(value, list):
        return ", ".join(format_value(v) for v in value)
    try:
        places = int(places) if places not in (None, "") else None
    except (TypeError, ValueError):
        places = None
    return format_value(value if not isinstance(value, str) else _dec(value), places)


def _dec(text: str):
    try:
        return Decimal(text)
    except InvalidOperation:
        return text


LIMIT_BADGES = {
    LimitResult.WITHIN: ("badge-ok", gettext_noop("Within limits")),
    LimitResult.ALERT: ("badge-warn", gettext_noop("Outside alert limits")),
    LimitResult.ACTION: ("badge-danger", gettext_noop("OUT OF LIMITS")),
}


@register.simple_tag
def limit_badge(result) -> SafeString:
    if result not in LIMIT_BADGES:
        return mark_safe("")  # noqa: S308  (constant)
    css, text = LIMIT_BADGES[result]
    return format_html('<span class="badge {}">{}</span>', css, gettext(text))


def _content_html(content: dict, definition) -> SafeString:
    """What a step record says, from its content (current or a correction's old/new)."""
    kind = definition.kind
    unit = content.get("unit") or definition.unit
    if kind in (StepKind.VALUE, StepKind.CALCULATION) and content.get("value") not in (None, ""):
        places = definition.decimal_places
        return format_html('<span class="rec-value">{}</span> <span class="rec-unit">{}</span>',
                           format_value(_dec(str(content["value"])), places if abs(_num(content["value"])) < 100_000 else None),
                           unit)
    if kind == StepKind.MATERIAL:
        return format_html("{} #{}{}", gettext("lot"), content.get("material_lot") or "—",
                           f" · {content['quantity']}" if content.get("quantity") else "")
    if kind in (StepKind.SCAN, StepKind.SAMPLE):
        return format_html("<code>{}</code>", content.get("value_text") or "—")
    if kind == StepKind.EQUIPMENT:
        return format_html("{} #{}", gettext("equipment"), content.get("equipment") or "—")
    return format_html("{}", content.get("comment") or gettext("done"))


def _num(value) -> Decimal:
    try:
        return Decimal(str(value))
    except InvalidOperation:
        return Decimal(0)


@register.simple_tag
def record_value(record) -> SafeString:
    """The current content of a step record, in words."""
    definition = record.definition
    kind = definition.kind
    if kind in (StepKind.VALUE, StepKind.CALCULATION) and record.value is not None:
        places = definition.decimal_places if abs(record.value) < 100_000 else None
        return format_html('<span class="rec-value">{}</span> <span class="rec-unit">{}</span>',
                           format_value(record.value, places), definition.unit)
    if kind == StepKind.MATERIAL and record.material_lot_id:
        lot = record.material_lot
        qty_text = f" · {format_value(record.quantity)} {definition.unit}" if record.quantity is not None else ""
        return format_html('{} <span class="muted">{}</span> <b>{}</b>{}{}', lot.name, gettext("lot"), lot.lot_number,
                           qty_text,
                           format_html(' · <span class="muted">{}</span> {} TU/mL', gettext("titer"),
                                       format_value(lot.titer_tu_per_ml))
                           if lot.titer_tu_per_ml else "")
    if kind == StepKind.EQUIPMENT and record.equipment_id:
        eq = record.equipment
        return format_html("{} <b>{}</b>", eq.name, eq.asset_id)
    if kind in (StepKind.SCAN, StepKind.SAMPLE):
        return format_html('<span class="badge badge-ok">{}</span> <code>{}</code>', gettext("Label matches"),
                           record.value_text)
    if kind == StepKind.SIGNATURE:
        return format_html("{}", gettext("Signed"))
    return format_html("{}", gettext("Done"))


@register.simple_tag
def correction_old(correction, definition) -> SafeString:
    return _content_html(correction.old_content, definition)


@register.simple_tag
def calc_outputs(record) -> SafeString:
    """A calculation's secondary outputs (cells per bag, volume per bag…)."""
    from batches.calculations import REGISTRY

    calc = REGISTRY.get(record.definition.calculation)
    if calc is None or not record.calculation_outputs:
        return mark_safe("")  # noqa: S308  (constant)
    rows = []
    for out in calc.outputs:
        raw = record.calculation_outputs.get(out.name)
        if raw is None or out.name == "target_reached":
            continue
        if isinstance(raw, list):
            shown = " · ".join(f"{i}: {format_value(_dec(v))}" for i, v in enumerate(raw, start=1))
        else:
            shown = format_value(_dec(raw))
        rows.append((out.label, shown, out.unit))
    return format_html('<ul class="calc-outputs">{}</ul>',
                       format_html_join("", "<li>{}: <b>{}</b> {}</li>", rows))


@register.inclusion_tag("batches/execution/_sig_compact.html")
def sig_compact(view, site=None):
    """A signature on one line (Part 11 §11.50: name, date and time, meaning), UTC in the tooltip."""
    import datetime as dt

    sig = view.signature
    local = sig.signed_at.astimezone(site.zone) if site is not None else sig.signed_at
    return {
        "sig": sig, "status": view.status,
        "local": local.strftime("%d %b %Y %H:%M") + (f" {local.tzname()}" if site is not None else " UTC"),
        "utc": sig.signed_at.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M:%S UTC"),
    }


@register.simple_tag
def local_time(value, site) -> SafeString:
    """A moment in the site's zone on one line, UTC in the tooltip (lists, where space is short)."""
    import datetime as dt

    if value is None:
        return mark_safe("—")  # noqa: S308  (constant)
    local = value.astimezone(site.zone)
    utc = value.astimezone(dt.UTC)
    return format_html('<time datetime="{}" title="{} UTC">{} <small class="muted">{}</small></time>', utc.isoformat(),
                       utc.strftime("%Y-%m-%d %H:%M:%S"), local.strftime("%Y-%m-%d %H:%M"), local.tzname())
