"""Numbers people read and write on paper: gap-free per site and year."""

from __future__ import annotations

from django.db import transaction
from django.utils import timezone

from batches.models import SiteCounter


def next_number(*, site, key: str, year: int | None = None) -> int:
    """The next value of a site's counter; must run inside the caller's transaction."""
    year = year if year is not None else timezone.now().year
    with transaction.atomic(savepoint=False):
        SiteCounter.objects.bulk_create([SiteCounter(site=site, key=key, year=year, last=0)], ignore_conflicts=True)
        counter = SiteCounter.objects.select_for_update().get(site=site, key=key, year=year)
        counter.last += 1
        counter.save(update_fields=["last"])
        return counter.last


def formatted_number(*, site, prefix: str, key: str | None = None) -> str:
    """e.g. ``B-MSK-2026-0007`` for batches of site ``msk``."""
    now = timezone.now()
    value = next_number(site=site, key=key or prefix, year=now.year)
    return f"{prefix}-{site.code.upper()}-{now.year}-{value:04d}"
