"""Chain of custody: a handoff is recorded only when the scanned label is the one the
step expects; anything else blocks, changes nothing, and is in the audit trail."""

from __future__ import annotations

import re
from decimal import Decimal

import pytest

from batches.exceptions import IdentityMismatch
from batches.models import ContainerType, CustodyEvent, CustodyStep, Label
from batches.services.custody import SEEN_AT_OTHER_HANDOVER, STEP_RULES, custody_scan
from batches.services.labels import label_apply, label_destroy, labels_print
from carmfg.audit.models import Action, AuditEvent
from carmfg.exceptions import InvalidInput, PermissionRefused
from tests.batches.coi_steps import a_batch, a_collection, a_patient, din_of, final_bags, scan_of


@pytest.fixture
def donation(site, coordinator, product):
    return a_collection(coordinator, a_patient(coordinator, site, n=1), product)


@pytest.fixture
def other_patients_donation(site, coordinator, product):
    return a_collection(coordinator, a_patient(coordinator, site, n=2), product)


def _scan(actor, donation, code, step=CustodyStep.TRANSPORT, **kwargs):
    kwargs.setdefault("location", "Apheresis unit, ward 3")
    kwargs.setdefault("temperature_c", Decimal("4.5"))
    return custody_scan(actor=actor, donation=donation, step=step, scanned_code=code, **kwargs)


def _state(donation):
    """Everything a scan could change."""
    return (
        list(CustodyEvent.objects.values_list("pk", flat=True)),
        list(Label.objects.order_by("pk").values_list("pk", "status")),
        AuditEvent.objects.exclude(action=Action.BLOCKED).count(),
    )


def test_a_matching_scan_records_who_when_where_temperature_and_what_was_scanned(donation, technician):
    event = _scan(technician, donation, scan_of(donation, "AB-1"))

    assert event.step == CustodyStep.TRANSPORT
    assert event.label.container_code == "AB-1"
    assert event.performed_by == technician
    assert event.location == "Apheresis unit, ward 3"
    assert event.temperature_c == Decimal("4.5")
    assert event.scanned_code == scan_of(donation, "AB-1")
    audit = AuditEvent.objects.get(object_type="batches.custodyevent", object_id=str(event.pk))
    assert audit.root_id == str(donation.pk)
    assert audit.changes["matched"] is True


@pytest.mark.parametrize("step", [s for s in CustodyStep if ContainerType.APHERESIS_BAG in STEP_RULES[s].containers])
def test_another_patients_bag_is_refused_at_every_step_and_nothing_changes(
    step, donation, other_patients_donation, technician
):
    before = _state(donation)

    with pytest.raises(IdentityMismatch) as excinfo:
        _scan(technician, donation, scan_of(other_patients_donation, "AB-1"), step=step)

    assert _state(donation) == before
    assert donation.din_display in excinfo.value.expected
    assert other_patients_donation.din_display.split(" [")[0] in excinfo.value.scanned
    assert "another donation" in excinfo.value.cause
    blocked = AuditEvent.objects.get(action=Action.BLOCKED, root_id=str(donation.pk))
    assert blocked.actor == technician
    assert blocked.root_type == "batches.donation"
    assert blocked.changes["step"] == step
    assert blocked.changes["context"] == "custody scan"
    assert other_patients_donation.din in blocked.changes["scanned"].replace(" ", "")


@pytest.mark.parametrize("step", [s for s in CustodyStep if ContainerType.FINAL_PRODUCT_BAG in STEP_RULES[s].containers])
def test_another_patients_product_bag_is_refused_at_every_later_step(
    step, site, coordinator, technician, product, small_mbr
):
    mine = a_batch(coordinator, technician, a_patient(coordinator, site, n=1), product)
    theirs = a_batch(coordinator, technician, a_patient(coordinator, site, n=2), product)
    final_bags(technician, mine)
    final_bags(technician, theirs)
    before = _state(mine.donation)

    with pytest.raises(IdentityMismatch):
        _scan(technician, mine.donation, scan_of(theirs.donation, "FP-1"), step=step)

    assert _state(mine.donation) == before
    assert AuditEvent.objects.filter(action=Action.BLOCKED, root_id=str(mine.donation.pk),
                                     changes__step=step).exists()


