"""Patients, orders and the DIN of each collection: the services."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from batches.isbt128 import check_character, parse_din
from batches.models import Donation, OrderStatus, Patient
from batches.services.patients import (
    donation_register,
    order_update,
    patient_update,
    site_today,
)
from carmfg.audit.models import Action, AuditEvent
from carmfg.exceptions import (
    InvalidInput,
    InvalidTransition,
    PermissionRefused,
    ReasonRequired,
    StaleRecord,
)
from tests.batches.coi_steps import a_patient, an_order


def test_a_patient_gets_a_generated_pseudonym_short_enough_for_the_label(site, coordinator):
    first = a_patient(coordinator, site, n=1)
    second = a_patient(coordinator, site, n=2)

    year = site_today(site).year
    assert first.pseudonym == f"PT-{year}-0001"
    assert second.pseudonym == f"PT-{year}-0002"
    assert len(first.pseudonym) <= 16


def test_registering_a_patient_is_audited_with_its_values(site, coordinator):
    patient = a_patient(coordinator, site)

    event = AuditEvent.objects.get(object_type="batches.patient", object_id=str(patient.pk))
    assert event.action == Action.CREATE
    assert event.actor == coordinator
    assert event.changes["hospital_record_number"] == "HRN-00001"


@pytest.mark.parametrize("persona", ["technician", "qp", "auditor", "site_admin"])
def test_only_coordinators_register_patients(persona, request, site):
    with pytest.raises(PermissionRefused):
        a_patient(request.getfixturevalue(persona), site)
    assert not Patient.objects.exists()


def test_a_hospital_record_number_is_registered_once_per_site(site, coordinator):
    first = a_patient(coordinator, site, n=1)

    with pytest.raises(InvalidInput, match=first.pseudonym):
        a_patient(coordinator, site, n=2, hospital_record_number=first.hospital_record_number)


def test_a_wristband_code_names_one_patient_only(site, coordinator):
    first = a_patient(coordinator, site, n=1)

    with pytest.raises(InvalidInput, match="wristband"):
        a_patient(coordinator, site, n=2, wristband_code=first.wristband_code)


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("initials", "", "required"),
        ("initials", "1AB", "starting with a letter"),
        ("initials", "ABCDE", "at most 4"),
        ("initials", "A\x00", "NUL"),
        ("birth_year", 1850, "between 1900"),
        ("birth_year", "1968", "expected a year"),
        ("weight_kg", Decimal("0"), "between"),
        ("weight_kg", Decimal("NaN"), "between"),
        ("weight_kg", "heavy", "expected a number"),
        ("hospital_record_number", "HRN 1", "no spaces"),
        ("hospital_record_number", "H" * 65, "at most 64"),
        ("wristband_code", "WB\x1d01", "control characters"),
        ("weight_measured_on", dt.date(2999, 1, 1), "future"),
    ],
)
def test_patient_values_are_checked_by_the_server(site, coordinator, field, value, message):
    with pytest.raises(InvalidInput, match=message) as excinfo:
        a_patient(coordinator, site, **{field: value})
    assert excinfo.value.field is not None
    assert not Patient.objects.exists()


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(text=st.text(max_size=80))
def test_any_text_as_initials_is_stored_clean_or_refused_clearly(site, coordinator, text):
    try:
        patient = a_patient(coordinator, site, n=Patient.objects.count() + 1, initials=text)
    except InvalidInput as exc:
        error = exc
    else:
        assert patient.initials == text.strip().upper()
        assert len(patient.initials) <= 4
        return
    assert error.field == "initials"


def test_a_patient_change_needs_a_reason(site, coordinator):
    patient = a_patient(coordinator, site)

    with pytest.raises((InvalidInput, ReasonRequired)):
        patient_update(actor=coordinator, patient=patient, reason="  ", expected_version=1, weight_kg=Decimal("70"))
    patient.refresh_from_db()
    assert patient.weight_kg == Decimal("72.5")


def test_a_patient_change_is_audited_old_and_new_with_its_reason(site, coordinator):
    patient = a_patient(coordinator, site)

    patient_update(actor=coordinator, patient=patient, reason="Weighed again before collection", expected_version=1,
                   weight_kg=Decimal("70.1"), weight_measured_on=site_today(site))

    patient.refresh_from_db()
    assert patient.weight_kg == Decimal("70.1")
    assert patient.version == 2
    event = AuditEvent.objects.filter(object_id=str(patient.pk), action=Action.UPDATE).get()
    assert event.changes["weight_kg"] == {"old": "72.5", "new": "70.1"}
    assert event.reason == "Weighed again before collection"


def test_a_stale_patient_form_changes_nothing(site, coordinator):
    patient = a_patient(coordinator, site)
    patient_update(actor=coordinator, patient=patient, reason="first", expected_version=1, initials="C.D.")

    with pytest.raises(StaleRecord, match="changed since you opened it"):
        patient_update(actor=coordinator, patient=patient, reason="second", expected_version=1, initials="E.F.")

    patient.refresh_from_db()
    assert patient.initials == "C.D."
    assert patient.version == 2


def test_an_order_number_is_gap_free_per_site(site, coordinator, product):
    patient = a_patient(coordinator, site)

    first = an_order(coordinator, patient, product)
    second = an_order(coordinator, patient, product)

    assert first.number.endswith("-0001")
    assert second.number.endswith("-0002")
    assert first.number.startswith("ORD-HOME-")
    assert first.status == OrderStatus.REGISTERED


def test_an_order_cannot_name_another_sites_product(site, coordinator, other_product):
    patient = a_patient(coordinator, site)

    with pytest.raises(InvalidInput, match="product of this site"):
        an_order(coordinator, patient, other_product)


def test_an_infusion_cannot_be_planned_before_the_collection(site, coordinator, product):
    patient = a_patient(coordinator, site)
    today = site_today(site)

    with pytest.raises(InvalidInput, match="before the planned collection"):
        an_order(coordinator, patient, product, planned_infusion_date=today - dt.timedelta(days=1))


def test_an_order_change_needs_a_reason_and_the_current_version(site, coordinator, product):
    order = an_order(coordinator, a_patient(coordinator, site), product)

    with pytest.raises(StaleRecord):
        order_update(actor=coordinator, order=order, reason="dose corrected", expected_version=7,
                     target_dose_cells_per_kg=Decimal("2000000"))
    order_update(actor=coordinator, order=order, reason="dose corrected", expected_version=1,
                 target_dose_cells_per_kg=Decimal("2000000"))

    order.refresh_from_db()
    assert order.target_dose_cells_per_kg == Decimal("2000000")
    event = AuditEvent.objects.get(object_type="batches.order", object_id=str(order.pk), action=Action.UPDATE)
    assert event.reason == "dose corrected"


# -- the donation identification number --------------------------------------------


def test_registering_the_collection_issues_the_sites_next_din_with_its_check_character(site, coordinator, product):
    patient = a_patient(coordinator, site)
    first = donation_register(actor=coordinator, order=an_order(coordinator, patient, product))
    second = donation_register(actor=coordinator, order=an_order(coordinator, patient, product))

    year = site_today(site).year % 100
    assert first.din == f"W0001{year:02d}000001"
    assert second.din == f"W0001{year:02d}000002"
    assert first.check_character == check_character(first.din)
    assert parse_din(first.din + first.check_character).din13 == first.din
    assert first.order.status == OrderStatus.COLLECTED
    assert AuditEvent.objects.filter(object_type="batches.donation", object_id=str(first.pk),
                                     action=Action.CREATE).exists()


def test_dins_are_numbered_per_facility(site, other_site, coordinator, product, other_product, make_user):
    from carmfg.accounts.models import Role

    away = make_user("away-coord", roles=[Role.COORDINATOR], site=other_site)
    home = donation_register(actor=coordinator, order=an_order(coordinator, a_patient(coordinator, site), product))
    other = donation_register(actor=away, order=an_order(away, a_patient(away, other_site), other_product))

    assert home.din.startswith("W0001")
    assert other.din.startswith("E0002")
    assert home.din[7:] == other.din[7:] == "000001"


def test_an_order_has_one_collection(site, coordinator, product):
    order = an_order(coordinator, a_patient(coordinator, site), product)
    donation_register(actor=coordinator, order=order)

    with pytest.raises(InvalidTransition, match="already registered"):
        donation_register(actor=coordinator, order=order)
    assert Donation.objects.count() == 1


def test_a_technician_cannot_register_a_collection(site, coordinator, technician, product):
    order = an_order(coordinator, a_patient(coordinator, site), product)

    with pytest.raises(PermissionRefused):
        donation_register(actor=technician, order=order)
    assert not Donation.objects.exists()
