"""Master batch records: the approved recipe every batch is executed against.

Versioned; a batch is pinned to the version it started with, so a new version never
changes a running batch. Lifecycle: draft → approved (signed by a site admin and a
QP, two different people) → effective → superseded.
"""

from __future__ import annotations

from decimal import Decimal

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_noop

from carmfg.canonical import content_hash


def fixed_decimal(value, places: int):
    """A Decimal written with the field's own number of places, as the database returns
    it: a signed hash must not depend on whether the value was read back or not."""
    if value is None:
        return None
    return Decimal(value).quantize(Decimal(1).scaleb(-places))


class MbrStatus(models.TextChoices):
    DRAFT = "draft", gettext_noop("Draft")
    APPROVED = "approved", gettext_noop("Approved")
    EFFECTIVE = "effective", gettext_noop("Effective")
    SUPERSEDED = "superseded", gettext_noop("Superseded")


MBR_TRANSITIONS: dict[str, frozenset[str]] = {
    MbrStatus.DRAFT: frozenset({MbrStatus.APPROVED}),
    MbrStatus.APPROVED: frozenset({MbrStatus.EFFECTIVE}),
    MbrStatus.EFFECTIVE: frozenset({MbrStatus.SUPERSEDED}),
    MbrStatus.SUPERSEDED: frozenset(),
}


