"""QC samples: one per sampling step of the batch (or taken by QC), carrying the batch's
DIN on a QC-sample label, received by QC with a scan of that label; the receipt is the
QC hand-over link of the chain of custody.

The hand-over is a custody scan of the sample's label (``batches.services.custody``):
a sample of another patient, or another container, is refused and the attempt stays
in the audit trail, like any blocked scan.
"""

from __future__ import annotations

from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext_noop

from batches.labels import render_labels_pdf
from batches.models import (
    Batch,
    ContainerType,
    CustodyStep,
    Label,
    LabelStatus,
    StepKind,
    StepRecord,
)
from batches.services.custody import custody_scan
from batches.services.labels import label_apply, label_data, labels_print
from carmfg.accounts.permissions import SitePerm, require_site_perm
from carmfg.audit.models import Action
from carmfg.audit.services import audit_record
from carmfg.exceptions import InvalidInput
from carmfg.textinput import clean_text
from carmfg.texts import Lowered
from qc.exceptions import NotReady
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


def _scanned_label(batch: Batch, record: StepRecord) -> Label | None:
    """The QC-sample label the sampling step scanned (the step records "DIN · container")."""
    _din, _sep, code = record.value_text.partition(" · ")
    code = code.split(" ", 1)[0] if code else ""
    if not code:
        return None
    return Label.objects.filter(donation_id=batch.donation_id, container_code=code,
                                container_type=ContainerType.QC_SAMPLE).first()


def samples_create_from_steps(*, actor, batch: Batch) -> list[Sample]:
    """One sample per recorded sampling step that has none yet, with the tests the step
    samples for, who took it and when, and the QC-sample label of the donation."""
    require_site_perm(actor, batch.site, SitePerm.QC, action=gettext_noop("register QC samples"))
    created = []
    with transaction.atomic():
        locked = Batch.objects.select_for_update().get(pk=batch.pk)
        records = list(StepRecord.objects.filter(batch=locked, definition__kind=StepKind.SAMPLE)
                       .select_related("definition").order_by("performed_at", "pk"))
        if not records:
            raise NotReady(gettext_noop("No sampling step of batch %(batch)s is recorded yet."),
                           params={"batch": locked.number})
        known = set(pinned_specification(locked).tests.values_list("code", flat=True))
        done = set(Sample.objects.filter(batch=locked, step_record__isnull=False).values_list("step_record_id", flat=True))
        used = set(Sample.objects.filter(batch=locked, label__isnull=False).values_list("label_id", flat=True))
        for record in records:
            if record.pk in done:
                continue
            label = _scanned_label(locked, record) or _free_label(locked, used)
            if label is not None:
                used.add(label.pk)
            # The recipe names tests by code; only those of the pinned specification are judged. The
            # others are kept in the audit event, so a recipe/specification mismatch is visible.
            sampled = list(record.definition.sample_tests)
            sample = Sample.objects.create(
                site=locked.site, batch=locked, code=_next_code(locked), sample_type="QC sample",
                test_codes=[c for c in sampled if c in known], step_record=record, label=label,
                taken_by=record.performed_by, taken_at=record.performed_at,
            )
            audit_record(actor=actor, action=Action.CREATE, obj=sample,
                         changes={"code": sample.code, "tests": sample.test_codes, "step": record.definition.code,
                                  "not_in_specification": [c for c in sampled if c not in known],
                                  "label": label.container_code if label else ""})
            created.append(sample)
    return created