def test_another_patients_qc_sample_is_refused_at_the_qc_handover(donation, other_patients_donation, technician):
    for d in (donation, other_patients_donation):
        (sample,), _ = labels_print(actor=technician, donation=d, container_type=ContainerType.QC_SAMPLE)
        label_apply(actor=technician, label=sample)
    before = _state(donation)

    with pytest.raises(IdentityMismatch):
        _scan(technician, donation, scan_of(other_patients_donation, "QC-1"), step=CustodyStep.QC_HANDOVER)

    assert _state(donation) == before
    assert AuditEvent.objects.filter(action=Action.BLOCKED, root_id=str(donation.pk),
                                     changes__step=CustodyStep.QC_HANDOVER).exists()


def test_every_custody_step_is_covered_by_a_refusal_test():
    covered = {s for s in CustodyStep if STEP_RULES[s].containers & {ContainerType.APHERESIS_BAG,
                                                                    ContainerType.FINAL_PRODUCT_BAG}}
    assert covered | {CustodyStep.QC_HANDOVER} == set(CustodyStep)


def test_the_other_patients_record_also_shows_where_its_bag_was_scanned(donation, other_patients_donation, technician):
    with pytest.raises(IdentityMismatch):
        _scan(technician, donation, scan_of(other_patients_donation, "AB-1"))

    theirs = AuditEvent.objects.get(action=Action.BLOCKED, root_id=str(other_patients_donation.pk))
    assert donation.din_display in theirs.changes["cause"]


@pytest.mark.parametrize(
    ("scanned", "cause"),
    [
        ("=W00019900000100/AB-1", "unknown at this site"),
        ("garbage\x1d", "Unreadable scan"),
        ("", "Unreadable scan"),
        ("x" * 5000, "Unreadable scan"),
    ],
)
def test_unknown_or_unreadable_scans_block(donation, technician, scanned, cause):
    with pytest.raises(IdentityMismatch, match=cause):
        _scan(technician, donation, scanned)

    assert not CustodyEvent.objects.exists()
    blocked = AuditEvent.objects.get(action=Action.BLOCKED)
    assert len(blocked.changes["scanned"]) <= 120


def test_the_din_barcode_alone_does_not_identify_the_container(donation, technician):
    with pytest.raises(IdentityMismatch, match="DataMatrix"):
        _scan(technician, donation, din_of(donation).barcode_data)
    assert not CustodyEvent.objects.exists()


def test_the_wrong_container_of_the_right_donation_blocks(donation, technician):
    (sample,), _ = labels_print(actor=technician, donation=donation, container_type=ContainerType.QC_SAMPLE)
    label_apply(actor=technician, label=sample)

    with pytest.raises(IdentityMismatch, match="Wrong container"):
        _scan(technician, donation, scan_of(donation, "QC-1"), step=CustodyStep.RECEIPT)
    assert not CustodyEvent.objects.exists()


def test_a_destroyed_label_blocks(donation, technician):
    label = Label.objects.get(donation=donation, container_code="AB-1")
    label_destroy(actor=technician, label=label, reason="Bag discarded after leak")

    with pytest.raises(IdentityMismatch, match="destroyed"):
        _scan(technician, donation, scan_of(donation, "AB-1"))


def test_a_label_never_recorded_as_applied_blocks(donation, technician):
    labels_print(actor=technician, donation=donation, container_type=ContainerType.QC_SAMPLE)

    with pytest.raises(IdentityMismatch, match="never recorded as applied"):
        _scan(technician, donation, scan_of(donation, "QC-1"), step=CustodyStep.QC_HANDOVER)


def test_a_label_never_printed_blocks(donation, technician):
    with pytest.raises(IdentityMismatch, match="No label AB-7"):
        _scan(technician, donation, scan_of(donation, "AB-7"))


