"""QC samples and results. A result is entered by an analyst, reviewed by another,
evaluated by the server against the batch's pinned specification; retests and
invalidations keep the original visible."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_noop

from batches.models.mbr import fixed_decimal
from batches.quantities import format_value


class Sample(models.Model):
    site = models.ForeignKey("accounts.Site", on_delete=models.PROTECT, related_name="+")
    batch = models.ForeignKey("batches.Batch", on_delete=models.PROTECT, related_name="qc_samples")
    code = models.CharField(max_length=32, help_text="Unique per batch; printed on the sample label")
    sample_type = models.CharField(max_length=60)
    test_codes = models.JSONField(default=list)
    step_record = models.ForeignKey("batches.StepRecord", null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    label = models.ForeignKey("batches.Label", null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    taken_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    taken_at = models.DateTimeField()
    received_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    received_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["batch", "taken_at"]
        constraints = [models.UniqueConstraint(fields=["batch", "code"], name="sample_code_unique_per_batch")]

    def __str__(self) -> str:
        return f"{self.batch.number} {self.code}"

    def audit_root(self):
        return self.batch


class ResultEvaluation(models.TextChoices):
    PASS = "pass", gettext_noop("Pass")
    FAIL = "fail", gettext_noop("Fail")
    REPORTED = "reported", gettext_noop("Reported")


class ResultStatus(models.TextChoices):
    ENTERED = "entered", gettext_noop("Entered, awaiting review")
    REVIEWED = "reviewed", gettext_noop("Reviewed")
    INVALIDATED = "invalidated", gettext_noop("Invalidated")


class TestResult(models.Model):
    __test__ = False  # not a pytest test class

    site = models.ForeignKey("accounts.Site", on_delete=models.PROTECT, related_name="+")
    batch = models.ForeignKey("batches.Batch", on_delete=models.PROTECT, related_name="qc_results")
    test = models.ForeignKey("qc.TestDefinition", on_delete=models.PROTECT, related_name="results")
    sample = models.ForeignKey(Sample, null=True, blank=True, on_delete=models.PROTECT, related_name="results")
    # Censored values ("≤ 0.5", "< LOQ") keep their qualifier: "", "<", "<=", ">", ">=".
    qualifier = models.CharField(max_length=2, blank=True)
    value = models.DecimalField(max_digits=24, decimal_places=6, null=True, blank=True)
    qualitative = models.CharField(max_length=20, blank=True)
    unit = models.CharField(max_length=40, blank=True)
    evaluation = models.CharField(max_length=10, choices=ResultEvaluation.choices)
    evaluation_detail = models.CharField(max_length=300, blank=True)
    status = models.CharField(max_length=12, choices=ResultStatus.choices, default=ResultStatus.ENTERED)
    retest_of = models.ForeignKey("self", null=True, blank=True, on_delete=models.PROTECT, related_name="retests")
    entered_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    entered_at = models.DateTimeField()
    reviewed_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    reviewed_at = models.DateTimeField(null=True, blank=True)
    invalidation_reason = models.TextField(blank=True)
    comment = models.TextField(blank=True)
    version = models.PositiveIntegerField(default=1)

    class Meta:
        ordering = ["batch", "test__order", "entered_at"]
        indexes = [models.Index(fields=["batch", "test", "status"], name="qc_result_batch_test")]

    def __str__(self) -> str:
        return f"{self.batch.number} {self.test.code}: {self.display_value}"

    def audit_root(self):
        return self.batch

    @property
    def display_value(self) -> str:
        if self.qualitative:
            from qc.models.specifications import QualitativeResult

            return QualitativeResult(self.qualitative).label if self.qualitative in QualitativeResult.values else self.qualitative
        qualifier = {"<=": "≤", ">=": "≥"}.get(self.qualifier, self.qualifier)
        if self.value is None:
            return ""
        # As many decimals as the test reports, more only if the analyst wrote more: 85.0, not 85.000000.
        exponent = self.value.normalize().as_tuple().exponent
        written = -exponent if isinstance(exponent, int) and exponent < 0 else 0
        places = max(written, self.test.decimal_places if self.test_id else 0)
        return f"{qualifier}{format_value(self.value, places)} {self.unit}".strip()

    def signable_content(self) -> dict:
        return {
            "batch": self.batch_id, "test": self.test_id, "sample": self.sample_id, "qualifier": self.qualifier,
            "value": fixed_decimal(self.value, 6), "qualitative": self.qualitative, "unit": self.unit, "evaluation": self.evaluation,
            "retest_of": self.retest_of_id, "comment": self.comment, "status_invalidated": self.status == ResultStatus.INVALIDATED,
            "invalidation_reason": self.invalidation_reason,
        }


class OosStatus(models.TextChoices):
    PHASE_1 = "phase_1", gettext_noop("Phase I: laboratory error check")
    PHASE_2 = "phase_2", gettext_noop("Phase II: full investigation")
    CLOSED = "closed", gettext_noop("Closed")


class OosPhase1Conclusion(models.TextChoices):
    LAB_ERROR = "lab_error", gettext_noop("Assignable laboratory error (result invalidated, retest)")
    NO_LAB_ERROR = "no_lab_error", gettext_noop("No laboratory error: result confirmed")


class OosInvestigation(models.Model):
    site = models.ForeignKey("accounts.Site", on_delete=models.PROTECT, related_name="+")
    result = models.OneToOneField(TestResult, on_delete=models.PROTECT, related_name="oos")
    deviation = models.ForeignKey("batches.Deviation", on_delete=models.PROTECT, related_name="+")
    status = models.CharField(max_length=10, choices=OosStatus.choices, default=OosStatus.PHASE_1)
    phase1_conclusion = models.CharField(max_length=16, choices=OosPhase1Conclusion.choices, blank=True)
    phase1_notes = models.TextField(blank=True)
    phase2_notes = models.TextField(blank=True)
    conclusion = models.TextField(blank=True)
    opened_at = models.DateTimeField()
    closed_at = models.DateTimeField(null=True, blank=True)
    version = models.PositiveIntegerField(default=1)

    def __str__(self) -> str:
        return f"OOS {self.result}"

    def audit_root(self):
        return self.result.batch

    def signable_content(self) -> dict:
        return {
            "result": self.result_id, "deviation": self.deviation_id, "status": self.status,
            "phase1_conclusion": self.phase1_conclusion, "phase1_notes": self.phase1_notes,
            "phase2_notes": self.phase2_notes, "conclusion": self.conclusion,
        }
