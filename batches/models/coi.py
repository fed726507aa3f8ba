"""Chain of identity and custody: patient → order → donation (DIN) → labelled
containers → custody handoffs → apheresis intake → … → bedside infusion."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_noop

from batches.models.execution import BatchFailureReason


class Patient(models.Model):
    """Pseudonymised on the manufacturing floor: internal id + initials + birth year."""

    site = models.ForeignKey("accounts.Site", on_delete=models.PROTECT, related_name="patients")
    pseudonym = models.CharField(max_length=32)
    initials = models.CharField(max_length=4)
    birth_year = models.PositiveSmallIntegerField()
    hospital_record_number = models.CharField(max_length=64, help_text="Shown only to coordinators")
    wristband_code = models.CharField(max_length=64, help_text="What the patient's wristband barcode carries")
    weight_kg = models.DecimalField(max_digits=5, decimal_places=1)
    weight_measured_on = models.DateField()
    version = models.PositiveIntegerField(default=1)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["pseudonym"]
        constraints = [
            models.UniqueConstraint(fields=["site", "pseudonym"], name="patient_pseudonym_unique_per_site"),
            models.UniqueConstraint(fields=["site", "hospital_record_number"], name="patient_record_unique_per_site"),
            models.UniqueConstraint(fields=["site", "wristband_code"], name="patient_wristband_unique_per_site"),
        ]

    def __str__(self) -> str:
        return f"{self.pseudonym} · {self.initials} · {self.birth_year}"

    def signable_content(self) -> dict:
        return {
            "pseudonym": self.pseudonym, "initials": self.initials, "birth_year": self.birth_year,
            "hospital_record_number": self.hospital_record_number, "wristband_code": self.wristband_code,
            "weight_kg": self.weight_kg, "weight_measured_on": self.weight_measured_on,
        }


class OrderStatus(models.TextChoices):
    REGISTERED = "registered", gettext_noop("Registered")
    COLLECTED = "collected", gettext_noop("Collected")
    IN_MANUFACTURING = "in_manufacturing", gettext_noop("In manufacturing")
    # The batch was (provisionally) certified: the product may be given.
    RELEASED = "released", gettext_noop("Product released")
    # A split dose: some fractions given, not all.
    PARTLY_INFUSED = "partly_infused", gettext_noop("Partly infused")
    INFUSED = "infused", gettext_noop("Infused")
    FAILED = "failed", gettext_noop("Failed (no product)")
    CANCELLED = "cancelled", gettext_noop("Cancelled")


class Order(models.Model):
    site = models.ForeignKey("accounts.Site", on_delete=models.PROTECT, related_name="orders")
    number = models.CharField(max_length=32)
    patient = models.ForeignKey(Patient, on_delete=models.PROTECT, related_name="orders")
    product = models.ForeignKey("batches.Product", on_delete=models.PROTECT, related_name="orders")
    indication = models.CharField(max_length=200)
    treating_physician = models.CharField(max_length=200)
    physician_email = models.EmailField(blank=True)
    target_dose_cells_per_kg = models.DecimalField(max_digits=20, decimal_places=0)
    planned_collection_date = models.DateField()
    planned_infusion_date = models.DateField(null=True, blank=True)
    status = models.CharField(max_length=20, choices=OrderStatus.choices, default=OrderStatus.REGISTERED)
    # Why the patient got no product (e.g. apheresis rejected), so missed patients can be counted.
    failure_reason = models.CharField(max_length=32, choices=BatchFailureReason.choices, blank=True)
    version = models.PositiveIntegerField(default=1)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [models.UniqueConstraint(fields=["site", "number"], name="order_number_unique_per_site")]
        indexes = [models.Index(fields=["site", "-created_at"], name="order_site_recent")]

    def __str__(self) -> str:
        return self.number

    def signable_content(self) -> dict:
        return {
            "number": self.number, "patient": self.patient_id, "product": self.product_id,
            "indication": self.indication, "treating_physician": self.treating_physician,
            "target_dose_cells_per_kg": self.target_dose_cells_per_kg,
            "planned_collection_date": self.planned_collection_date, "status": self.status,
        }


class Donation(models.Model):
    """One ISBT 128 donation identification number (DIN) from vein to vein."""

    site = models.ForeignKey("accounts.Site", on_delete=models.PROTECT, related_name="donations")
    order = models.OneToOneField(Order, on_delete=models.PROTECT, related_name="donation")
    din = models.CharField("DIN", max_length=13, unique=True)
    flags = models.CharField(max_length=2, default="00")
    check_character = models.CharField(max_length=1)
    collection_date = models.DateField(null=True, help_text="Day of apheresis, printed on the labels")
    registered_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.PROTECT, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.din} {self.flags} [{self.check_character}]"

    @property
    def din_display(self) -> str:
        """As printed: ``W0001 26 000042 [K]``."""
        return f"{self.din[:5]} {self.din[5:7]} {self.din[7:]} [{self.check_character}]"

    def audit_root(self):
        return self


class ContainerType(models.TextChoices):
    APHERESIS_BAG = "apheresis_bag", gettext_noop("Apheresis bag")
    CULTURE_VESSEL = "culture_vessel", gettext_noop("Culture vessel")
    QC_SAMPLE = "qc_sample", gettext_noop("QC sample")
    FINAL_PRODUCT_BAG = "final_product_bag", gettext_noop("Final product bag")


class LabelStatus(models.TextChoices):
    PRINTED = "printed", gettext_noop("Printed")
    APPLIED = "applied", gettext_noop("Applied")
    DESTROYED = "destroyed", gettext_noop("Destroyed")


class Label(models.Model):
    """One printed label. Reconciliation before release: printed = applied + destroyed."""

    site = models.ForeignKey("accounts.Site", on_delete=models.PROTECT, related_name="+")
    donation = models.ForeignKey(Donation, on_delete=models.PROTECT, related_name="labels")
    container_type = models.CharField(max_length=32, choices=ContainerType.choices)
    container_code = models.CharField(max_length=32, help_text="e.g. AB-1, FP-2: unique per donation")
    # Final product bags: which fraction of the split dose the bag holds (FP-n is never reused).
    fraction_number = models.PositiveSmallIntegerField(null=True, blank=True)
    expires_at = models.DateTimeField(null=True, blank=True, help_text="The expiry printed on the label")
    status = models.CharField(max_length=16, choices=LabelStatus.choices, default=LabelStatus.PRINTED)
    printed_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    printed_at = models.DateTimeField()
    status_changed_at = models.DateTimeField(null=True, blank=True)
    status_changed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    status_reason = models.TextField(blank=True)

    class Meta:
        ordering = ["donation", "container_type", "container_code"]
        constraints = [
            models.UniqueConstraint(fields=["donation", "container_code"], name="label_container_unique_per_donation")
        ]

    def __str__(self) -> str:
        return f"{self.donation.din} {self.container_code}"

    def audit_root(self):
        return self.donation


class CustodyStep(models.TextChoices):
    COLLECTION = "collection", gettext_noop("Collection")
    TRANSPORT = "transport", gettext_noop("Transport")
    RECEIPT = "receipt", gettext_noop("Receipt at GMP facility")
    MANUFACTURING = "manufacturing", gettext_noop("Into manufacturing")
    QC_HANDOVER = "qc_handover", gettext_noop("QC sample hand-over")
    STORAGE = "storage", gettext_noop("Storage")
    DISPATCH = "dispatch", gettext_noop("Dispatch to ward")
    BEDSIDE = "bedside", gettext_noop("Bedside")


class CustodyEvent(models.Model):
    """A handoff whose scan matched. Mismatches change nothing and live in the audit trail."""

    site = models.ForeignKey("accounts.Site", on_delete=models.PROTECT, related_name="+")
    donation = models.ForeignKey(Donation, on_delete=models.PROTECT, related_name="custody_events")
    label = models.ForeignKey(Label, null=True, blank=True, on_delete=models.PROTECT, related_name="custody_events")
    step = models.CharField(max_length=24, choices=CustodyStep.choices)
    scanned_code = models.CharField(max_length=200)
    performed_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    performed_at = models.DateTimeField()
    location = models.CharField(max_length=200, blank=True)
    temperature_c = models.DecimalField(max_digits=5, decimal_places=1, null=True, blank=True)
    note = models.TextField(blank=True)

    class Meta:
        ordering = ["performed_at", "pk"]
        indexes = [models.Index(fields=["donation", "performed_at"], name="custody_donation_time")]

    def __str__(self) -> str:
        return f"{self.get_step_display()} {self.donation.din}"

    def audit_root(self):
        return self.donation


class IntakeCriteria(models.Model):
    """Acceptance criteria for apheresis material, per site and product (configurable)."""

    site = models.ForeignKey("accounts.Site", on_delete=models.PROTECT, related_name="+")
    product = models.ForeignKey("batches.Product", on_delete=models.PROTECT, related_name="+")
    min_cd3_cells = models.DecimalField(max_digits=20, decimal_places=0, default=1_000_000_000)
    min_temperature_c = models.DecimalField(max_digits=4, decimal_places=1, default=2)
    max_temperature_c = models.DecimalField(max_digits=4, decimal_places=1, default=8)
    max_hours_collection_to_receipt = models.DecimalField(max_digits=5, decimal_places=1, default=24)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["site", "product"], name="intake_criteria_per_product")]

    def __str__(self) -> str:
        return f"Intake criteria for {self.product}"

    def audit_root(self):
        return self

    def signable_content(self) -> dict:
        return {
            "site": self.site_id, "product": self.product_id, "min_cd3_cells": self.min_cd3_cells,
            "min_temperature_c": self.min_temperature_c, "max_temperature_c": self.max_temperature_c,
            "max_hours_collection_to_receipt": self.max_hours_collection_to_receipt,
        }


class IntakeOutcome(models.TextChoices):
    PENDING = "pending", gettext_noop("Pending decision")
    ACCEPTED = "accepted", gettext_noop("Accepted")
    ACCEPTED_WITH_DEVIATION = "accepted_with_deviation", gettext_noop("Accepted with deviation")
    REJECTED = "rejected", gettext_noop("Rejected")


class ApheresisIntake(models.Model):
    site = models.ForeignKey("accounts.Site", on_delete=models.PROTECT, related_name="+")
    donation = models.OneToOneField(Donation, on_delete=models.PROTECT, related_name="intake")
    collection_started_at = models.DateTimeField()
    collection_ended_at = models.DateTimeField()
    received_at = models.DateTimeField()
    transport_temperature_c = models.DecimalField(max_digits=4, decimal_places=1)
    volume_ml = models.DecimalField(max_digits=7, decimal_places=1)
    wbc_10e3_per_ul = models.DecimalField("WBC (×10³/µL)", max_digits=7, decimal_places=2)
    cd3_cells_total = models.DecimalField(max_digits=20, decimal_places=0)
    bag_intact = models.BooleanField()
    label_scanned_code = models.CharField(max_length=200)
    evaluation = models.JSONField(default=dict, help_text="Each criterion: value, limit, met")
    meets_criteria = models.BooleanField()
    outcome = models.CharField(max_length=32, choices=IntakeOutcome.choices, default=IntakeOutcome.PENDING)
    decision_reason = models.TextField(blank=True)
    deviation = models.ForeignKey("batches.Deviation", null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    recorded_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    recorded_at = models.DateTimeField()
    version = models.PositiveIntegerField(default=1)

    def __str__(self) -> str:
        return f"Intake of {self.donation.din}"

    def audit_root(self):
        return self.donation

    def signable_content(self) -> dict:
        return {
            "donation": self.donation_id,
            "collection_started_at": self.collection_started_at, "collection_ended_at": self.collection_ended_at,
            "received_at": self.received_at, "transport_temperature_c": self.transport_temperature_c,
            "volume_ml": self.volume_ml, "wbc_10e3_per_ul": self.wbc_10e3_per_ul,
            "cd3_cells_total": self.cd3_cells_total, "bag_intact": self.bag_intact,
            "label_scanned_code": self.label_scanned_code, "outcome": self.outcome,
            "decision_reason": self.decision_reason,
        }


class Infusion(models.Model):
    """A fraction given at the bedside after product bag + wristband both matched."""

    site = models.ForeignKey("accounts.Site", on_delete=models.PROTECT, related_name="+")
    batch = models.ForeignKey("batches.Batch", on_delete=models.PROTECT, related_name="infusions")
    fraction_number = models.PositiveSmallIntegerField()
    fraction_percent = models.DecimalField(max_digits=5, decimal_places=2)
    bag_scanned_code = models.CharField(max_length=200)
    wristband_scanned_code = models.CharField(max_length=200)
    infused_at = models.DateTimeField()
    recorded_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    recorded_at = models.DateTimeField()
    note = models.TextField(blank=True)

    class Meta:
        ordering = ["batch", "fraction_number"]
        constraints = [
            models.UniqueConstraint(fields=["batch", "fraction_number"], name="one_infusion_per_fraction"),
            models.CheckConstraint(condition=Q(fraction_percent__gt=0) & Q(fraction_percent__lte=100),
                                   name="infusion_fraction_percent_range"),
        ]

    def __str__(self) -> str:
        return f"Infusion {self.fraction_number} of {self.batch}"

    def audit_root(self):
        return self.batch

    def signable_content(self) -> dict:
        return {
            "batch": self.batch_id, "fraction_number": self.fraction_number, "fraction_percent": self.fraction_percent,
            "bag_scanned_code": self.bag_scanned_code, "wristband_scanned_code": self.wristband_scanned_code,
            "infused_at": self.infused_at,
        }
