"""API of the qc app: QC results (entry and review), certifications (read) and the
signed batch records (list, download, request). Same selectors and services as the
pages; records of other sites are 404."""

from __future__ import annotations

import json

from django.http import FileResponse, Http404
from django.utils.translation import gettext, gettext_noop
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import generics, serializers, status
from rest_framework.renderers import BaseRenderer, JSONRenderer
from rest_framework.response import Response

from batches.selectors import batch_get_for_user
from carmfg.accounts.permissions import SitePerm
from carmfg.api.base import (
    ApiViewMixin,
    expected_version,
    pk_or_404,
    request_of,
    require_any_site_perm,
    stale_as_precondition_failed,
    with_etag,
)
from qc import documents
from qc.api import serializers as s
from qc.models import (
    BatchRecordDocument,
    Certification,
    DocumentPurpose,
    DocumentStatus,
    TestResult,
)
from qc.selectors import (
    certification_list_for_batch,
    record_document_get_for_user,
    record_document_list_for_batch,
    result_get_for_user,
    sample_get_for_user,
    test_definition_get_for_user,
)
from qc.services import results


def _body_ref(field: str, lookup, pk: int):
    try:
        return lookup(pk)
    except Http404:
        raise serializers.ValidationError({field: gettext("No such record at your sites.")}) from None


def _valid(serializer_class, request) -> dict:
    serializer = serializer_class(data=request.data)
    serializer.is_valid(raise_exception=True)
    return dict(serializer.validated_data)


# --- QC results -------------------------------------------------------------------------------------


class BatchResults(ApiViewMixin, generics.ListAPIView):
    """The QC results of a batch, invalidated originals and retests included."""

    serializer_class = s.TestResultSerializer

    def get_batch(self):
        return batch_get_for_user(self.request.user, pk_or_404(self.kwargs["pk"]))

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):  # schema generation
            return TestResult.objects.none()
        return TestResult.objects.filter(batch=self.get_batch()).select_related(
            "test", "entered_by", "reviewed_by").order_by("entered_at", "pk")

    @extend_schema(request=s.TestResultEnterSerializer, responses={201: s.TestResultDetailSerializer})
    def post(self, request, pk):
        """Enter a result (QC analysts), signed "Performed" with your password re-entered. The
        server judges it against the pinned specification; a failing result opens an OOS."""
        batch = self.get_batch()
        require_any_site_perm(request.user, (SitePerm.QC,), action=gettext_noop("enter QC results"), site=batch.site)
        data = _valid(s.TestResultEnterSerializer, request)
        data["test"] = _body_ref("test", lambda pk: test_definition_get_for_user(request.user, pk), data["test"])
        if data["sample"] is not None:
            data["sample"] = _body_ref("sample", lambda pk: sample_get_for_user(request.user, pk), data["sample"])
        result = results.result_enter(actor=request.user, batch=batch, request=request_of(request), **data)
        return with_etag(Response(s.TestResultDetailSerializer(result).data, status=status.HTTP_201_CREATED), result)


class ResultDetail(ApiViewMixin, generics.GenericAPIView):
    serializer_class = s.TestResultDetailSerializer

    def get_object(self):
        return result_get_for_user(self.request.user, pk_or_404(self.kwargs["pk"]))

    @extend_schema(responses={200: s.TestResultDetailSerializer})
    def get(self, request, pk):
        """One result with its signatures; the ETag is what If-Match sends back to review it."""
        result = self.get_object()
        return with_etag(Response(self.get_serializer(result).data), result)


class ResultReview(ApiViewMixin, generics.GenericAPIView):
    serializer_class = s.TestResultDetailSerializer

    @extend_schema(request=s.ReviewSerializer, responses={200: s.TestResultDetailSerializer})
    def post(self, request, pk):
        """Review a result (a QC person other than the analyst), password re-entered.
        Send If-Match (the ETag) or ``version``."""
        result = result_get_for_user(request.user, pk_or_404(pk))
        require_any_site_perm(request.user, (SitePerm.QC,), action=gettext_noop("review QC results"), site=result.site)
        data = _valid(s.ReviewSerializer, request)
        version, from_header = expected_version(request, result, data.pop("version", None))
        with stale_as_precondition_failed(from_header):
            result = results.result_review(actor=request.user, result=result, expected_version=version,
                                           request=request_of(request), **data)
        return with_etag(Response(self.get_serializer(result).data), result)


