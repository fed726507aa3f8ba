"""API of the batches app: patients, orders, batches, step records, custody, deviations.

Thin: every read goes through a selector that scopes by site (another site's record
is a 404), every write through the same service as the page.
"""

from __future__ import annotations

import django_filters
from django.http import Http404
from django.utils.translation import gettext, gettext_noop
from drf_spectacular.utils import extend_schema
from rest_framework import generics, serializers, status
from rest_framework.response import Response

from batches import selectors
from batches.api import serializers as s
from batches.models import (
    Batch,
    BatchState,
    CustodyEvent,
    Deviation,
    DeviationClass,
    DeviationStatus,
    Order,
    OrderStatus,
    Patient,
    Product,
    StepRecord,
)
from batches.services import custody, deviations, execution, patients
from batches.timeline import coi_timeline
from carmfg.accounts.permissions import SitePerm
from carmfg.accounts.selectors import site_get_for_user, site_ids_for_user
from carmfg.api.base import (
    ApiViewMixin,
    IdFilter,
    expected_version,
    pk_or_404,
    request_of,
    require_any_site_perm,
    stale_as_precondition_failed,
    with_etag,
)


def _body_ref(field: str, lookup, pk: int):
    """A record named in the body: one the caller may see, else a field error (its
    existence at another site is not revealed)."""
    try:
        return lookup(pk)
    except Http404:
        raise serializers.ValidationError({field: gettext("No such record at your sites.")}) from None


def _valid(serializer_class, request):
    serializer = serializer_class(data=request.data)
    serializer.is_valid(raise_exception=True)
    return dict(serializer.validated_data)


# --- patients ---------------------------------------------------------------------------------------


class PatientFilter(django_filters.FilterSet):
    site = IdFilter(field_name="site_id")
    pseudonym = django_filters.CharFilter(max_length=32)

    class Meta:
        model = Patient
        fields: list[str] = []


class PatientList(ApiViewMixin, generics.ListAPIView):
    """Patients at your sites (pseudonymised; hospital record number for coordinators only)."""

    serializer_class = s.PatientSerializer
    filterset_class = PatientFilter

    def get_queryset(self):
        return selectors.patient_list_for_user(self.request.user).order_by("-created_at", "-pk")

    @extend_schema(request=s.PatientCreateSerializer, responses={201: s.PatientSerializer})
    def post(self, request):
        """Register a patient (coordinators)."""
        require_any_site_perm(request.user, (SitePerm.PATIENTS,), action=gettext_noop("register patients"))
        data = _valid(s.PatientCreateSerializer, request)
        data["site"] = _body_ref("site", lambda pk: site_get_for_user(request.user, pk), data["site"])
        patient = patients.patient_create(actor=request.user, **data)
        return with_etag(Response(s.PatientSerializer(patient, context={"request": request}).data,
                                  status=status.HTTP_201_CREATED), patient)


class PatientDetail(ApiViewMixin, generics.GenericAPIView):
    serializer_class = s.PatientSerializer

    def get_object(self):
        return selectors.patient_get_for_user(self.request.user, pk_or_404(self.kwargs["pk"]))

    @extend_schema(responses={200: s.PatientSerializer})
    def get(self, request, pk):
        """One patient; the ETag header is what If-Match sends back on update."""
        patient = self.get_object()
        return with_etag(Response(self.get_serializer(patient).data), patient)

    @extend_schema(request=s.PatientUpdateSerializer, responses={200: s.PatientSerializer})
    def patch(self, request, pk):
        """Correct a patient's data with a reason (coordinators). Send If-Match (the ETag) or ``version``."""
        patient = self.get_object()
        require_any_site_perm(request.user, (SitePerm.PATIENTS,), action=gettext_noop("change patients"), site=patient.site)
        data = _valid(s.PatientUpdateSerializer, request)
        reason = data.pop("reason")
        version, from_header = expected_version(request, patient, data.pop("version", None))
        with stale_as_precondition_failed(from_header):
            patient = patients.patient_update(actor=request.user, patient=patient, reason=reason,
                                              expected_version=version, **data)
        return with_etag(Response(self.get_serializer(patient).data), patient)


# --- orders ------------------------------------------------------------------------------------------


class OrderFilter(django_filters.FilterSet):
    site = IdFilter(field_name="site_id")
    patient = IdFilter(field_name="patient_id")
    status = django_filters.ChoiceFilter(choices=OrderStatus.choices)

    class Meta:
        model = Order
        fields: list[str] = []


def _product_of(user, pk: int) -> Product:
    product = Product.objects.filter(pk=pk, site_id__in=site_ids_for_user(user)).first()
    if product is None:
        raise serializers.ValidationError({"product": gettext("No such product at your sites.")})
    return product


