"""Serializers of the batches API. Reads are model serializers; writes are plain
serializers that only parse types: every rule stays in the services."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from batches.models import (
    Batch,
    BatchFailureReason,
    BatchState,
    CustodyEvent,
    CustodyStep,
    Deviation,
    DeviationClass,
    Order,
    Patient,
    StepRecord,
)
from carmfg.accounts.permissions import SitePerm, has_site_perm
from carmfg.api.serializers import SignaturesField

TEXT_MAX = 100_000  # far above any field's limit: the service names the real one


def _text(**kwargs) -> serializers.CharField:
    kwargs.setdefault("max_length", TEXT_MAX)
    kwargs.setdefault("trim_whitespace", False)
    return serializers.CharField(**kwargs)


def _decimal(**kwargs) -> serializers.DecimalField:
    """Any finite number: its range and places are the service's to judge."""
    return serializers.DecimalField(max_digits=40, decimal_places=20, **kwargs)


# --- patients and orders -----------------------------------------------------------------------


class PatientSerializer(serializers.ModelSerializer):
    hospital_record_number = serializers.SerializerMethodField(
        help_text="Shown only to coordinators (null for everyone else).")
    wristband_code = serializers.SerializerMethodField(help_text="Shown only to coordinators (null for everyone else).")

    class Meta:
        model = Patient
        fields = ("id", "site", "pseudonym", "initials", "birth_year", "weight_kg", "weight_measured_on",
                  "hospital_record_number", "wristband_code", "version", "created_at")
        read_only_fields = fields

    def _coordinator(self, patient: Patient) -> bool:
        return has_site_perm(self.context["request"].user, patient.site, SitePerm.PATIENTS)

    @extend_schema_field(serializers.CharField(allow_null=True))
    def get_hospital_record_number(self, patient: Patient) -> str | None:
        return patient.hospital_record_number if self._coordinator(patient) else None

    @extend_schema_field(serializers.CharField(allow_null=True))
    def get_wristband_code(self, patient: Patient) -> str | None:
        return patient.wristband_code if self._coordinator(patient) else None


class PatientCreateSerializer(serializers.Serializer):
    site = serializers.IntegerField(min_value=1, help_text="One of your sites (GET /api/v1/sites/).")
    initials = _text()
    birth_year = serializers.IntegerField(min_value=0, max_value=9999)
    hospital_record_number = _text()
    wristband_code = _text()
    weight_kg = _decimal()
    weight_measured_on = serializers.DateField()


class PatientUpdateSerializer(serializers.Serializer):
    initials = _text(required=False)
    birth_year = serializers.IntegerField(min_value=0, max_value=9999, required=False)
    hospital_record_number = _text(required=False)
    wristband_code = _text(required=False)
    weight_kg = _decimal(required=False)
    weight_measured_on = serializers.DateField(required=False)
    reason = _text(help_text="Why the record is changed (audited).")
    version = serializers.IntegerField(min_value=1, max_value=10**9, required=False,
                                       help_text="The version you read, unless you send If-Match.")


def _blank_or(choices) -> serializers.ChoiceField:
    """A read-only choice that may also be empty (the field is blank until it applies)."""
    return serializers.ChoiceField(choices=[("", "(none)"), *choices], read_only=True)


class OrderSerializer(serializers.ModelSerializer):
    failure_reason = _blank_or(BatchFailureReason.choices)
    patient_pseudonym = serializers.CharField(source="patient.pseudonym", read_only=True)
    product_code = serializers.CharField(source="product.code", read_only=True)
    donation = serializers.SerializerMethodField()
    din = serializers.SerializerMethodField()
    batch = serializers.SerializerMethodField()

    class Meta:
        model = Order
        fields = ("id", "site", "number", "patient", "patient_pseudonym", "product", "product_code", "indication",
                  "treating_physician", "physician_email", "target_dose_cells_per_kg", "planned_collection_date",
                  "planned_infusion_date", "status", "failure_reason", "version", "created_at", "donation", "din",
                  "batch")
        read_only_fields = fields

    @extend_schema_field(serializers.IntegerField(allow_null=True))
    def get_donation(self, order: Order) -> int | None:
        donation = getattr(order, "donation", None)
        return donation.pk if donation is not None else None

    @extend_schema_field(serializers.CharField(allow_null=True))
    def get_din(self, order: Order) -> str | None:
        donation = getattr(order, "donation", None)
        return donation.din if donation is not None else None

    @extend_schema_field(serializers.IntegerField(allow_null=True))
    def get_batch(self, order: Order) -> int | None:
        batch = getattr(order, "batch", None)
        return batch.pk if batch is not None else None