def sample_create(*, actor, batch: Batch, test_codes: list[str], sample_type: str) -> Sample:
    """QC registers a sample taken outside the recipe's sampling steps (e.g. for a retest),
    with a QC-sample label of the batch's donation: an applied one not yet on a sample, or
    else a new one printed here (audited, counted in the label reconciliation), which QC
    prints, sticks on the tube and records as applied before the hand-over scan."""
    require_site_perm(actor, batch.site, SitePerm.QC, action=gettext_noop("register QC samples"))
    sample_type = clean_text(sample_type, field=gettext_noop("Sample type"), max_length=SAMPLE_TYPE_MAX, required=True)
    if not isinstance(test_codes, list) or not test_codes or not all(isinstance(c, str) for c in test_codes):
        raise InvalidInput(gettext_noop("Choose at least one test for the sample."), field="tests")
    known = set(pinned_specification(batch).tests.values_list("code", flat=True))
    unknown = sorted(set(test_codes) - known)
    if unknown:
        raise InvalidInput(gettext_noop("Not tests of the batch's specification: %(codes)s."),
                           params={"codes": ', '.join(unknown)}, field="tests")
    with transaction.atomic():
        locked = Batch.objects.select_for_update().get(pk=batch.pk)
        used = set(Sample.objects.filter(batch=locked, label__isnull=False).values_list("label_id", flat=True))
        label = _free_label(locked, used)
        if label is None:
            (label,), _pdf = labels_print(actor=actor, donation=locked.donation, container_type=ContainerType.QC_SAMPLE)
        sample = Sample.objects.create(site=locked.site, batch=locked, code=_next_code(locked), sample_type=sample_type,
                                       test_codes=sorted(set(test_codes)), label=label, taken_by=actor,
                                       taken_at=timezone.now())
        audit_record(actor=actor, action=Action.CREATE, obj=sample,
                     changes={"code": sample.code, "tests": sample.test_codes, "sample_type": sample_type,
                              "label": label.container_code, "label_status": label.status})
    return sample


def _sample_label(sample: Sample) -> Label:
    if sample.label is None:
        raise NotReady(gettext_noop("Sample %(sample)s has no label."),
                       params={"sample": sample.code})
    return sample.label


def sample_label_pdf(*, actor, sample: Sample) -> bytes:
    """The PDF of a sample's label, to print it, while the label is printed and not yet
    on the tube; each print is audited. Once applied, a lost label is destroyed and a new
    one printed, never copied."""
    require_site_perm(actor, sample.site, SitePerm.QC, action=gettext_noop("print QC sample labels"))
    with transaction.atomic():
        label = Label.objects.select_for_update().get(pk=_sample_label(sample).pk)
        if label.status != LabelStatus.PRINTED:
            raise NotReady(gettext_noop("Label %(label)s is %(status)s: it is printed only before "
                                        "it is applied."),
                           params={"label": label.container_code, "status": Lowered(label.get_status_display())})
        pdf = render_labels_pdf([label_data(label)])
        audit_record(actor=actor, action=Action.PRINT, obj=label,
                     changes={"container_code": label.container_code, "sample": sample.code, "copy": True})
    return pdf


def sample_label_apply(*, actor, sample: Sample) -> Label:
    """QC records that the sample's printed label is on its tube."""
    require_site_perm(actor, sample.site, SitePerm.QC, action=gettext_noop("apply QC sample labels"))
    return label_apply(actor=actor, label=_sample_label(sample))


def sample_receive(*, actor, sample: Sample, scanned_code: str) -> Sample:
    """QC receives the sample with a scan of its label: the chain-of-custody hand-over
    (``custody_scan``, step QC hand-over). A label that is not this sample's blocks, is
    audited and records nothing. Call outside any transaction (a refusal is committed)."""
    require_site_perm(actor, sample.site, SitePerm.QC, action=gettext_noop("receive QC samples"))
    if sample.received_at is not None:
        raise NotReady(gettext_noop("Sample %(sample)s was already received."),
                       params={"sample": sample.code})
    batch = sample.batch
    event = custody_scan(actor=actor, donation=batch.donation, step=CustodyStep.QC_HANDOVER, scanned_code=scanned_code,
                         expected_container_type=ContainerType.QC_SAMPLE, label=sample.label,
                         location="QC laboratory", note=f"QC sample {sample.code} received")
    with transaction.atomic():
        locked = Sample.objects.select_for_update().get(pk=sample.pk)
        if locked.received_at is not None:
            raise NotReady(gettext_noop("Sample %(sample)s was already received."),
                           params={"sample": locked.code})
        locked.received_by = actor
        locked.received_at = event.performed_at
        locked.save(update_fields=["received_by", "received_at"])
        audit_record(actor=actor, action=Action.TRANSITION, obj=locked,
                     changes={"received_at": locked.received_at, "custody_event": event.pk})
    return locked
