"""QC samples: one per sampling step of the batch (or taken by QC), carrying the batch's
DIN on a QC-sample label, received by QC with a scan of that label; the receipt is the
QC hand-over link of the chain of custody.

The hand-over scan must name this batch's donation: a sample of another patient is
refused and the attempt stays in the audit trail, like any blocked scan.
"""

from __future__ import annotations

from django.db import transaction
from django.utils import timezone

from batches.exceptions import IdentityMismatch, NotReady
from batches.isbt128 import parse_din
from batches.models import (
    Batch,
    ContainerType,
    CustodyEvent,
    CustodyStep,
    Label,
    LabelStatus,
    StepKind,
    StepRecord,
)
from carmfg.accounts.permissions import SitePerm, require_site_perm
from carmfg.audit.models import Action
from carmfg.audit.services import audit_record
from carmfg.exceptions import InvalidInput
from carmfg.textinput import clean_text
from qc.models import Sample
from qc.selectors import pinned_specification

SAMPLE_TYPE_MAX = 60


def _next_code(batch: Batch) -> str:
    count = Sample.objects.filter(batch=batch).count()
    return f"S{count + 1:02d}"


def _free_label(batch: Batch, used: set[int]) -> Label | None:
    """An applied QC-sample label of the batch's donation not yet on a sample."""
    return (Label.objects.filter(donation_id=batch.donation_id, container_type=ContainerType.QC_SAMPLE,
                                 status=LabelStatus.APPLIED).exclude(pk__in=used).order_by("container_code").first())


def samples_create_from_steps(*, actor, batch: Batch) -> list[Sample]:
    """One sample per recorded sampling step that has none yet, with the tests the step
    samples for, who took it and when, and the QC-sample label of the donation."""
    require_site_perm(actor, batch.site, SitePerm.QC, action="register QC samples")
    created = []
    with transaction.atomic():
        locked = Batch.objects.select_for_update().get(pk=batch.pk)
        records = list(StepRecord.objects.filter(batch=locked, definition__kind=StepKind.SAMPLE)
                       .select_related("definition").order_by("performed_at", "pk"))
        if not records:
            raise NotReady(f"No sampling step of batch {locked.number} is recorded yet.")
        done = set(Sample.objects.filter(batch=locked, step_record__isnull=False).values_list("step_record_id", flat=True))
        used = set(Sample.objects.filter(batch=locked, label__isnull=False).values_list("label_id", flat=True))
        for record in records:
            if record.pk in done:
                continue
            label = _free_label(locked, used)
            if label is not None:
                used.add(label.pk)
            sample = Sample.objects.create(
                site=locked.site, batch=locked, code=_next_code(locked), sample_type="QC sample",
                test_codes=list(record.definition.sample_tests), step_record=record, label=label,
                taken_by=record.performed_by, taken_at=record.performed_at,
            )
            audit_record(actor=actor, action=Action.CREATE, obj=sample,
                         changes={"code": sample.code, "tests": sample.test_codes, "step": record.definition.code,
                                  "label": label.container_code if label else ""})
            created.append(sample)
    return created


def sample_create(*, actor, batch: Batch, test_codes: list[str], sample_type: str) -> Sample:
    """QC registers a sample taken outside the recipe's sampling steps (e.g. for a retest)."""
    require_site_perm(actor, batch.site, SitePerm.QC, action="register QC samples")
    sample_type = clean_text(sample_type, field="Sample type", max_length=SAMPLE_TYPE_MAX, required=True)
    if not isinstance(test_codes, list) or not test_codes or not all(isinstance(c, str) for c in test_codes):
        raise InvalidInput("Choose at least one test for the sample.", field="tests")
    known = set(pinned_specification(batch).tests.values_list("code", flat=True))
    unknown = sorted(set(test_codes) - known)
    if unknown:
        raise InvalidInput(f"Not tests of the batch's specification: {', '.join(unknown)}.", field="tests")
    with transaction.atomic():
        locked = Batch.objects.select_for_update().get(pk=batch.pk)
        used = set(Sample.objects.filter(batch=locked, label__isnull=False).values_list("label_id", flat=True))
        label = _free_label(locked, used)
        sample = Sample.objects.create(site=locked.site, batch=locked, code=_next_code(locked), sample_type=sample_type,
                                       test_codes=sorted(set(test_codes)), label=label, taken_by=actor,
                                       taken_at=timezone.now())
        audit_record(actor=actor, action=Action.CREATE, obj=sample,
                     changes={"code": sample.code, "tests": sample.test_codes, "sample_type": sample_type,
                              "label": label.container_code if label else ""})
    return sample


def sample_receive(*, actor, sample: Sample, scanned_code: str) -> Sample:
    """QC receives the sample: the scanned label must carry the batch's DIN. A wrong
    label blocks and is audited; nothing is recorded."""
    require_site_perm(actor, sample.site, SitePerm.QC, action="receive QC samples")
    scanned = clean_text(scanned_code, field="Scanned label", max_length=200, required=True)
    batch = sample.batch
    try:
        din = parse_din(scanned).din13
    except InvalidInput as exc:
        din, problem = "", exc.message
    else:
        problem = "" if din == batch.donation.din else f"the label scanned is DIN {din}, not this batch's"
    if problem:
        with transaction.atomic():
            audit_record(actor=actor, action=Action.BLOCKED, obj=batch.donation, root=batch.donation,
                         changes={"context": "QC sample receipt", "step": "qc_handover", "sample": sample.code,
                                  "expected": batch.donation.din, "scanned": scanned[:60], "cause": problem})
        raise IdentityMismatch(expected=batch.donation.din, scanned=scanned[:60],
                               message=f"Sample {sample.code} not received: {problem}. Put it aside and check the "
                                       "label; the attempt is in the audit trail.")
    with transaction.atomic():
        locked = Sample.objects.select_for_update().get(pk=sample.pk)
        if locked.received_at is not None:
            raise NotReady(f"Sample {locked.code} was already received.")
        locked.received_by = actor
        locked.received_at = timezone.now()
        locked.save(update_fields=["received_by", "received_at"])
        audit_record(actor=actor, action=Action.TRANSITION, obj=locked,
                     changes={"received_at": locked.received_at, "scanned": scanned[:60]})
        # The hand-over is a link of the chain of custody (and resolves an earlier blocked scan).
        event = CustodyEvent.objects.create(
            site=locked.site, donation=batch.donation, label=locked.label, step=CustodyStep.QC_HANDOVER,
            scanned_code=scanned[:200], performed_by=actor, performed_at=locked.received_at, location="QC laboratory",
            note=f"QC sample {locked.code} received",
        )
        audit_record(actor=actor, action=Action.CREATE, obj=event,
                     changes={"step": event.step, "din": batch.donation.din, "sample": locked.code})
    return locked