class OrderList(ApiViewMixin, generics.ListAPIView):
    """Orders at your sites, newest first."""

    serializer_class = s.OrderSerializer
    filterset_class = OrderFilter

    def get_queryset(self):
        return selectors.order_list_for_user(self.request.user).select_related("donation", "batch") \
            .order_by("-created_at", "-pk")

    @extend_schema(request=s.OrderCreateSerializer, responses={201: s.OrderSerializer})
    def post(self, request):
        """Order a product for a patient (coordinators)."""
        require_any_site_perm(request.user, (SitePerm.PATIENTS,), action=gettext_noop("register orders"))
        data = _valid(s.OrderCreateSerializer, request)
        data["patient"] = _body_ref("patient", lambda pk: selectors.patient_get_for_user(request.user, pk),
                                    data["patient"])
        data["product"] = _product_of(request.user, data["product"])
        order = patients.order_create(actor=request.user, **data)
        return with_etag(Response(s.OrderSerializer(order).data, status=status.HTTP_201_CREATED), order)


class OrderDetail(ApiViewMixin, generics.GenericAPIView):
    serializer_class = s.OrderSerializer

    def get_object(self):
        return selectors.order_get_for_user(self.request.user, pk_or_404(self.kwargs["pk"]))

    @extend_schema(responses={200: s.OrderSerializer})
    def get(self, request, pk):
        """One order, with its donation (DIN) and batch once they exist."""
        order = self.get_object()
        return with_etag(Response(self.get_serializer(order).data), order)

    @extend_schema(request=s.OrderUpdateSerializer, responses={200: s.OrderSerializer})
    def patch(self, request, pk):
        """Change an order with a reason (coordinators). Send If-Match (the ETag) or ``version``."""
        order = self.get_object()
        require_any_site_perm(request.user, (SitePerm.PATIENTS,), action=gettext_noop("change orders"), site=order.site)
        data = _valid(s.OrderUpdateSerializer, request)
        reason = data.pop("reason")
        version, from_header = expected_version(request, order, data.pop("version", None))
        if "product" in data:
            data["product"] = _product_of(request.user, data["product"])
        with stale_as_precondition_failed(from_header):
            order = patients.order_update(actor=request.user, order=order, reason=reason, expected_version=version,
                                          **data)
        return with_etag(Response(self.get_serializer(order).data), order)


# --- batches ---------------------------------------------------------------------------------------


class BatchFilter(django_filters.FilterSet):
    site = IdFilter(field_name="site_id")
    state = django_filters.ChoiceFilter(choices=BatchState.choices)
    order = IdFilter(field_name="order_id")

    class Meta:
        model = Batch
        fields: list[str] = []


class BatchList(ApiViewMixin, generics.ListAPIView):
    """Batches at your sites, newest first."""

    serializer_class = s.BatchSerializer
    filterset_class = BatchFilter

    def get_queryset(self):
        return selectors.batch_list_for_user(self.request.user).order_by("-created_at", "-pk")


class BatchDetail(ApiViewMixin, generics.RetrieveAPIView):
    """One batch: its state and progress."""

    serializer_class = s.BatchDetailSerializer

    def get_object(self):
        return selectors.batch_get_for_user(self.request.user, pk_or_404(self.kwargs["pk"]))


class BatchTimeline(ApiViewMixin, generics.GenericAPIView):
    serializer_class = s.TimelineEntrySerializer
    pagination_class = None
    queryset = Batch.objects.none()

    @extend_schema(responses={200: s.TimelineEntrySerializer(many=True)})
    def get(self, request, pk):
        """The batch's chain of identity, collection to infusion, refused scans included."""
        batch = selectors.batch_get_for_user(request.user, pk_or_404(pk))
        return Response(s.TimelineEntrySerializer(coi_timeline(batch.donation), many=True).data)


# --- step records ----------------------------------------------------------------------------------


class BatchStepRecords(ApiViewMixin, generics.ListAPIView):
    """The step records of a batch, in recipe order."""

    serializer_class = s.StepRecordSerializer

    def get_batch(self) -> Batch:
        return selectors.batch_get_for_user(self.request.user, pk_or_404(self.kwargs["pk"]))

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):  # schema generation
            return StepRecord.objects.none()
        return selectors.step_record_list_for_batch(self.get_batch())

    @extend_schema(request=s.StepRecordCreateSerializer, responses={201: s.StepRecordDetailSerializer})
    def post(self, request, pk):
        """Record a step and sign it as performer (technicians), with your password re-entered.

        The same checks as the batch page: order of steps, limits, lots, equipment, label
        identity. A blocked scan is audited and answered 409."""
        batch = self.get_batch()
        require_any_site_perm(request.user, (SitePerm.EXECUTE,), action=gettext_noop("record manufacturing steps"), site=batch.site)
        data = _valid(s.StepRecordCreateSerializer, request)
        definition = _body_ref("definition", lambda pk: selectors.step_definition_get_for_mbr(batch.mbr, pk),
                               data.pop("definition"))
        record = execution.step_record(actor=request.user, batch=batch, definition=definition,
                                       request=request_of(request), **data)
        return with_etag(Response(s.StepRecordDetailSerializer(record).data, status=status.HTTP_201_CREATED), record)