def test_a_step_that_asks_for_the_temperature_needs_it(donation, technician):
    assert STEP_RULES[CustodyStep.TRANSPORT].asks_temperature

    with pytest.raises(InvalidInput, match="temperature"):
        _scan(technician, donation, scan_of(donation, "AB-1"), temperature_c=None)
    assert not CustodyEvent.objects.exists()


def test_a_step_without_temperature_records_none(donation, technician):
    event = _scan(technician, donation, scan_of(donation, "AB-1"), step=CustodyStep.COLLECTION, temperature_c=None)
    assert event.temperature_c is None


@pytest.mark.parametrize(("value", "message"), [(Decimal("400"), "not plausible"), ("warm", "number")])
def test_implausible_temperatures_are_refused(donation, technician, value, message):
    with pytest.raises(InvalidInput, match=message):
        _scan(technician, donation, scan_of(donation, "AB-1"), temperature_c=value)


def test_a_location_is_required(donation, technician):
    with pytest.raises(InvalidInput, match="Location"):
        _scan(technician, donation, scan_of(donation, "AB-1"), location="")


@pytest.mark.parametrize("persona", ["qp", "auditor", "site_admin"])
def test_people_not_handling_material_cannot_record_scans(donation, request, persona):
    with pytest.raises(PermissionRefused):
        _scan(request.getfixturevalue(persona), donation, scan_of(donation, "AB-1"))
    assert not AuditEvent.objects.filter(action=Action.BLOCKED).exists()


def test_an_expected_label_must_be_the_one_scanned(donation, technician):
    (second,), _ = labels_print(actor=technician, donation=donation, container_type=ContainerType.APHERESIS_BAG)
    label_apply(actor=technician, label=second)
    first = Label.objects.get(donation=donation, container_code="AB-1")

    with pytest.raises(IdentityMismatch, match="AB-1 was expected, AB-2 was scanned"):
        _scan(technician, donation, scan_of(donation, "AB-2"), label=first)


# -- through the page, as a scanner types ---------------------------------------------


def _scan_url(donation, step=CustodyStep.TRANSPORT):
    from django.urls import reverse

    return reverse("batches:custody_scan", args=[donation.pk, step])


def test_the_scan_page_is_one_autofocused_field_that_enter_submits(donation, technician, client_for):
    html = client_for(technician).get(_scan_url(donation, CustodyStep.COLLECTION)).content.decode()

    form = html[html.index('<form method="post" class="card scan-card"'):]
    form = form[: form.index("</form>")]
    inputs = [i for i in re.findall(r"<input [^>]*>", form) if 'type="hidden"' not in i]
    scan = [i for i in inputs if 'name="scanned_code"' in i]
    assert len(scan) == 1
    assert "autofocus" in scan[0]
    assert "data-enter-next" not in scan[0]  # Enter in the scan field submits the form
    assert 'type="submit"' in form


def test_another_patients_bag_scanned_on_the_page_shows_a_full_screen_block_and_changes_nothing(
    donation, other_patients_donation, technician, client_for
):
    client = client_for(technician)
    before = _state(donation)

    response = client.post(_scan_url(donation), {
        "temperature_c": "4.0", "location": "Ward 3", "scanned_code": scan_of(other_patients_donation, "AB-1") + "\r\n",
    })

    assert response.status_code == 409
    html = response.content.decode()
    overlay = html[html.index('<div class="scan-blocked"'):]
    assert 'role="alert"' in overlay[:300]
    assert "STOP" in overlay
    assert "Blocked: this is not the expected label" in overlay
    assert f"Expected</dt><dd>{donation.din_display}" in overlay
    assert f"Scanned</dt><dd>{other_patients_donation.din_display}" in overlay
    assert "I have read this" in overlay
    # The page behind cannot take the next scan until the block is acknowledged.
    assert '<div inert aria-hidden="true">' in html
    assert _state(donation) == before
    assert AuditEvent.objects.filter(action=Action.BLOCKED, root_id=str(donation.pk), actor=technician).count() == 1


