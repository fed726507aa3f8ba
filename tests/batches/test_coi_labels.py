"""Labels printed from the record: one row per physical label, counted and reconciled,
and barcodes that scan back to the donation *and* the container."""

from __future__ import annotations

import datetime as dt
import io

import pytest
from django.utils import timezone
from hypothesis import given
from hypothesis import strategies as st
from pypdf import PdfReader

from batches.exceptions import NotReady
from batches.isbt128 import DinError, parse_din
from batches.models import ContainerType, Label, LabelStatus
from batches.scans import ScanError, label_scan_data, parse_label_scan, shown
from batches.services.labels import label_apply, label_destroy, label_reconciliation, labels_print
from carmfg.audit.models import Action, AuditEvent
from carmfg.exceptions import InvalidInput, InvalidTransition, PermissionRefused
from tests.batches.coi_steps import a_batch, a_collection, a_patient, din_of, final_bags
from tests.batches.test_labels import scan_pages


@pytest.fixture
def donation(site, coordinator, product):
    return a_collection(coordinator, a_patient(coordinator, site), product)


def test_each_printed_label_is_a_row_with_a_container_code_and_an_audited_print(donation, technician):
    labels, pdf = labels_print(actor=technician, donation=donation, container_type=ContainerType.QC_SAMPLE, quantity=3)

    assert [label.container_code for label in labels] == ["QC-1", "QC-2", "QC-3"]
    assert all(label.status == LabelStatus.PRINTED for label in labels)
    assert len(PdfReader(io.BytesIO(pdf)).pages) == 3
    printed = AuditEvent.objects.filter(action=Action.PRINT, object_type="batches.label")
    assert {e.object_id for e in printed} >= {str(label.pk) for label in labels}
    assert {e.root_id for e in printed} == {str(donation.pk)}


@pytest.mark.parametrize("dpi", [203, 300])
def test_the_printed_label_set_scans_back_to_din_and_container(donation, technician, dpi):
    labels, pdf = labels_print(actor=technician, donation=donation, container_type=ContainerType.QC_SAMPLE, quantity=2)

    pages = scan_pages(pdf, dpi)

    din = din_of(donation)
    for label, page in zip(labels, pages, strict=True):
        texts = sorted(text for _format, text in page)
        assert texts == sorted([din.barcode_data, label_scan_data(din, label.container_code)])
        scanned = parse_label_scan(label_scan_data(din, label.container_code))
        assert (scanned.din.din13, scanned.container_code) == (donation.din, label.container_code)


def test_the_label_prints_its_container_code(donation, technician):
    _labels, pdf = labels_print(actor=technician, donation=donation, container_type=ContainerType.QC_SAMPLE)

    text = " ".join(PdfReader(io.BytesIO(pdf)).pages[0].extract_text().split())
    assert "QC-1" in text
    assert donation.order.patient.pseudonym in text


def test_container_codes_are_never_reused_after_a_label_is_destroyed(donation, technician):
    (first,), _ = labels_print(actor=technician, donation=donation, container_type=ContainerType.QC_SAMPLE)
    label_destroy(actor=technician, label=first, reason="Smudged print")

    (second,), _ = labels_print(actor=technician, donation=donation, container_type=ContainerType.QC_SAMPLE)

    assert second.container_code == "QC-2"


def test_final_product_bags_get_one_label_per_fraction_with_expiry(site, coordinator, technician, product, small_mbr):
    batch = a_batch(coordinator, technician, a_patient(coordinator, site), product)

    labels = final_bags(technician, batch, apply=False)

    assert [(lb.container_code, lb.fraction_number) for lb in labels] == [("FP-1", 1), ("FP-2", 2), ("FP-3", 3)]
    assert all(lb.expires_at is not None for lb in labels)


def test_a_fraction_with_a_live_label_is_not_printed_twice(site, coordinator, technician, product, small_mbr):
    batch = a_batch(coordinator, technician, a_patient(coordinator, site), product)
    first, *_ = final_bags(technician, batch, apply=False)
    expiry = timezone.now() + dt.timedelta(days=1)

    with pytest.raises(NotReady, match="Every fraction"):
        labels_print(actor=technician, donation=batch.donation, container_type=ContainerType.FINAL_PRODUCT_BAG,
                     expires_at=expiry)
    label_destroy(actor=technician, label=first, reason="Torn while applying")
    (replacement,), _ = labels_print(actor=technician, donation=batch.donation,
                                     container_type=ContainerType.FINAL_PRODUCT_BAG, expires_at=expiry)

    assert (replacement.container_code, replacement.fraction_number) == ("FP-4", 1)


def test_final_product_labels_need_a_batch_and_a_future_expiry(donation, technician):
    with pytest.raises(NotReady, match="batch exists"):
        labels_print(actor=technician, donation=donation, container_type=ContainerType.FINAL_PRODUCT_BAG,
                     expires_at=timezone.now() + dt.timedelta(days=1))
    assert not Label.objects.filter(container_type=ContainerType.FINAL_PRODUCT_BAG).exists()


