"""Reads of the `batches` app, scoped to the user's sites: a view cannot forget it.

Objects of other sites raise ``Http404``: their existence is not revealed.
"""

from __future__ import annotations

from django.contrib.contenttypes.models import ContentType
from django.db.models import QuerySet
from django.http import Http404

from batches.models import (
    ApheresisIntake,
    Batch,
    CustodyEvent,
    Deviation,
    Donation,
    Equipment,
    Infusion,
    IntakeCorrection,
    Label,
    MasterBatchRecord,
    MaterialLot,
    Order,
    Patient,
    Product,
    StageDefinition,
    StepDefinition,
    StepRecord,
)
from carmfg.accounts.selectors import site_ids_for_user
from carmfg.audit.models import Action, AuditEvent
from carmfg.esign.models import Signature
from carmfg.esign.selectors import SignatureView
from carmfg.esign.services import signable_hash


def _scoped(qs: QuerySet, user) -> QuerySet:
    return qs.filter(site_id__in=site_ids_for_user(user))


def _get(qs: QuerySet, user, **lookup):
    obj = _scoped(qs, user).filter(**lookup).first()
    if obj is None:
        raise Http404("Not found.")
    return obj


def batch_list_for_user(user, *, site=None) -> QuerySet[Batch]:
    qs = _scoped(Batch.objects.select_related("site", "product", "order__patient", "donation", "mbr"), user)
    return qs.filter(site=site) if site is not None else qs


def batch_get_for_user(user, pk) -> Batch:
    return _get(Batch.objects.select_related("site", "product", "order__patient", "donation", "mbr"), user, pk=pk)


def patient_list_for_user(user, *, site=None) -> QuerySet[Patient]:
    qs = _scoped(Patient.objects.select_related("site"), user)
    return qs.filter(site=site) if site is not None else qs


def patient_get_for_user(user, pk) -> Patient:
    return _get(Patient.objects.select_related("site"), user, pk=pk)


def order_list_for_user(user, *, site=None) -> QuerySet[Order]:
    qs = _scoped(Order.objects.select_related("site", "patient", "product"), user)
    return qs.filter(site=site) if site is not None else qs


def order_get_for_user(user, pk) -> Order:
    return _get(Order.objects.select_related("site", "patient", "product"), user, pk=pk)


def donation_get_for_user(user, pk) -> Donation:
    return _get(Donation.objects.select_related("site", "order__patient", "order__product"), user, pk=pk)


def deviation_list_for_user(user, *, site=None) -> QuerySet[Deviation]:
    qs = _scoped(Deviation.objects.select_related("site", "batch", "raised_by"), user)
    return qs.filter(site=site) if site is not None else qs


def deviation_get_for_user(user, pk) -> Deviation:
    return _get(Deviation.objects.select_related("site", "batch", "raised_by"), user, pk=pk)


def mbr_list_for_user(user, *, site=None) -> QuerySet[MasterBatchRecord]:
    qs = _scoped(MasterBatchRecord.objects.select_related("site", "product"), user)
    return qs.filter(site=site) if site is not None else qs


def mbr_get_for_user(user, pk) -> MasterBatchRecord:
    return _get(MasterBatchRecord.objects.select_related("site", "product"), user, pk=pk)


def material_lot_list_for_user(user, *, site=None) -> QuerySet[MaterialLot]:
    qs = _scoped(MaterialLot.objects.select_related("site"), user)
    return qs.filter(site=site) if site is not None else qs


def equipment_list_for_user(user, *, site=None) -> QuerySet[Equipment]:
    qs = _scoped(Equipment.objects.select_related("site"), user)
    return qs.filter(site=site) if site is not None else qs


def mbr_effective_for(product) -> MasterBatchRecord | None:
    return MasterBatchRecord.objects.filter(product=product, status="effective").first()


# --- execution: lots, equipment, step records (site-scoped through their parents) ---------------


def material_lot_get_for_user(user, pk) -> MaterialLot:
    return _get(MaterialLot.objects.select_related("site"), user, pk=pk)


def equipment_get_for_user(user, pk) -> Equipment:
    return _get(Equipment.objects.select_related("site"), user, pk=pk)