class StepRecordDetail(ApiViewMixin, generics.GenericAPIView):
    serializer_class = s.StepRecordDetailSerializer

    def get_object(self):
        return selectors.step_record_get_for_user(self.request.user, pk_or_404(self.kwargs["pk"]))

    @extend_schema(responses={200: s.StepRecordDetailSerializer})
    def get(self, request, pk):
        """One step record with its signatures; the ETag is what If-Match sends back to verify it."""
        record = self.get_object()
        return with_etag(Response(self.get_serializer(record).data), record)


class StepRecordVerify(ApiViewMixin, generics.GenericAPIView):
    serializer_class = s.StepRecordDetailSerializer

    def get_object(self):
        return selectors.step_record_get_for_user(self.request.user, pk_or_404(self.kwargs["pk"]))

    @extend_schema(request=s.SignRequestSerializer, responses={200: s.StepRecordDetailSerializer})
    def post(self, request, pk):
        """Second-person verification (verifiers, never the performer), password re-entered.
        Send If-Match (the ETag) or ``version``."""
        record = self.get_object()
        require_any_site_perm(request.user, (SitePerm.VERIFY,), action=gettext_noop("verify steps"), site=record.site)
        data = _valid(s.SignRequestSerializer, request)
        version, from_header = expected_version(request, record, data.pop("version", None))
        with stale_as_precondition_failed(from_header):
            record = execution.step_verify(actor=request.user, record=record, expected_version=version,
                                           request=request_of(request), **data)
        return with_etag(Response(self.get_serializer(record).data), record)


# --- custody -------------------------------------------------------------------------------------------


class DonationCustodyEvents(ApiViewMixin, generics.ListAPIView):
    """The matched custody handoffs of a donation (refused scans are in its timeline and the audit trail)."""

    serializer_class = s.CustodyEventSerializer

    def get_donation(self):
        return selectors.donation_get_for_user(self.request.user, pk_or_404(self.kwargs["pk"]))

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):  # schema generation
            return CustodyEvent.objects.none()
        return selectors.custody_event_list_for_donation(self.get_donation()).select_related("donation")

    @extend_schema(request=s.CustodyScanSerializer, responses={201: s.CustodyEventSerializer})
    def post(self, request, pk):
        """Record a handoff by its label scan. A label that is not the one the step expects
        blocks (409): nothing is recorded and the attempt is audited."""
        donation = self.get_donation()
        require_any_site_perm(request.user, custody.SCAN_PERMS, action=gettext_noop("record custody scans"), site=donation.site)
        data = _valid(s.CustodyScanSerializer, request)
        event = custody.custody_scan(actor=request.user, donation=donation, **data)
        return Response(s.CustodyEventSerializer(event).data, status=status.HTTP_201_CREATED)


# --- deviations ---------------------------------------------------------------------------------------


class DeviationFilter(django_filters.FilterSet):
    site = IdFilter(field_name="site_id")
    batch = IdFilter(field_name="batch_id")
    status = django_filters.ChoiceFilter(choices=DeviationStatus.choices)
    classification = django_filters.ChoiceFilter(choices=DeviationClass.choices)

    class Meta:
        model = Deviation
        fields: list[str] = []


class DeviationList(ApiViewMixin, generics.ListAPIView):
    """Deviations at your sites, newest first."""

    serializer_class = s.DeviationSerializer
    filterset_class = DeviationFilter

    def get_queryset(self):
        return selectors.deviation_list_for_user(self.request.user).order_by("-raised_at", "-pk")

    @extend_schema(request=s.DeviationCreateSerializer, responses={201: s.DeviationSerializer})
    def post(self, request):
        """Raise a deviation by hand (technicians, verifiers, QC, QPs)."""
        require_any_site_perm(request.user, deviations.INVESTIGATOR_PERMS, action=gettext_noop("raise deviations"))
        data = _valid(s.DeviationCreateSerializer, request)
        site = _body_ref("site", lambda pk: site_get_for_user(request.user, pk), data.pop("site"))
        if data["batch"] is not None:
            data["batch"] = _body_ref("batch", lambda pk: selectors.batch_get_for_user(request.user, pk),
                                      data["batch"])
        deviation = deviations.deviation_raise_manual(actor=request.user, site=site, **data)
        return Response(s.DeviationSerializer(deviation).data, status=status.HTTP_201_CREATED)


class DeviationDetail(ApiViewMixin, generics.RetrieveAPIView):
    serializer_class = s.DeviationSerializer

    def get_object(self):
        return selectors.deviation_get_for_user(self.request.user, pk_or_404(self.kwargs["pk"]))
