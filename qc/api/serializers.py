"""Serializers of the QC API: reads of results, certifications and signed records;
writes only parse types, the services judge."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from carmfg.api.serializers import SignaturesField
from qc.models import BatchRecordDocument, Certification, TestResult

TEXT_MAX = 100_000


def _text(**kwargs) -> serializers.CharField:
    kwargs.setdefault("max_length", TEXT_MAX)
    kwargs.setdefault("trim_whitespace", False)
    return serializers.CharField(**kwargs)


class TestResultSerializer(serializers.ModelSerializer):
    __test__ = False

    test_code = serializers.CharField(source="test.code", read_only=True)
    test_name = serializers.CharField(source="test.name", read_only=True)
    display_value = serializers.CharField(read_only=True)
    entered_by = serializers.CharField(source="entered_by.username", read_only=True)
    reviewed_by = serializers.CharField(source="reviewed_by.username", read_only=True, allow_null=True)

    class Meta:
        model = TestResult
        fields: tuple[str, ...] = ("id", "site", "batch", "test", "test_code", "test_name", "sample", "qualifier", "value",
                  "qualitative", "unit", "display_value", "evaluation", "evaluation_detail", "status", "retest_of",
                  "entered_by", "entered_at", "reviewed_by", "reviewed_at", "invalidation_reason", "comment",
                  "version")
        read_only_fields = fields


class TestResultDetailSerializer(TestResultSerializer):
    signatures = SignaturesField()

    class Meta(TestResultSerializer.Meta):
        fields = (*TestResultSerializer.Meta.fields, "signatures")
        read_only_fields = fields


class TestResultEnterSerializer(serializers.Serializer):
    __test__ = False

    test = serializers.IntegerField(min_value=1, help_text="A test of the batch's pinned specification.")
    password = _text(max_length=1000, help_text="Your password, re-entered: the analyst's signature.")
    raw_value = _text(required=False, allow_blank=True, default="", help_text="Quantitative tests: e.g. 92.5, <0.5")
    qualitative = _text(required=False, allow_blank=True, default="",
                        help_text="Qualitative tests: e.g. negative")
    unit = _text(required=False, allow_blank=True, default="")
    sample = serializers.IntegerField(min_value=1, required=False, allow_null=True, default=None)
    comment = _text(required=False, allow_blank=True, default="")


class ReviewSerializer(serializers.Serializer):
    password = _text(max_length=1000, help_text="Your password, re-entered for the signature.")
    comment = _text(required=False, allow_blank=True, default="")
    version = serializers.IntegerField(min_value=1, max_value=10**9, required=False,
                                       help_text="The version you read, unless you send If-Match.")


class CertificationSerializer(serializers.ModelSerializer):
    qp = serializers.CharField(source="qp.username", read_only=True)

    class Meta:
        model = Certification
        fields = ("id", "site", "batch", "kind", "decision", "justification", "checklist", "pending_tests",
                  "specification", "qp", "signed_at")
        read_only_fields = fields


class RecordDocumentSerializer(serializers.ModelSerializer):
    requested_by = serializers.CharField(source="requested_by.username", read_only=True, allow_null=True)
    download = serializers.SerializerMethodField(help_text="Where to download the signed PDF once it is done.")

    class Meta:
        model = BatchRecordDocument
        fields = ("id", "site", "batch", "certification", "purpose", "request_id", "version", "status",
                  "failure_reason", "sha256", "size_bytes", "page_count", "signer_subject", "signed_at",
                  "timestamped_at", "audit_chain_seq", "audit_chain_hash", "requested_by", "requested_at",
                  "language", "download")
        read_only_fields = fields

    @extend_schema_field(serializers.CharField(allow_null=True))
    def get_download(self, document: BatchRecordDocument) -> str | None:
        if document.status != "done" or not document.file:
            return None
        return f"/api/v1/batch-records/{document.pk}/download/"


class RecordRequestSerializer(serializers.Serializer):
    request_id = serializers.UUIDField(
        required=False, allow_null=True, default=None,
        help_text="Idempotency key: the same key returns the same record instead of a second one.")
