"""Signed PDF batch records: what was issued, for which certification or request,
and everything needed to prove later that a given file is the one issued.

One row per document, created by the request (queued) before the Celery job runs,
so that the row is the job's idempotency key: the job renders, signs and stores the
file under a name fixed by the row, and marks the row done in one transaction. A
row marked done always points at a stored file whose SHA-256 it holds.
"""

from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_noop

# The embedded data file: its schema name, and how its file name ends. The verifier
# reads these without loading the renderer.
DATA_SCHEMA = "carmfg.batch-record/1"
DATA_ATTACHMENT_SUFFIX = "-data.json"


class DocumentPurpose(models.TextChoices):
    CERTIFICATION_PROVISIONAL = "certification_provisional", gettext_noop("Provisional certification record")
    CERTIFICATION_FINAL = "certification_final", gettext_noop("Final certification record")
    EXPORT = "export", gettext_noop("Batch record export")


class DocumentStatus(models.TextChoices):
    QUEUED = "queued", gettext_noop("Queued")
    RENDERING = "rendering", gettext_noop("Rendering")
    SIGNING = "signing", gettext_noop("Signing")
    DONE = "done", gettext_noop("Done")
    FAILED = "failed", gettext_noop("Failed")


DOCUMENT_TRANSITIONS: dict[str, frozenset[str]] = {
    # A retried or redelivered job starts again from whatever step it had reached.
    DocumentStatus.QUEUED: frozenset({DocumentStatus.RENDERING, DocumentStatus.QUEUED, DocumentStatus.FAILED}),
    DocumentStatus.RENDERING: frozenset(
        {DocumentStatus.RENDERING, DocumentStatus.SIGNING, DocumentStatus.QUEUED, DocumentStatus.FAILED}
    ),
    DocumentStatus.SIGNING: frozenset(
        {DocumentStatus.RENDERING, DocumentStatus.DONE, DocumentStatus.QUEUED, DocumentStatus.FAILED}
    ),
    DocumentStatus.DONE: frozenset(),
    DocumentStatus.FAILED: frozenset(),
}


def batch_record_upload_to(instance: BatchRecordDocument, filename: str) -> str:
    # Never used to pick a name (qc.documents.storage_name does, deterministically);
    # present so that the field has a sensible directory in forms and the admin.
    return f"batch-records/{filename}"


class BatchRecordDocument(models.Model):
    site = models.ForeignKey("accounts.Site", on_delete=models.PROTECT, related_name="+")
    batch = models.ForeignKey("batches.Batch", on_delete=models.PROTECT, related_name="record_documents")
    certification = models.ForeignKey(
        "qc.Certification", null=True, blank=True, on_delete=models.PROTECT, related_name="record_documents"
    )
    purpose = models.CharField(max_length=32, choices=DocumentPurpose.choices)
    # The idempotency key of a request: an auditor's export form carries one, so a
    # second click or a replayed POST finds the document already requested.
    request_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    version = models.PositiveIntegerField(help_text="1, 2, 3… per batch, in the order requested")

    status = models.CharField(max_length=16, choices=DocumentStatus.choices, default=DocumentStatus.QUEUED)
    failure_reason = models.TextField(blank=True)
    attempts = models.PositiveSmallIntegerField(default=0)
    celery_task_id = models.CharField(max_length=255, blank=True)

    file = models.FileField(upload_to=batch_record_upload_to, max_length=255, blank=True)
    sha256 = models.CharField("SHA-256 of the signed file", max_length=64, blank=True)
    size_bytes = models.PositiveBigIntegerField(null=True, blank=True)
    page_count = models.PositiveIntegerField(null=True, blank=True)
    data_sha256 = models.CharField(
        "SHA-256 of the embedded data export", max_length=64, blank=True,
        help_text="Of the canonical JSON attached to the PDF (carmfg.canonical.canonical_json)",
    )
    template_version = models.CharField(max_length=32, blank=True)

    signer_subject = models.CharField(max_length=500, blank=True)
    signer_fingerprint_sha256 = models.CharField(max_length=64, blank=True)
    signed_at = models.DateTimeField(null=True, blank=True)
    timestamped_at = models.DateTimeField(
        null=True, blank=True, help_text="Time in the RFC 3161 timestamp, when a timestamp authority signed it"
    )
    # The site's audit chain head when the record was generated: the record states
    # it, so that anyone can check later that the trail it summarises was not cut.
    audit_chain_seq = models.PositiveBigIntegerField(null=True, blank=True)
    audit_chain_hash = models.CharField(max_length=64, blank=True)

    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    requested_at = models.DateTimeField()
    # The language the record is printed in: the requester's at request time (the worker
    # that prints it has no request to take it from). The embedded data stays English.
    language = models.CharField(max_length=8, choices=settings.LANGUAGES, default="en")

    class Meta:
        ordering = ["batch", "-version"]
        constraints = [
            models.UniqueConstraint(fields=["batch", "version"], name="record_document_version_unique_per_batch"),
            # Idempotent generation: one signed record per certification and purpose.
            models.UniqueConstraint(
                fields=["certification", "purpose"], condition=Q(certification__isnull=False),
                name="one_record_document_per_certification_and_purpose",
            ),
            models.UniqueConstraint(fields=["sha256"], condition=~Q(sha256=""), name="record_document_sha256_unique"),
            models.CheckConstraint(
                condition=Q(purpose="export", certification__isnull=True)
                | (~Q(purpose="export") & Q(certification__isnull=False)),
                name="record_document_certification_iff_certification_purpose",
            ),
            # No row marked done without its stored file and hash.
            models.CheckConstraint(
                condition=~Q(status="done") | (~Q(file="") & ~Q(sha256="") & Q(signed_at__isnull=False)),
                name="record_document_done_has_file_and_hash",
            ),
        ]
        indexes = [models.Index(fields=["site", "status", "-requested_at"], name="record_document_site_status")]

    def __str__(self) -> str:
        return f"{self.batch} record v{self.version} ({self.get_purpose_display()})"

    def audit_root(self):
        return self.batch

    @property
    def is_done(self) -> bool:
        return self.status == DocumentStatus.DONE
