from __future__ import annotations

import json

from django import template
from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString, mark_safe

register = template.Library()


@register.simple_tag
def site_time(value, site=None) -> SafeString:
    """A server time in the site's zone with UTC beside it (ALCOA+: unambiguous)."""
    if value is None:
        return mark_safe("—")  # noqa: S308
    local = value.astimezone(site.zone) if site is not None else value
    utc = value.astimezone(__import__("datetime").UTC)
    if site is None:
        return format_html('<time datetime="{}">{} UTC</time>', utc.isoformat(), utc.strftime("%Y-%m-%d %H:%M:%S"))
    return format_html(
        '<time datetime="{}">{} <small class="muted">{}</small></time><br><small class="muted">{} UTC</small>',
        utc.isoformat(), local.strftime("%Y-%m-%d %H:%M:%S"), local.tzname(), utc.strftime("%Y-%m-%d %H:%M:%S"),
    )


def _short(value) -> str:
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
    return text if len(text) <= 120 else text[:117] + "…"


@register.simple_tag
def changes_list(changes) -> SafeString:
    if not changes:
        return mark_safe("")  # noqa: S308  (constant, nothing to escape)
    items = []
    for key, value in sorted(changes.items()):
        if isinstance(value, dict) and set(value) == {"old", "new"}:
            items.append(format_html('<b>{}</b>: <span class="change-old">{}</span> → <span class="change-new">{}</span>',
                                     key, _short(value["old"]), _short(value["new"])))
        else:
            items.append(format_html("<b>{}</b>: {}", key, _short(value)))
    return format_html("<div>{}</div>", format_html_join("", "<div>{}</div>", ((i,) for i in items)))