class MasterBatchRecord(models.Model):
    site = models.ForeignKey("accounts.Site", on_delete=models.PROTECT, related_name="+")
    product = models.ForeignKey("batches.Product", on_delete=models.PROTECT, related_name="master_batch_records")
    version = models.PositiveIntegerField()
    title = models.CharField(max_length=200)
    change_summary = models.TextField(blank=True)
    status = models.CharField(max_length=16, choices=MbrStatus.choices, default=MbrStatus.DRAFT)
    based_on = models.ForeignKey("self", null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.PROTECT, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    effective_at = models.DateTimeField(null=True, blank=True)
    superseded_at = models.DateTimeField(null=True, blank=True)
    # Optimistic concurrency for drafts being edited by several people.
    revision = models.PositiveIntegerField(default=1)

    class Meta:
        ordering = ["product", "-version"]
        constraints = [
            models.UniqueConstraint(fields=["product", "version"], name="mbr_version_unique_per_product"),
            models.UniqueConstraint(fields=["product"], condition=Q(status="effective"), name="one_effective_mbr_per_product"),
        ]

    def __str__(self) -> str:
        return f"{self.title} v{self.version}"

    def signable_content(self) -> dict:
        """The whole recipe: approving it signs every stage, step and limit."""
        return {
            "product": self.product_id, "version": self.version, "title": self.title,
            "change_summary": self.change_summary,
            "stages": [
                {
                    "code": stage.code, "name": stage.name, "order": stage.order,
                    "steps": [step.definition_content() for step in stage.steps.all()],
                }
                for stage in self.stages.prefetch_related("steps")
            ],
        }


class StageDefinition(models.Model):
    mbr = models.ForeignKey(MasterBatchRecord, on_delete=models.CASCADE, related_name="stages")
    order = models.PositiveSmallIntegerField()
    code = models.SlugField(max_length=40)
    name = models.CharField(max_length=200)

    class Meta:
        ordering = ["mbr", "order"]
        constraints = [
            models.UniqueConstraint(fields=["mbr", "order"], name="stage_order_unique"),
            models.UniqueConstraint(fields=["mbr", "code"], name="stage_code_unique"),
        ]

    def __str__(self) -> str:
        return self.name


class StepKind(models.TextChoices):
    INSTRUCTION = "instruction", gettext_noop("Instruction (acknowledge)")
    VALUE = "value", gettext_noop("Recorded value")
    MATERIAL = "material", gettext_noop("Material use")
    EQUIPMENT = "equipment", gettext_noop("Equipment use")
    CALCULATION = "calculation", gettext_noop("Calculation")
    SCAN = "scan", gettext_noop("Label scan (chain of identity)")
    SAMPLE = "sample", gettext_noop("QC sample")
    SIGNATURE = "signature", gettext_noop("Signature")


class StepDefinition(models.Model):
    stage = models.ForeignKey(StageDefinition, on_delete=models.CASCADE, related_name="steps")
    order = models.PositiveSmallIntegerField()
    code = models.SlugField(max_length=60, help_text="Unique in the MBR; calculations refer to steps by code")
    title = models.CharField(max_length=200)
    instruction = models.TextField(blank=True)
    kind = models.CharField(max_length=16, choices=StepKind.choices)
    unit = models.CharField(max_length=40, blank=True)
    decimal_places = models.PositiveSmallIntegerField(default=0)
    # Alert limits ask for confirmation and a comment; action limits raise a deviation.
    alert_min = models.DecimalField(max_digits=24, decimal_places=6, null=True, blank=True)
    alert_max = models.DecimalField(max_digits=24, decimal_places=6, null=True, blank=True)
    action_min = models.DecimalField(max_digits=24, decimal_places=6, null=True, blank=True)
    action_max = models.DecimalField(max_digits=24, decimal_places=6, null=True, blank=True)
    material_type = models.CharField(max_length=60, blank=True)
    quantity = models.DecimalField(max_digits=12, decimal_places=3, null=True, blank=True)
    equipment_type = models.CharField(max_length=60, blank=True)
    calculation = models.CharField(max_length=40, blank=True, help_text="Name of a server-side calculation")
    calculation_inputs = models.JSONField(default=dict, blank=True, help_text="Input name → step code")
    container_type = models.CharField(max_length=32, blank=True, help_text="For scan and sample steps")
    sample_tests = models.JSONField(default=list, blank=True, help_text="QC test codes sampled here")
    critical = models.BooleanField(default=False)
    requires_verification = models.BooleanField(default=False)
    repeatable = models.BooleanField(default=False)
    allow_out_of_order = models.BooleanField(default=False)

    class Meta:
        ordering = ["stage__order", "order"]
        constraints = [models.UniqueConstraint(fields=["stage", "order"], name="step_order_unique_in_stage")]

    def __str__(self) -> str:
        return self.title

    def definition_content(self) -> dict:
        content = {}
        for field in self._meta.concrete_fields:
            if field.name in {"id", "stage"}:
                continue
            value = getattr(self, field.name)
            if isinstance(field, models.DecimalField):
                value = fixed_decimal(value, field.decimal_places)
            content[field.name] = value
        return content


class MbrApprovalRole(models.TextChoices):
    SITE_ADMIN = "site_admin", gettext_noop("Site administrator (production)")
    QUALIFIED_PERSON = "qualified_person", gettext_noop("Qualified person")


class MbrApproval(models.Model):
    """One of the two approvals a master batch record needs (site admin and QP).

    Each approval is its own signed record because a record holds one active signature
    per meaning; both are signed "Approved" over the whole recipe (its content hash),
    so any later change to the recipe invalidates them.
    """

    site = models.ForeignKey("accounts.Site", on_delete=models.PROTECT, related_name="+")
    mbr = models.ForeignKey(MasterBatchRecord, on_delete=models.PROTECT, related_name="approvals")
    role = models.CharField(max_length=20, choices=MbrApprovalRole.choices)

    class Meta:
        ordering = ["mbr", "role"]
        constraints = [models.UniqueConstraint(fields=["mbr", "role"], name="one_approval_per_mbr_and_role")]

    def __str__(self) -> str:
        return f"{self.mbr} · approval ({self.get_role_display()})"

    def audit_root(self):
        return self.mbr

    def signable_content(self) -> dict:
        return {
            "mbr": self.mbr_id, "version": self.mbr.version, "role": self.role,
            "mbr_content_sha256": content_hash(self.mbr.signable_content()),
        }