def test_a_final_product_label_without_expiry_is_refused(site, coordinator, technician, product, small_mbr):
    batch = a_batch(coordinator, technician, a_patient(coordinator, site), product)

    with pytest.raises(InvalidInput, match="expiry"):
        labels_print(actor=technician, donation=batch.donation, container_type=ContainerType.FINAL_PRODUCT_BAG)


@pytest.mark.parametrize("quantity", [0, 25, -1, True, "3"])
def test_a_print_job_has_a_sensible_size(donation, technician, quantity):
    with pytest.raises(InvalidInput, match="Quantity"):
        labels_print(actor=technician, donation=donation, container_type=ContainerType.QC_SAMPLE, quantity=quantity)


@pytest.mark.parametrize(("persona", "container_type"), [
    ("qp", ContainerType.QC_SAMPLE),
    ("auditor", ContainerType.QC_SAMPLE),
    # QC prints the labels of the samples it takes itself, and no others.
    ("qc_analyst", ContainerType.APHERESIS_BAG),
    ("qc_analyst", ContainerType.CULTURE_VESSEL),
])
def test_only_coordinators_the_floor_and_qc_for_its_samples_print_labels(donation, request, persona, container_type):
    with pytest.raises(PermissionRefused):
        labels_print(actor=request.getfixturevalue(persona), donation=donation, container_type=container_type)


def test_destroying_a_label_needs_a_reason(donation, technician):
    (label,), _ = labels_print(actor=technician, donation=donation, container_type=ContainerType.QC_SAMPLE)

    with pytest.raises(InvalidInput, match="required"):
        label_destroy(actor=technician, label=label, reason=" ")
    label.refresh_from_db()
    assert label.status == LabelStatus.PRINTED


def test_applying_and_destroying_are_recorded_with_who_and_when(donation, technician):
    (label,), _ = labels_print(actor=technician, donation=donation, container_type=ContainerType.QC_SAMPLE)

    label_apply(actor=technician, label=label)
    label_destroy(actor=technician, label=label, reason="Sample tube cracked")

    label.refresh_from_db()
    assert label.status == LabelStatus.DESTROYED
    assert label.status_changed_by == technician
    assert label.status_reason == "Sample tube cracked"
    events = AuditEvent.objects.filter(object_type="batches.label", object_id=str(label.pk), action=Action.TRANSITION)
    assert [e.changes["status"]["new"] for e in events] == ["applied", "destroyed"]
    with pytest.raises(InvalidTransition):
        label_apply(actor=technician, label=label)


def test_reconciliation_balances_only_when_every_printed_label_is_applied_or_destroyed(donation, technician):
    labels, _ = labels_print(actor=technician, donation=donation, container_type=ContainerType.QC_SAMPLE, quantity=2)

    before = label_reconciliation(donation)
    label_apply(actor=technician, label=labels[0])
    label_destroy(actor=technician, label=labels[1], reason="Spare label")
    after = label_reconciliation(donation)

    # AB-1 was printed and applied by the collection; QC-1 and QC-2 now.
    assert (before.printed, before.applied, before.destroyed, before.balanced) == (3, 1, 0, False)
    assert before.outstanding == ["QC-1", "QC-2"]
    assert (after.printed, after.applied, after.destroyed, after.balanced) == (3, 2, 1, True)


# -- reading scans back --------------------------------------------------------------


def test_a_datamatrix_scan_names_din_and_container_and_a_code128_scan_the_din_only():
    din = parse_din("W000126000042")

    assert parse_label_scan("=W00012600004200/FP-2").container_code == "FP-2"
    assert parse_label_scan("=W00012600004200/FP-2").din == din
    assert parse_label_scan("=W00012600004200").container_code is None
    assert parse_label_scan(" w0001 26 000042 \n").din == din


@pytest.mark.parametrize(
    "scanned",
    ["", "=W00012600004200/XX-1", "=W00012600004200/FP-0", "=W00012600004200/", "W0001260000420/AB-1",
     "=W00012600004200/AB-1/AB-2", "\x00", "x" * 500, "=W00012600004200/ＡＢ-1"],
)
def test_what_is_not_one_of_our_labels_is_a_clear_scan_error(scanned):
    with pytest.raises(ScanError):
        parse_label_scan(scanned)


@given(st.text(max_size=100))
def test_any_scan_is_read_or_refused_as_a_scan_error(text):
    try:
        scan = parse_label_scan(text)
    except ScanError as exc:
        error = exc
    else:
        assert len(scan.din.din13) == 13
        return
    assert error.message


@given(st.text(max_size=300))
def test_a_scan_is_always_shown_printable_and_bounded(text):
    out = shown(text)
    assert out.isprintable()
    assert len(out) <= 120


def test_scan_errors_are_din_errors_kind_of_input_error():
    assert issubclass(ScanError, InvalidInput)
    assert issubclass(DinError, InvalidInput)