class OrderCreateSerializer(serializers.Serializer):
    patient = serializers.IntegerField(min_value=1)
    product = serializers.IntegerField(min_value=1, help_text="A product of the patient's site.")
    indication = _text()
    treating_physician = _text()
    physician_email = _text(required=False, allow_blank=True, default="")
    target_dose_cells_per_kg = _decimal()
    planned_collection_date = serializers.DateField()
    planned_infusion_date = serializers.DateField(required=False, allow_null=True, default=None)


class OrderUpdateSerializer(serializers.Serializer):
    product = serializers.IntegerField(min_value=1, required=False)
    indication = _text(required=False)
    treating_physician = _text(required=False)
    physician_email = _text(required=False, allow_blank=True)
    target_dose_cells_per_kg = _decimal(required=False)
    planned_collection_date = serializers.DateField(required=False)
    planned_infusion_date = serializers.DateField(required=False, allow_null=True)
    reason = _text(help_text="Why the order is changed (audited).")
    version = serializers.IntegerField(min_value=1, max_value=10**9, required=False,
                                       help_text="The version you read, unless you send If-Match.")


# --- batches and steps ----------------------------------------------------------------------------


class BatchSerializer(serializers.ModelSerializer):
    state_before_hold = _blank_or(BatchState.choices)
    failure_reason = _blank_or(BatchFailureReason.choices)
    din = serializers.CharField(source="donation.din", read_only=True)
    product_code = serializers.CharField(source="product.code", read_only=True)
    patient_pseudonym = serializers.CharField(source="order.patient.pseudonym", read_only=True)
    mbr_version = serializers.IntegerField(source="mbr.version", read_only=True)

    class Meta:
        model = Batch
        fields: tuple[str, ...] = ("id", "site", "number", "order", "donation", "din", "product", "product_code", "patient_pseudonym",
                  "mbr", "mbr_version", "state", "state_before_hold", "failure_reason", "created_at", "started_at",
                  "completed_at", "version")
        read_only_fields = fields


class BatchProgressSerializer(serializers.Serializer):
    recorded = serializers.IntegerField(help_text="Steps of the recipe recorded at least once.")
    total = serializers.IntegerField(help_text="Steps in the batch's recipe.")
    open_deviations = serializers.IntegerField()


class BatchDetailSerializer(BatchSerializer):
    progress = serializers.SerializerMethodField()

    class Meta(BatchSerializer.Meta):
        fields = (*BatchSerializer.Meta.fields, "progress")
        read_only_fields = fields

    @extend_schema_field(BatchProgressSerializer)
    def get_progress(self, batch: Batch) -> dict:
        from batches.selectors import batch_list_progress

        return batch_list_progress([batch])[batch.pk]


class TimelineEntrySerializer(serializers.Serializer):
    at = serializers.DateTimeField()
    kind = serializers.CharField(help_text="registered, labels, custody, intake, decision, batch, infusion, blocked")
    title = serializers.CharField()
    who = serializers.CharField()
    where = serializers.CharField()
    temperature_c = serializers.DecimalField(max_digits=5, decimal_places=1, allow_null=True)
    scanned = serializers.CharField()
    result = serializers.CharField(help_text="matched, blocked or empty")
    details = serializers.ListField(child=serializers.CharField())


