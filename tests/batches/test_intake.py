"""Apheresis intake: criteria evaluated by the server; a batch only for accepted
material, pinned to the effective MBR; outside criteria only with a QP's signature."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from django.utils import timezone

from batches.exceptions import IdentityMismatch, NotReady
from batches.models import (
    ApheresisIntake,
    Batch,
    BatchFailureReason,
    BatchState,
    CustodyEvent,
    CustodyStep,
    Deviation,
    DeviationSource,
    IntakeCriteria,
    IntakeOutcome,
    MasterBatchRecord,
    MbrStatus,
    OrderStatus,
)
from batches.services.intake import intake_accept_with_deviation, intake_reject
from carmfg.audit.models import Action, AuditEvent
from carmfg.esign.exceptions import SignatureRefused
from carmfg.esign.models import Meaning
from carmfg.esign.selectors import signatures_for_record
from carmfg.exceptions import InvalidInput, InvalidTransition, PermissionRefused, StaleRecord
from tests.batches.coi_steps import a_collection, a_patient, an_intake, scan_of
from tests.conftest import PASSWORD


@pytest.fixture
def donation(site, coordinator, product):
    return a_collection(coordinator, a_patient(coordinator, site, n=1), product)


@pytest.fixture
def cold_intake(donation, technician):
    """Outside criteria: 11 °C in transport."""
    return an_intake(technician, donation, transport_temperature_c=Decimal("11"))


def test_intake_within_criteria_is_accepted_and_creates_a_batch_pinned_to_the_effective_mbr(
    donation, technician, small_mbr
):
    intake = an_intake(technician, donation)

    assert intake.outcome == IntakeOutcome.ACCEPTED
    assert intake.meets_criteria
    batch = Batch.objects.get(donation=donation)
    assert batch.mbr == small_mbr
    assert batch.state == BatchState.PLANNED
    assert batch.order == donation.order
    assert batch.number.startswith("B-HOME-")
    donation.order.refresh_from_db()
    assert donation.order.status == OrderStatus.IN_MANUFACTURING
    created = AuditEvent.objects.get(object_type="batches.batch", object_id=str(batch.pk), action=Action.CREATE)
    assert created.changes["mbr"]["version"] == small_mbr.version


def test_a_batch_stays_pinned_to_its_mbr_version_when_a_new_version_becomes_effective(
    donation, technician, small_mbr, product
):
    an_intake(technician, donation)
    small_mbr.status = MbrStatus.SUPERSEDED
    small_mbr.save()
    MasterBatchRecord.objects.create(site=product.site, product=product, version=2, title="v2",
                                     status=MbrStatus.EFFECTIVE, effective_at=timezone.now())

    assert Batch.objects.get(donation=donation).mbr.version == 1


def test_without_an_effective_mbr_the_intake_is_refused_and_nothing_is_recorded(donation, technician):
    with pytest.raises(NotReady, match="No master batch record"):
        an_intake(technician, donation)

    assert not ApheresisIntake.objects.exists()
    assert not Batch.objects.exists()
    assert not CustodyEvent.objects.filter(step=CustodyStep.RECEIPT).exists()


def test_each_criterion_is_evaluated_by_the_server_and_stored(cold_intake):
    evaluation = cold_intake.evaluation

    assert evaluation["transport_temperature_c"]["met"] is False
    assert evaluation["cd3_cells_total"]["met"] is True
    assert evaluation["cd3_cells_total"]["limit"] == "≥ 1 × 10⁹"
    assert evaluation["cd3_cells_total"]["value"] == "3.2 × 10⁹"
    assert evaluation["hours_collection_to_receipt"]["met"] is True
    assert evaluation["bag_intact"]["met"] is True
    assert cold_intake.meets_criteria is False
    assert cold_intake.outcome == IntakeOutcome.PENDING


@pytest.mark.parametrize(
    ("overrides", "criterion"),
    [
        ({"cd3_cells_total": Decimal("0.9e9")}, "cd3_cells_total"),
        ({"transport_temperature_c": Decimal("1.9")}, "transport_temperature_c"),
        ({"collection_started_at": timezone.now() - dt.timedelta(hours=33),
          "collection_ended_at": timezone.now() - dt.timedelta(hours=30)}, "hours_collection_to_receipt"),
        ({"bag_intact": False}, "bag_intact"),
    ],
)
def test_intake_outside_any_criterion_creates_no_batch(donation, technician, small_mbr, overrides, criterion):
    intake = an_intake(technician, donation, **overrides)

    assert intake.evaluation[criterion]["met"] is False
    assert intake.outcome == IntakeOutcome.PENDING
    assert not Batch.objects.exists()


def test_criteria_are_configurable_per_site_and_product(donation, technician, product, site, small_mbr):
    IntakeCriteria.objects.create(site=site, product=product, min_cd3_cells=Decimal("5e9"))

    intake = an_intake(technician, donation)

    assert intake.evaluation["cd3_cells_total"]["met"] is False


def test_outside_criteria_cannot_be_accepted_by_the_technician(cold_intake, technician, small_mbr):
    with pytest.raises(PermissionRefused):
        intake_accept_with_deviation(actor=technician, intake=cold_intake, password=PASSWORD,
                                     reason="Looks fine", expected_version=1)
    assert not Batch.objects.exists()


def test_outside_criteria_cannot_be_accepted_without_the_qps_password(cold_intake, qp, small_mbr):
    with pytest.raises(SignatureRefused):
        intake_accept_with_deviation(actor=qp, intake=cold_intake, password="wrong",
                                     reason="Cells viable, patient has no other option", expected_version=1)
    cold_intake.refresh_from_db()
    assert cold_intake.outcome == IntakeOutcome.PENDING
    assert not Batch.objects.exists()
    assert not Deviation.objects.exists()


def test_outside_criteria_cannot_be_accepted_without_a_reason(cold_intake, qp, small_mbr):
    with pytest.raises(InvalidInput, match="required"):
        intake_accept_with_deviation(actor=qp, intake=cold_intake, password=PASSWORD, reason="",
                                     expected_version=1)
    assert not Batch.objects.exists()


def test_a_qp_signed_acceptance_with_deviation_raises_an_intake_deviation_and_creates_the_batch(
    cold_intake, qp, small_mbr
):
    intake = intake_accept_with_deviation(actor=qp, intake=cold_intake, password=PASSWORD,
                                          reason="11 °C for < 1 h; viability 96 %; no alternative",
                                          expected_version=1)

    assert intake.outcome == IntakeOutcome.ACCEPTED_WITH_DEVIATION
    deviation = Deviation.objects.get()
    assert deviation.source == DeviationSource.INTAKE
    assert "Transport temperature 11.0 °C" in deviation.description
    batch = Batch.objects.get()
    assert deviation.batch == batch
    assert batch.mbr == small_mbr
    [signature] = signatures_for_record(intake)
    assert signature.signature.meaning == Meaning.APPROVED
    assert signature.signature.signer == qp
    assert signature.is_valid


def test_a_qp_rejection_is_signed_and_the_order_fails_countably(cold_intake, qp):
    intake = intake_reject(actor=qp, intake=cold_intake, password=PASSWORD,
                           reason="Bag at 11 °C for 6 h", expected_version=1)

    assert intake.outcome == IntakeOutcome.REJECTED
    order = intake.donation.order
    order.refresh_from_db()
    assert order.status == OrderStatus.FAILED
    assert order.failure_reason == BatchFailureReason.APHERESIS_REJECTED
    [signature] = signatures_for_record(intake)
    assert signature.signature.meaning == Meaning.REJECTED
    assert not Batch.objects.exists()


def test_a_decided_intake_cannot_be_decided_again(cold_intake, qp, small_mbr):
    intake_reject(actor=qp, intake=cold_intake, password=PASSWORD, reason="Too warm", expected_version=1)

    with pytest.raises((InvalidTransition, StaleRecord)):
        intake_accept_with_deviation(actor=qp, intake=cold_intake, password=PASSWORD, reason="Changed my mind",
                                     expected_version=2)
    assert not Batch.objects.exists()


def test_a_decision_on_a_stale_page_changes_nothing(cold_intake, qp, small_mbr):
    with pytest.raises(StaleRecord):
        intake_reject(actor=qp, intake=cold_intake, password=PASSWORD, reason="Too warm", expected_version=0)
    cold_intake.refresh_from_db()
    assert cold_intake.outcome == IntakeOutcome.PENDING


def test_an_intake_within_criteria_needs_no_decision(donation, technician, qp, small_mbr):
    intake = an_intake(technician, donation)

    with pytest.raises(InvalidTransition, match="already decided"):
        intake_reject(actor=qp, intake=intake, password=PASSWORD, reason="?", expected_version=1)


# -- times and values checked by the server ------------------------------------------


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"collection_ended_at": timezone.now() - dt.timedelta(hours=8)}, "collection_ended_at"),
        ({"received_at": timezone.now() - dt.timedelta(hours=5)}, "received_at"),
        ({"received_at": timezone.now() + dt.timedelta(minutes=30)}, "received_at"),
        ({"collection_started_at": timezone.now() - dt.timedelta(hours=30)}, "collection_ended_at"),
        ({"received_at": dt.datetime(2026, 1, 1, 12, 0)}, "received_at"),  # noqa: DTZ001  (naive on purpose)
        ({"volume_ml": Decimal("0")}, "volume_ml"),
        ({"cd3_cells_total": Decimal("-1")}, "cd3_cells_total"),
        ({"wbc_10e3_per_ul": "lots"}, "wbc_10e3_per_ul"),
        ({"transport_temperature_c": Decimal("99")}, "transport_temperature_c"),
        ({"bag_intact": "yes"}, "bag_intact"),
    ],
)
def test_inconsistent_times_and_implausible_values_are_refused(donation, technician, small_mbr, overrides, field):
    with pytest.raises(InvalidInput) as excinfo:
        an_intake(technician, donation, **overrides)
    assert excinfo.value.field == field
    assert not ApheresisIntake.objects.exists()


def test_a_receipt_within_the_clock_tolerance_is_accepted(donation, technician, small_mbr):
    intake = an_intake(technician, donation, received_at=timezone.now() + dt.timedelta(seconds=60))
    assert intake.outcome == IntakeOutcome.ACCEPTED


def test_the_intake_scan_of_another_patients_bag_blocks_and_is_audited(donation, technician, coordinator, site,
                                                                       product, small_mbr):
    other = a_collection(coordinator, a_patient(coordinator, site, n=2), product)

    with pytest.raises(IdentityMismatch):
        an_intake(technician, donation, label_scanned_code=scan_of(other, "AB-1"))

    assert not ApheresisIntake.objects.exists()
    assert not Batch.objects.exists()
    blocked = AuditEvent.objects.get(action=Action.BLOCKED, root_id=str(donation.pk))
    assert blocked.changes["context"] == "apheresis intake"


def test_an_accepted_intake_records_the_receipt_in_the_chain_of_custody(donation, technician, small_mbr):
    intake = an_intake(technician, donation)

    receipt = CustodyEvent.objects.get(donation=donation, step=CustodyStep.RECEIPT)
    assert receipt.label is not None
    assert receipt.label.container_code == "AB-1"
    assert receipt.temperature_c == intake.transport_temperature_c
    assert receipt.performed_by == technician


def test_intake_is_recorded_once(donation, technician, small_mbr):
    an_intake(technician, donation)
    with pytest.raises(InvalidTransition, match="already recorded"):
        an_intake(technician, donation)


def test_a_coordinator_does_not_record_intake(donation, coordinator, small_mbr):
    with pytest.raises(PermissionRefused):
        an_intake(coordinator, donation)


# -- through the pages --------------------------------------------------------------


def _post_data(donation, **overrides) -> dict:
    site = donation.site
    now = timezone.now().astimezone(site.zone).replace(second=0, microsecond=0)
    data = {
        "collection_started_at": (now - dt.timedelta(hours=6)).strftime("%Y-%m-%dT%H:%M"),
        "collection_ended_at": (now - dt.timedelta(hours=3)).strftime("%Y-%m-%dT%H:%M"),
        "received_at": (now - dt.timedelta(minutes=30)).strftime("%Y-%m-%dT%H:%M"),
        "transport_temperature_c": "5.0", "volume_ml": "240", "wbc_10e3_per_ul": "41.2",
        "cd3_cells_total": "2.9e9", "bag_intact": "yes", "label_scanned_code": scan_of(donation, "AB-1"),
    }
    data.update(overrides)
    return data


def _intake_url(donation):
    from django.urls import reverse

    return reverse("batches:intake_record", args=[donation.pk])


def test_the_intake_form_accepts_within_criteria_and_shows_the_batch(donation, technician, small_mbr, client_for):
    client = client_for(technician)

    response = client.post(_intake_url(donation), _post_data(donation), follow=True)

    html = response.content.decode()
    batch = Batch.objects.get()
    assert "Within all acceptance criteria" in html
    assert batch.number in html
    assert f"{small_mbr.title} v{small_mbr.version}" in html


def test_the_intake_form_without_an_effective_mbr_keeps_what_was_typed_and_says_why(donation, technician, client_for):
    response = client_for(technician).post(_intake_url(donation), _post_data(donation))

    html = response.content.decode()
    assert response.status_code == 200
    assert "No master batch record" in html
    assert 'value="240"' in html
    assert not ApheresisIntake.objects.exists()


def test_the_intake_form_blocks_another_patients_bag_full_screen(donation, technician, coordinator, site, product,
                                                                 small_mbr, client_for):
    other = a_collection(coordinator, a_patient(coordinator, site, n=2), product)

    response = client_for(technician).post(_intake_url(donation),
                                           _post_data(donation, label_scanned_code=scan_of(other, "AB-1")))

    assert response.status_code == 409
    assert 'class="scan-blocked" role="alert"' in response.content.decode()
    assert not ApheresisIntake.objects.exists()
    assert AuditEvent.objects.filter(action=Action.BLOCKED, root_id=str(donation.pk)).exists()


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"received_at": "yesterday"}, "Enter a valid date/time"),
        ({"cd3_cells_total": "lots"}, "Enter a number"),
        ({"bag_intact": "maybe"}, "Select a valid choice"),
        ({"volume_ml": "1" * 5000}, "Ensure that there are no more than"),
        ({"transport_temperature_c": "4\x00"}, "Enter a number"),
    ],
)
def test_bad_intake_input_is_a_form_error(donation, technician, small_mbr, client_for, overrides, message):
    response = client_for(technician).post(_intake_url(donation), _post_data(donation, **overrides))
    assert response.status_code == 200
    assert message in response.content.decode()
    assert not ApheresisIntake.objects.exists()


def test_a_qp_signs_the_decision_on_the_intake_page(cold_intake, qp, small_mbr, client_for):
    from django.urls import reverse

    url = reverse("batches:intake_detail", args=[cold_intake.pk])
    client = client_for(qp)
    wrong = client.post(url, {"decision": "accept_with_deviation", "classification": "major",
                              "reason": "Short excursion", "password": "nope", "version": "1"})
    right = client.post(url, {"decision": "accept_with_deviation", "classification": "major",
                              "reason": "Short excursion", "password": PASSWORD, "version": "1"}, follow=True)

    assert "signature was refused" in wrong.content.decode()
    html = right.content.decode()
    assert "Accepted with deviation" in html
    assert Deviation.objects.get().number in html
    assert "Approved" in html  # the signature's meaning, with name and time


def test_the_technician_sees_no_decision_form(cold_intake, technician, client_for):
    from django.urls import reverse

    html = client_for(technician).get(reverse("batches:intake_detail", args=[cold_intake.pk])).content.decode()
    assert 'name="password"' not in html
    assert "A qualified person must accept it" in html
