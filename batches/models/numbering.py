from __future__ import annotations

from django.db import models


class SiteCounter(models.Model):
    """Gap-free, per-site, per-year counters for batch, order, deviation numbers and DINs."""

    site = models.ForeignKey("accounts.Site", on_delete=models.PROTECT, related_name="+")
    key = models.CharField(max_length=32)
    year = models.PositiveSmallIntegerField()
    last = models.PositiveIntegerField(default=0)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["site", "key", "year"], name="one_counter_per_site_key_year")]

    def __str__(self) -> str:
        return f"{self.key} {self.year}: {self.last}"