def step_record_get_for_batch(batch: Batch, pk) -> StepRecord:
    record = StepRecord.objects.select_related("definition__stage", "batch", "site", "material_lot", "equipment") \
        .filter(batch=batch, pk=pk).first()
    if record is None:
        raise Http404("Not found.")
    return record


def step_definition_get_for_mbr(mbr: MasterBatchRecord, pk) -> StepDefinition:
    step = StepDefinition.objects.select_related("stage__mbr").filter(stage__mbr=mbr, pk=pk).first()
    if step is None:
        raise Http404("Not found.")
    return step


def stage_get_for_mbr(mbr: MasterBatchRecord, pk) -> StageDefinition:
    stage = StageDefinition.objects.select_related("mbr").filter(mbr=mbr, pk=pk).first()
    if stage is None:
        raise Http404("Not found.")
    return stage


def next_steps_for_batches(batches) -> dict[int, object]:
    """The next step (a ``StepState`` or None) of each batch, in two queries for any
    number of batches (lists and the home page)."""
    from collections import defaultdict

    from batches.progress import Plan

    if not batches:
        return {}
    definitions: dict[int, list[StepDefinition]] = defaultdict(list)
    for step in StepDefinition.objects.filter(stage__mbr_id__in={b.mbr_id for b in batches}).select_related("stage") \
            .order_by("stage__order", "order"):
        definitions[step.stage.mbr_id].append(step)
    records: dict[int, list[StepRecord]] = defaultdict(list)
    for record in StepRecord.objects.filter(batch__in=batches).select_related("material_lot"):
        records[record.batch_id].append(record)
    return {batch.pk: Plan(batch, definitions[batch.mbr_id], records[batch.pk], []).next_step for batch in batches}


def open_steps_for_site(site, *, limit: int = 10) -> list:
    """Batches in process at ``site`` with their next step, in three queries whatever the
    number of batches (home page panel). ``site`` is the request's current site, which is
    already one of the user's."""
    from batches.models import BatchState

    batches = list(Batch.objects.filter(site=site, state=BatchState.IN_PROCESS)
                   .select_related("site", "product", "order__patient", "donation", "mbr").order_by("created_at")[:limit])
    steps = next_steps_for_batches(batches)
    return [(batch, steps[batch.pk]) for batch in batches]


def deviation_open_list_for_site(site) -> QuerySet[Deviation]:
    """Deviations of ``site`` not closed yet, oldest first (``site``: the request's current site)."""
    return Deviation.objects.filter(site=site).exclude(status="closed").select_related("batch").order_by("raised_at")


def material_lot_by_barcode(site, barcode: str) -> MaterialLot | None:
    return MaterialLot.objects.filter(site=site, barcode=barcode).first()


def equipment_by_asset(site, asset_id: str) -> Equipment | None:
    return Equipment.objects.filter(site=site, asset_id=asset_id).first()


def batch_list_progress(batches) -> dict[int, dict]:
    """Per batch: steps recorded (distinct step definitions), steps in its recipe, open
    deviations. Three queries for any number of batches."""
    from django.db.models import Count

    ids = [b.pk for b in batches]
    recorded = {row["batch_id"]: row["n"] for row in StepRecord.objects.filter(batch_id__in=ids)
                .values("batch_id").annotate(n=Count("definition_id", distinct=True))}
    totals = {row["stage__mbr_id"]: row["n"] for row in StepDefinition.objects.filter(
        stage__mbr_id__in={b.mbr_id for b in batches}).values("stage__mbr_id").annotate(n=Count("id"))}
    open_devs = {row["batch_id"]: row["n"] for row in Deviation.objects.filter(batch_id__in=ids).exclude(
        status="closed").values("batch_id").annotate(n=Count("id"))}
    return {b.pk: {"recorded": recorded.get(b.pk, 0), "total": totals.get(b.mbr_id, 0),
                   "open_deviations": open_devs.get(b.pk, 0)} for b in batches}


def mbr_list_with_products(user, site) -> QuerySet[MasterBatchRecord]:
    return mbr_list_for_user(user, site=site).select_related("product", "created_by").order_by("product__name", "-version")


