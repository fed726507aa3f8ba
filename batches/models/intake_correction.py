"""Corrections of an apheresis intake after it was recorded (see
``batches.services.intake_correction``)."""

from __future__ import annotations

from django.conf import settings
from django.db import models

from batches.models.coi import ApheresisIntake, IntakeOutcome


class IntakeCorrection(models.Model):
    """A correction of an intake's measured values after it was recorded (the electronic
    strike-through): old and new values, the evaluation before and after, the outcome
    before and after, the reason, and who corrected it (who signs this record)."""

    site = models.ForeignKey("accounts.Site", on_delete=models.PROTECT, related_name="+")
    intake = models.ForeignKey(ApheresisIntake, on_delete=models.PROTECT, related_name="corrections")
    sequence = models.PositiveSmallIntegerField(help_text="1 for the intake's first correction, then 2, …")
    changes = models.JSONField(help_text="Each corrected field: old and new value")
    evaluation_before = models.JSONField()
    evaluation_after = models.JSONField()
    outcome_before = models.CharField(max_length=32, choices=IntakeOutcome.choices)
    outcome_after = models.CharField(max_length=32, choices=IntakeOutcome.choices)
    reason = models.TextField()
    # Raised when the corrected values fail a criterion that the accepted intake had not failed.
    deviation = models.ForeignKey("batches.Deviation", null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    corrected_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    corrected_at = models.DateTimeField()

    class Meta:
        ordering = ["intake", "sequence"]
        constraints = [
            models.UniqueConstraint(fields=["intake", "sequence"], name="intake_correction_sequence_unique"),
        ]

    def __str__(self) -> str:
        return f"Correction {self.sequence} of {self.intake}"

    def audit_root(self):
        return self.intake.donation

    def signable_content(self) -> dict:
        return {
            "intake": self.intake_id, "sequence": self.sequence, "changes": self.changes,
            "outcome_before": self.outcome_before, "outcome_after": self.outcome_after, "reason": self.reason,
            "deviation": self.deviation_id,
        }
