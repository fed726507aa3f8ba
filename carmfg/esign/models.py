"""Electronic signatures (21 CFR 11.50, 11.70, 11.200).

A signature binds a signer and a meaning to the SHA-256 of the signed record's
canonical GMP content. It is valid only while the record still hashes to that value;
a change voids it, visibly, and the record must be signed again.
"""

from __future__ import annotations

from django.conf import settings
from django.contrib.contenttypes.fields import GenericForeignKey
from django.contrib.contenttypes.models import ContentType
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_noop


class Meaning(models.TextChoices):
    PERFORMED = "performed", gettext_noop("Performed")
    VERIFIED = "verified", gettext_noop("Verified")
    REVIEWED = "reviewed", gettext_noop("Reviewed")
    APPROVED = "approved", gettext_noop("Approved")
    RELEASED_PROVISIONAL = "released_provisional", gettext_noop("Released (provisional)")
    RELEASED = "released", gettext_noop("Released")
    # An out-of-specification product released at the treating physician's documented request.
    RELEASED_EXCEPTIONAL = "released_exceptional", gettext_noop("Released exceptionally (out of specification)")
    REJECTED = "rejected", gettext_noop("Rejected")
    CLOSED = "closed", gettext_noop("Closed")
    EXPORTED = "exported", gettext_noop("Exported")


class Signature(models.Model):
    content_type = models.ForeignKey(ContentType, on_delete=models.PROTECT)
    object_id = models.CharField(max_length=64)
    record = GenericForeignKey("content_type", "object_id")
    site = models.ForeignKey("accounts.Site", on_delete=models.PROTECT, related_name="+")
    meaning = models.CharField(max_length=32, choices=Meaning.choices)
    signer = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="signatures")
    signer_name = models.CharField(max_length=300, help_text="Printed name at the time of signing")
    signed_at = models.DateTimeField()
    content_hash = models.CharField(max_length=64)
    comment = models.TextField(blank=True)
    audit_event = models.OneToOneField("audit.AuditEvent", on_delete=models.PROTECT, related_name="signature")
    voided_at = models.DateTimeField(null=True, blank=True)
    void_reason = models.TextField(blank=True)
    void_event = models.OneToOneField(
        "audit.AuditEvent", null=True, blank=True, on_delete=models.PROTECT, related_name="voided_signature"
    )

    class Meta:
        ordering = ["signed_at", "pk"]
        constraints = [
            models.UniqueConstraint(
                fields=["content_type", "object_id", "meaning"],
                condition=Q(voided_at__isnull=True),
                name="one_active_signature_per_record_and_meaning",
            )
        ]
        indexes = [models.Index(fields=["content_type", "object_id"], name="esign_record")]

    def __str__(self) -> str:
        return f"{self.get_meaning_display()} by {self.signer_name} at {self.signed_at:%Y-%m-%d %H:%M:%S} UTC"

    @property
    def is_voided(self) -> bool:
        return self.voided_at is not None