def test_a_matching_scan_on_the_page_is_recorded_and_the_page_is_ready_for_the_next(
    donation, technician, client_for
):
    client = client_for(technician)

    response = client.post(_scan_url(donation), {"temperature_c": "5.5", "location": "Courier box 12",
                                                 "scanned_code": scan_of(donation, "AB-1")})

    assert response.status_code == 302
    assert response["Location"] == _scan_url(donation)
    event = CustodyEvent.objects.get()
    assert (event.location, event.temperature_c) == ("Courier box 12", Decimal("5.5"))
    again = client.get(_scan_url(donation)).content.decode()
    assert 'value="Courier box 12"' in again  # where this user scanned last time


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"temperature_c": "", "location": "Ward 3", "scanned_code": "x"}, "This field is required"),
        ({"temperature_c": "abc", "location": "Ward 3", "scanned_code": "x"}, "Enter a number"),
        ({"temperature_c": "4", "location": "W\x00", "scanned_code": "x"}, "Null characters are not allowed"),
        ({"temperature_c": "4", "location": "Ward 3", "scanned_code": "x" * 2000}, "at most 1000 characters"),
    ],
)
def test_bad_scan_page_input_is_a_form_error_not_a_crash(donation, technician, client_for, data, message):
    response = client_for(technician).post(_scan_url(donation), data)
    assert response.status_code == 200
    assert message in response.content.decode()
    assert not CustodyEvent.objects.exists()


def test_an_unknown_step_is_a_404(donation, technician, client_for):
    assert client_for(technician).get(_scan_url(donation, "teleport")).status_code == 404


def test_a_refusal_records_expected_and_scanned_din_and_patient_as_structured_fields(
    donation, other_patients_donation, technician
):
    with pytest.raises(IdentityMismatch):
        _scan(technician, donation, scan_of(other_patients_donation, "AB-1"))

    ours = AuditEvent.objects.get(action=Action.BLOCKED, root_id=str(donation.pk))
    theirs = AuditEvent.objects.get(action=Action.BLOCKED, root_id=str(other_patients_donation.pk))
    identities = {"expected_din": donation.din, "expected_patient": donation.order.patient.pseudonym,
                  "scanned_din": other_patients_donation.din,
                  "scanned_patient": other_patients_donation.order.patient.pseudonym}
    assert {k: ours.changes[k] for k in identities} == identities
    assert {k: theirs.changes[k] for k in identities} == identities


def test_only_the_other_patients_record_carries_where_its_label_turned_up(donation, other_patients_donation, technician):
    with pytest.raises(IdentityMismatch):
        _scan(technician, donation, scan_of(other_patients_donation, "AB-1"))

    ours = AuditEvent.objects.get(action=Action.BLOCKED, root_id=str(donation.pk))
    theirs = AuditEvent.objects.get(action=Action.BLOCKED, root_id=str(other_patients_donation.pk))
    assert SEEN_AT_OTHER_HANDOVER not in ours.changes
    assert theirs.changes[SEEN_AT_OTHER_HANDOVER] == {"din": donation.din,
                                                      "patient": donation.order.patient.pseudonym}


def test_a_refusal_of_a_readable_scan_of_this_donation_names_its_din_as_scanned(donation, technician):
    with pytest.raises(IdentityMismatch):
        _scan(technician, donation, scan_of(donation, "AB-9"))

    ours = AuditEvent.objects.get(action=Action.BLOCKED, root_id=str(donation.pk))
    assert (ours.changes["scanned_din"], ours.changes["scanned_patient"]) == (donation.din,
                                                                              donation.order.patient.pseudonym)


def test_an_unreadable_scan_names_no_din_and_no_patient(donation, technician):
    with pytest.raises(IdentityMismatch):
        _scan(technician, donation, "garbage")

    ours = AuditEvent.objects.get(action=Action.BLOCKED, root_id=str(donation.pk))
    assert (ours.changes["scanned_din"], ours.changes["scanned_patient"]) == ("", "")