# -- chain of identity: patients → labels → custody → intake → infusion ---------------


def product_list_for_site(site) -> QuerySet[Product]:
    return Product.objects.filter(site=site).order_by("name")


def order_list_for_patient(patient: Patient) -> QuerySet[Order]:
    return Order.objects.filter(patient=patient).select_related("product", "donation", "batch")


def label_get_for_user(user, pk) -> Label:
    return _get(Label.objects.select_related("site", "donation__order__patient", "donation__order__product"),
                user, pk=pk)


def label_list_for_donation(donation: Donation) -> QuerySet[Label]:
    return Label.objects.filter(donation=donation).select_related("printed_by", "status_changed_by")


def custody_event_list_for_donation(donation: Donation) -> QuerySet[CustodyEvent]:
    return CustodyEvent.objects.filter(donation=donation).select_related("label", "performed_by")


def intake_get_for_user(user, pk) -> ApheresisIntake:
    return _get(ApheresisIntake.objects.select_related(
        "site", "donation__order__patient", "donation__order__product", "recorded_by", "deviation"), user, pk=pk)


def intake_for_donation(donation: Donation) -> ApheresisIntake | None:
    return ApheresisIntake.objects.filter(donation=donation).select_related("recorded_by", "deviation").first()


def intake_correction_list(intake: ApheresisIntake) -> list[tuple[IntakeCorrection, list[SignatureView]]]:
    """The intake's corrections, oldest first, each with its signatures (two queries)."""
    corrections = list(IntakeCorrection.objects.filter(intake=intake).select_related("corrected_by", "deviation")
                       .order_by("sequence"))
    if not corrections:
        return []
    by_record: dict[str, list[SignatureView]] = {str(c.pk): [] for c in corrections}
    hashes = {str(c.pk): signable_hash(c) for c in corrections}
    for sig in Signature.objects.filter(content_type=ContentType.objects.get_for_model(IntakeCorrection),
                                        object_id__in=list(by_record)).order_by("signed_at", "pk"):
        status = ("voided" if sig.voided_at is not None
                  else "invalidated" if sig.content_hash != hashes[sig.object_id] else "valid")
        by_record[sig.object_id].append(SignatureView(signature=sig, status=status))
    return [(c, by_record[str(c.pk)]) for c in corrections]


def batch_for_donation(donation: Donation) -> Batch | None:
    return Batch.objects.filter(donation=donation).select_related("mbr", "product").first()


def infusion_list_for_batch(batch: Batch) -> QuerySet[Infusion]:
    return Infusion.objects.filter(batch=batch).select_related("recorded_by")


def blocked_event_list_for_donation(donation: Donation) -> QuerySet[AuditEvent]:
    """Refused scans and attempts on this donation (read-only, from the audit trail)."""
    return AuditEvent.objects.filter(
        chain=donation.site_id, action=Action.BLOCKED, root_type="batches.donation", root_id=str(donation.pk),
    ).order_by("occurred_at", "seq")


def last_custody_location(user, site, step: str) -> str:
    """Where this user last scanned at this step: the scan page offers it again."""
    return (
        CustodyEvent.objects.filter(site=site, performed_by=user, step=step)
        .order_by("-performed_at", "-pk").values_list("location", flat=True).first()
        or ""
    )


def intake_pending_count_for_site(user, site) -> int:
    """Intakes outside criteria waiting for a QP decision, at ``site``."""
    return _scoped(ApheresisIntake.objects.filter(site=site, outcome="pending"), user).count()


def step_record_list_for_batch(batch: Batch) -> QuerySet[StepRecord]:
    """The step records of ``batch`` (already scoped), in recipe order."""
    return StepRecord.objects.filter(batch=batch).select_related("definition__stage", "performed_by") \
        .order_by("definition__stage__order", "definition__order", "occurrence", "pk")


def step_record_get_for_user(user, pk) -> StepRecord:
    return _get(StepRecord.objects.select_related("definition__stage", "batch__site", "site", "performed_by"),
                user, pk=pk)
