"""Versioned release specifications. A batch pins the version in force when it starts."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_noop

from batches.models.mbr import fixed_decimal


class SpecStatus(models.TextChoices):
    DRAFT = "draft", gettext_noop("Draft")
    APPROVED = "approved", gettext_noop("Approved")
    EFFECTIVE = "effective", gettext_noop("Effective")
    SUPERSEDED = "superseded", gettext_noop("Superseded")


class Specification(models.Model):
    site = models.ForeignKey("accounts.Site", on_delete=models.PROTECT, related_name="+")
    product = models.ForeignKey("batches.Product", on_delete=models.PROTECT, related_name="specifications")
    version = models.PositiveIntegerField()
    title = models.CharField(max_length=200)
    status = models.CharField(max_length=16, choices=SpecStatus.choices, default=SpecStatus.DRAFT)
    # Dose per kg of body weight, in CAR+ viable cells, and the allowed margin to the target.
    dose_min_cells_per_kg = models.DecimalField(max_digits=20, decimal_places=0)
    dose_max_cells_per_kg = models.DecimalField(max_digits=20, decimal_places=0)
    dose_tolerance_percent = models.DecimalField(max_digits=5, decimal_places=2, default=20)
    based_on = models.ForeignKey("self", null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    change_summary = models.TextField(blank=True, help_text="What changed from the version it is based on, and why")
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.PROTECT, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    effective_at = models.DateTimeField(null=True, blank=True)
    revision = models.PositiveIntegerField(default=1)

    class Meta:
        ordering = ["product", "-version"]
        constraints = [
            models.UniqueConstraint(fields=["product", "version"], name="spec_version_unique_per_product"),
            models.UniqueConstraint(fields=["product"], condition=Q(status="effective"), name="one_effective_spec_per_product"),
        ]

    def __str__(self) -> str:
        return f"{self.title} v{self.version}"

    def signable_content(self) -> dict:
        return {
            "product": self.product_id, "version": self.version, "title": self.title,
            # Decimals with the field's own places, as read back: the hash must not depend on it.
            "dose_min_cells_per_kg": fixed_decimal(self.dose_min_cells_per_kg, 0),
            "dose_max_cells_per_kg": fixed_decimal(self.dose_max_cells_per_kg, 0),
            "dose_tolerance_percent": fixed_decimal(self.dose_tolerance_percent, 2), "change_summary": self.change_summary,
            "tests": [t.definition_content() for t in self.tests.all()],
        }


class LimitType(models.TextChoices):
    AT_LEAST = "gte", gettext_noop("≥ low")
    MORE_THAN = "gt", gettext_noop("> low")
    AT_MOST = "lte", gettext_noop("≤ high")
    LESS_THAN = "lt", gettext_noop("< high")
    RANGE = "range", gettext_noop("low – high (inclusive)")
    QUALITATIVE = "qualitative", gettext_noop("Qualitative")
    REPORT = "report", gettext_noop("Reported only")


class QualitativeResult(models.TextChoices):
    NO_GROWTH = "no_growth", gettext_noop("No growth")
    GROWTH = "growth", gettext_noop("Growth")
    NOT_DETECTED = "not_detected", gettext_noop("Not detected")
    DETECTED = "detected", gettext_noop("Detected")
    CONFORMS = "conforms", gettext_noop("Conforms")
    DOES_NOT_CONFORM = "does_not_conform", gettext_noop("Does not conform")


class TestDefinition(models.Model):
    __test__ = False  # not a pytest test class

    specification = models.ForeignKey(Specification, on_delete=models.CASCADE, related_name="tests")
    order = models.PositiveSmallIntegerField()
    code = models.SlugField(max_length=40)
    name = models.CharField(max_length=200)
    method = models.CharField(max_length=200)
    unit = models.CharField(max_length=40, blank=True, help_text="Unit AND basis, e.g. '% of CD3+', 'copies/cell'")
    limit_type = models.CharField(max_length=12, choices=LimitType.choices)
    low = models.DecimalField(max_digits=24, decimal_places=6, null=True, blank=True)
    high = models.DecimalField(max_digits=24, decimal_places=6, null=True, blank=True)
    passing_result = models.CharField(max_length=20, choices=QualitativeResult.choices, blank=True)
    decimal_places = models.PositiveSmallIntegerField(default=1)
    # Tests of one composite group pass when any of them passes (e.g. two potency read-outs).
    composite_group = models.SlugField(max_length=40, blank=True)
    required_for_provisional = models.BooleanField(default=True)
    turnaround_days = models.PositiveSmallIntegerField(default=0)
    sample_type = models.CharField(max_length=60, blank=True)
    # Class of the deviation an out-of-specification result opens: microbial safety tests
    # (sterility, mycoplasma, endotoxin) are critical, the others major by default.
    oos_deviation_class = models.CharField(
        max_length=10, choices=[("major", "Major"), ("critical", "Critical")], default="major",
        help_text="Class of the deviation a failing result opens",
    )

    class Meta:
        ordering = ["specification", "order"]
        constraints = [
            models.UniqueConstraint(fields=["specification", "code"], name="test_code_unique_in_spec"),
            models.UniqueConstraint(fields=["specification", "order"], name="test_order_unique_in_spec"),
        ]

    def __str__(self) -> str:
        return self.name

    def definition_content(self) -> dict:
        content = {}
        for f in self._meta.concrete_fields:
            if f.name in {"id", "specification"}:
                continue
            value = getattr(self, f.name)
            content[f.name] = fixed_decimal(value, f.decimal_places) if isinstance(f, models.DecimalField) else value
        return content


class BatchSpecification(models.Model):
    """The specification version a batch was pinned to when it was created."""

    batch = models.OneToOneField("batches.Batch", on_delete=models.PROTECT, related_name="specification_pin")
    specification = models.ForeignKey(Specification, on_delete=models.PROTECT, related_name="+")
    pinned_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return f"{self.batch} → {self.specification}"