# --- certifications ----------------------------------------------------------------------------------


class BatchCertifications(ApiViewMixin, generics.GenericAPIView):
    serializer_class = s.CertificationSerializer
    pagination_class = None
    queryset = Certification.objects.none()

    @extend_schema(responses={200: s.CertificationSerializer(many=True)})
    def get(self, request, pk):
        """The QP's certifications of a batch (provisional, final, rejection), oldest first."""
        batch = batch_get_for_user(request.user, pk_or_404(pk))
        return Response(self.get_serializer(certification_list_for_batch(batch), many=True).data)


# --- signed batch records ------------------------------------------------------------------------
# Readable by those who may read the site's records (QPs and auditors); for anyone
# else a record is not found, as on the pages.


class BatchRecords(ApiViewMixin, generics.ListAPIView):
    """The signed batch records of a batch, newest first (QPs and auditors; empty for others)."""

    serializer_class = s.RecordDocumentSerializer

    def get_batch(self):
        return batch_get_for_user(self.request.user, pk_or_404(self.kwargs["pk"]))

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):  # schema generation
            return BatchRecordDocument.objects.none()
        return record_document_list_for_batch(self.request.user, self.get_batch())

    @extend_schema(request=s.RecordRequestSerializer, responses={202: s.RecordDocumentSerializer})
    def post(self, request, pk):
        """Request a signed record of the batch as it is now (auditors, QPs). Queued: poll the
        record until its status is done, then download it."""
        batch = self.get_batch()
        require_any_site_perm(request.user, (SitePerm.AUDIT,), action=gettext_noop("export batch records"), site=batch.site)
        data = _valid(s.RecordRequestSerializer, request)
        document = documents.batch_record_request(actor=request.user, batch=batch, purpose=DocumentPurpose.EXPORT,
                                                  request_id=data["request_id"])
        if document.batch_id != batch.pk or document.purpose != DocumentPurpose.EXPORT:
            raise serializers.ValidationError({"request_id": gettext("This request id was used for another request.")})
        return Response(s.RecordDocumentSerializer(document).data, status=status.HTTP_202_ACCEPTED)


def _document_get(user, pk) -> BatchRecordDocument:
    return record_document_get_for_user(user, pk_or_404(pk))


class RecordDetail(ApiViewMixin, generics.RetrieveAPIView):
    """One signed record: status, SHA-256, signer, timestamp, audit chain head."""

    serializer_class = s.RecordDocumentSerializer

    def get_object(self):
        return _document_get(self.request.user, self.kwargs["pk"])


class PdfRenderer(BaseRenderer):
    """Lets a client ask for ``application/pdf``; a problem (e.g. 404) is still JSON."""

    media_type = "application/pdf"
    format = "pdf"
    charset = None

    def render(self, data, accepted_media_type=None, renderer_context=None):
        return data if isinstance(data, bytes) else json.dumps(data).encode()


class RecordDownload(ApiViewMixin, generics.GenericAPIView):
    serializer_class = s.RecordDocumentSerializer
    renderer_classes = (JSONRenderer, PdfRenderer)

    @extend_schema(responses={(200, "application/pdf"): OpenApiResponse(OpenApiTypes.BINARY,
                                                                        description="The signed PDF.")})
    def get(self, request, pk):
        """The signed PDF, exactly as issued (compare its SHA-256 with the record's)."""
        document = _document_get(request.user, pk)
        if document.status != DocumentStatus.DONE or not document.file:
            raise Http404("This record is not signed yet.")
        name = f"batch-record-{document.batch.number}-v{document.version}.pdf"
        return FileResponse(document.file.open("rb"), as_attachment=True, filename=name,
                            content_type="application/pdf")
