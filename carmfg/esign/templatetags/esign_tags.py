from __future__ import annotations

import datetime as dt

from django import template

register = template.Library()


@register.inclusion_tag("esign/_signature.html")
def signature_manifest(view, site=None):
    """Part 11 §11.50 manifestation: printed name, date and time (UTC and local), meaning."""
    sig = getattr(view, "signature", view)
    status = getattr(view, "status", "voided" if sig.voided_at else "valid")
    local = sig.signed_at.astimezone(site.zone) if site is not None else None
    return {
        "sig": sig,
        "status": status,
        # Formatted here: the |date filter would convert back to the active time zone.
        "utc": sig.signed_at.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M:%S"),
        "local": local.strftime("%Y-%m-%d %H:%M:%S") if local else "",
        "local_zone": site.time_zone if site is not None else "",
    }