class StepRecordSerializer(serializers.ModelSerializer):
    step_code = serializers.CharField(source="definition.code", read_only=True)
    step_title = serializers.CharField(source="definition.title", read_only=True)
    step_kind = serializers.CharField(source="definition.kind", read_only=True)
    performed_by = serializers.CharField(source="performed_by.username", read_only=True)

    class Meta:
        model = StepRecord
        fields: tuple[str, ...] = ("id", "site", "batch", "definition", "step_code", "step_title", "step_kind", "occurrence", "status",
                  "value", "value_text", "unit", "limit_result", "material_lot", "equipment", "quantity",
                  "calculation_inputs", "calculation_outputs", "comment", "deviation", "performed_by", "performed_at",
                  "version")
        read_only_fields = fields


class StepRecordDetailSerializer(StepRecordSerializer):
    signatures = SignaturesField()

    class Meta(StepRecordSerializer.Meta):
        fields = (*StepRecordSerializer.Meta.fields, "signatures")
        read_only_fields = fields


class StepRecordCreateSerializer(serializers.Serializer):
    definition = serializers.IntegerField(min_value=1, help_text="The step definition of the batch's recipe.")
    expected_occurrence = serializers.IntegerField(
        min_value=1, max_value=10_000, help_text="1 for a first recording; n+1 for the next of a repeatable step.")
    password = _text(max_length=1000, help_text="Your password, re-entered: the performer's signature.")
    value = _text(required=False, allow_blank=True, help_text="Value steps: the number as read.")
    unit = _text(required=False, help_text="Value steps: the unit you read it in (must be the step's).")
    lot_barcode = _text(required=False, allow_blank=True)
    equipment_code = _text(required=False, allow_blank=True)
    scanned_code = _text(required=False, allow_blank=True)
    quantity = _text(required=False, allow_blank=True)
    comment = _text(required=False, allow_blank=True, default="")
    confirmed = serializers.BooleanField(required=False, default=False,
                                         help_text="Confirms a value outside alert or action limits (with a comment).")


class SignRequestSerializer(serializers.Serializer):
    password = _text(max_length=1000, help_text="Your password, re-entered for the signature.")
    comment = _text(required=False, allow_blank=True, default="")
    version = serializers.IntegerField(min_value=1, max_value=10**9, required=False,
                                       help_text="The version you read, unless you send If-Match.")


# --- custody and deviations ------------------------------------------------------------------------


class CustodyEventSerializer(serializers.ModelSerializer):
    din = serializers.CharField(source="donation.din", read_only=True)
    container_code = serializers.SerializerMethodField()
    performed_by = serializers.CharField(source="performed_by.username", read_only=True)

    class Meta:
        model = CustodyEvent
        fields = ("id", "site", "donation", "din", "label", "container_code", "step", "scanned_code", "performed_by",
                  "performed_at", "location", "temperature_c", "note")
        read_only_fields = fields

    @extend_schema_field(serializers.CharField(allow_null=True))
    def get_container_code(self, event: CustodyEvent) -> str | None:
        return event.label.container_code if event.label is not None else None


class CustodyScanSerializer(serializers.Serializer):
    step = serializers.ChoiceField(choices=CustodyStep.choices)
    scanned_code = _text(help_text="Exactly what the scanner read from the label.")
    location = _text()
    temperature_c = _decimal(required=False, allow_null=True, default=None)
    note = _text(required=False, allow_blank=True, default="")


class DeviationSerializer(serializers.ModelSerializer):
    raised_by = serializers.CharField(source="raised_by.username", read_only=True)

    class Meta:
        model = Deviation
        fields = ("id", "site", "number", "batch", "donation", "source", "classification", "status", "title",
                  "description", "impact_assessment", "root_cause", "capa", "raised_by", "raised_at", "closed_at",
                  "version")
        read_only_fields = fields


class DeviationCreateSerializer(serializers.Serializer):
    site = serializers.IntegerField(min_value=1, help_text="One of your sites.")
    classification = serializers.ChoiceField(choices=DeviationClass.choices)
    title = _text()
    description = _text()
    batch = serializers.IntegerField(min_value=1, required=False, allow_null=True, default=None)
