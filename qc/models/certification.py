"""Batch certification by the qualified person: provisional on the fresh product,
final when late results are in (or single, by the product's release model)."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_noop

from carmfg.texts import Text


class CertificationKind(models.TextChoices):
    PROVISIONAL = "provisional", gettext_noop("Provisional (conditional)")
    FINAL = "final", gettext_noop("Final")
    SINGLE = "single", gettext_noop("Single-stage")


class CertificationDecision(models.TextChoices):
    RELEASED = "released", gettext_noop("Released")
    RELEASED_EXCEPTIONAL = "released_exceptional", gettext_noop("Released exceptionally (documented justification)")
    REJECTED = "rejected", gettext_noop("Rejected")


class Certification(models.Model):
    site = models.ForeignKey("accounts.Site", on_delete=models.PROTECT, related_name="+")
    batch = models.ForeignKey("batches.Batch", on_delete=models.PROTECT, related_name="certifications")
    kind = models.CharField(max_length=12, choices=CertificationKind.choices)
    decision = models.CharField(max_length=24, choices=CertificationDecision.choices)
    justification = models.TextField(blank=True)
    checklist = models.JSONField(help_text="The release checklist as evaluated when signed")
    pending_tests = models.JSONField(default=list, help_text="Tests still pending, with expected dates")
    specification = models.ForeignKey("qc.Specification", on_delete=models.PROTECT, related_name="+")
    qp = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    signed_at = models.DateTimeField()
    investigations = models.ManyToManyField("qc.OosInvestigation", blank=True, related_name="+")
    # An exceptional release of an out-of-specification product: at whose documented
    # request, with which consent, recorded under which major deviation.
    physician_name = models.CharField(max_length=200, blank=True,
                                      help_text="Treating physician who requested the exceptional release")
    consent_reference = models.CharField(max_length=200, blank=True,
                                         help_text="Reference of the patient's documented consent")
    deviation = models.ForeignKey("batches.Deviation", null=True, blank=True, on_delete=models.PROTECT,
                                  related_name="+", help_text="The major deviation the exceptional release is under")

    class Meta:
        ordering = ["batch", "signed_at"]
        constraints = [models.UniqueConstraint(fields=["batch", "kind"], name="one_certification_per_batch_and_kind")]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} certification of {self.batch}: {self.get_decision_display()}"

    def audit_root(self):
        return self.batch

    def signable_content(self) -> dict:
        return {
            "batch": self.batch_id, "kind": self.kind, "decision": self.decision, "justification": self.justification,
            "checklist": self.checklist, "pending_tests": self.pending_tests, "specification": self.specification_id,
            # The investigations an exceptional release rests on are part of what the QP signs.
            "investigations": sorted(self.investigations.values_list("pk", flat=True)) if self.pk else [],
            # Only when given, so certifications signed before these fields existed keep their hash.
            **({"physician_name": self.physician_name, "consent_reference": self.consent_reference,
                "deviation": self.deviation_id} if self.is_exceptional_request else {}),
        }

    @property
    def is_exceptional_request(self) -> bool:
        """Released out of specification at a physician's documented request."""
        return bool(self.physician_name or self.consent_reference or self.deviation_id)


class Alert(models.Model):
    """An in-app alert that must be acknowledged (e.g. a late failing result after infusion)."""

    site = models.ForeignKey("accounts.Site", on_delete=models.PROTECT, related_name="+")
    batch = models.ForeignKey("batches.Batch", null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    recipient = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="alerts")
    title = models.CharField(max_length=200)
    message = models.TextField()
    created_at = models.DateTimeField()
    acknowledged_at = models.DateTimeField(null=True, blank=True)
    # What the alert is about, e.g. "overdue:<batch>:<test>": one alert per recipient and key.
    key = models.CharField(max_length=100, blank=True)
    # Title and message as English templates with their values (``carmfg.texts.Text``), so that
    # each recipient reads them in their language; empty for alerts written before.
    texts = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["recipient", "acknowledged_at"], name="alert_open_per_user")]
        constraints = [
            models.UniqueConstraint(fields=["recipient", "key"], condition=~models.Q(key=""), name="one_alert_per_recipient_and_key")
        ]

    def __str__(self) -> str:
        return self.title

    def audit_root(self):
        return self.batch or self

    def _shown(self, part: str, stored: str) -> str:
        data = (self.texts or {}).get(part)
        return Text.from_json(data).text if isinstance(data, dict) else stored

    @property
    def title_text(self) -> str:
        """The title in the reader's language."""
        return self._shown("title", self.title)

    @property
    def message_text(self) -> str:
        """The message in the reader's language."""
        return self._shown("message", self.message)


class NotificationEmail(models.Model):
    """An e-mail the system owes someone (e.g. the treating physician after a late failing
    result): written in the transaction that decided it, sent after commit by a task, so
    the record shows who was told what, and when it left."""

    site = models.ForeignKey("accounts.Site", on_delete=models.PROTECT, related_name="+")
    batch = models.ForeignKey("batches.Batch", null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    to = models.EmailField()
    subject = models.CharField(max_length=200)
    body = models.TextField()
    created_at = models.DateTimeField()
    sent_at = models.DateTimeField(null=True, blank=True)
    attempts = models.PositiveSmallIntegerField(default=0)
    last_error = models.CharField(max_length=300, blank=True)

    class Meta:
        ordering = ["created_at", "pk"]

    def __str__(self) -> str:
        return f"E-mail to {self.to}: {self.subject}"

    def audit_root(self):
        return self.batch or self
