"""Display helpers of the QC pages: limits, states and values in words (and never by
colour alone: every badge carries its word)."""

from __future__ import annotations

import datetime as dt
import re

from django import template
from django.utils import timezone
from django.utils.html import format_html
from django.utils.translation import gettext, gettext_noop, ngettext

from batches.quantities import format_value as _format_value
from carmfg.numbers import localize_number_text
from carmfg.texts import text_of as _text_of
from qc.models import QualitativeResult

register = template.Library()


def format_value(value, places: int | None = None) -> str:
    """A value as people read it, with the decimal separator of the page's language."""
    return localize_number_text(_format_value(value, places))


@register.filter
def text_of(value) -> str:
    """A computed sentence (``carmfg.texts.Text``) in the reader's language; other text as it is."""
    return _text_of(value)


_COMPOSITE_DETAIL = re.compile(r" Part of composite criterion “(?P<group>.*)”: it passes when any read-out passes\.$")
_REQUIRED_DETAIL = re.compile(r"^Required: (?P<result>[a-z ]+)\.$")


@register.filter
def evaluation_detail_text(detail: str) -> str:
    """A result's stored (English) evaluation detail in the reader's language."""
    suffix = ""
    composite = _COMPOSITE_DETAIL.search(detail or "")
    if composite:
        detail = detail[:composite.start()]
        suffix = " " + gettext("Part of composite criterion “%(group)s”: it passes when any read-out passes.") % {
            "group": composite["group"]}
    required = _REQUIRED_DETAIL.match(detail or "")
    if required:
        value = required["result"].replace(" ", "_")
        shown = gettext(QualitativeResult(value).label).lower() if value in QualitativeResult.values else required["result"]
        return gettext("Required: %(result)s.") % {"result": shown} + suffix
    return (gettext(detail) if detail else "") + suffix


SYMBOLS = {"gte": "≥", "gt": ">", "lte": "≤", "lt": "<"}

STATE_BADGES = {
    "passing": ("badge-ok", gettext_noop("Passes")),
    "failing": ("badge-danger", gettext_noop("Fails")),
    "unreviewed": ("badge-warn", gettext_noop("Awaits review")),
    "missing": ("badge-neutral", gettext_noop("No result")),
    "ok": ("badge-ok", gettext_noop("OK")),
    "failed": ("badge-danger", gettext_noop("Failed")),
    "not_applicable": ("badge-neutral", gettext_noop("Not applicable")),
    "pass": ("badge-ok", gettext_noop("Pass")),
    "fail": ("badge-danger", gettext_noop("Fail")),
    "reported": ("badge-info", gettext_noop("Reported")),
    "entered": ("badge-warn", gettext_noop("Awaits review")),
    "reviewed": ("badge-ok", gettext_noop("Reviewed")),
    "invalidated": ("badge-neutral", gettext_noop("Invalidated")),
    "released": ("badge-ok", gettext_noop("Released")),
    "released_exceptional": ("badge-warn", gettext_noop("Released exceptionally")),
    "rejected": ("badge-danger", gettext_noop("Rejected")),
}


@register.filter
def limit_text(test) -> str:
    """The acceptance criterion as a person reads it: "≥ 70 % of nucleated cells"."""
    unit = f" {test.unit}" if test.unit else ""
    if test.limit_type in SYMBOLS:
        bound = test.low if test.limit_type in ("gte", "gt") else test.high
        return f"{SYMBOLS[test.limit_type]} {format_value(bound)}{unit}"
    if test.limit_type == "range":
        return f"{format_value(test.low)} – {format_value(test.high)}{unit}"
    if test.limit_type == "qualitative":
        passing = test.passing_result
        return gettext(QualitativeResult(passing).label) if passing in QualitativeResult.values else passing
    return gettext("Reported") + (f" ({unit.strip()})" if unit else "")


@register.simple_tag
def state_badge(state: str, label: str = ""):
    css, word = STATE_BADGES.get(state, ("badge-neutral", state.replace("_", " ").capitalize()))
    return format_html('<span class="badge {}">{}</span>', css, gettext(label or word))


@register.filter
def qualitative_label(value: str) -> str:
    return gettext(QualitativeResult(value).label) if value in QualitativeResult.values else value


def _today(site) -> dt.date:
    return timezone.now().astimezone(site.zone).date() if site is not None else timezone.localdate()


@register.filter
def days_until(day, site=None) -> str:
    """'in 3 days', 'today', '2 days overdue', counted in the site's calendar."""
    if not isinstance(day, dt.date):
        return ""
    delta = (day - _today(site)).days
    if delta == 0:
        return gettext("today")
    if delta > 0:
        return ngettext("in %(n)s day", "in %(n)s days", delta) % {"n": delta}
    return ngettext("%(n)s day overdue", "%(n)s days overdue", -delta) % {"n": -delta}


@register.filter
def is_past(day, site=None) -> bool:
    return isinstance(day, dt.date) and day < _today(site)


@register.filter
def site_date(moment, site) -> str:
    """Site time with UTC beside it, as everywhere in carmfg."""
    if moment is None:
        return "—"
    return f"{moment.astimezone(site.zone):%Y-%m-%d %H:%M} ({moment.astimezone(dt.UTC):%H:%M} UTC)"


@register.filter
def din_groups(donation) -> str:
    """The DIN as printed on the label: facility, year, sequence, boxed check character."""
    din = donation.din
    return f"{din[:5]} {din[5:7]} {din[7:]} [{donation.check_character}]"


@register.filter
def qp_value(value) -> str:
    return format_value(value)
