"""Correcting an apheresis intake after it was recorded: the original value is kept, the
correction has a reason and the corrector's signature, the criteria are evaluated again
and never silently; identity is never corrected; certified records are not touched."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from django.urls import reverse
from django.utils import timezone
from hypothesis import given, settings
from hypothesis import strategies as st

from batches.models import (
    ApheresisIntake,
    Batch,
    BatchState,
    Deviation,
    DeviationClass,
    DeviationSource,
    IntakeCorrection,
    IntakeCriteria,
    IntakeOutcome,
)
from batches.services.deviations import open_blocking_deviations
from batches.services.intake import intake_accept_with_deviation, intake_reject
from batches.services.intake_correction import (
    CORRECTABLE_FIELDS,
    IdentityNotCorrectable,
    intake_correct,
)
from batches.services.transitions import batch_transition
from carmfg.audit.models import Action, AuditEvent
from carmfg.esign.exceptions import SignatureRefused
from carmfg.esign.models import Meaning, Signature
from carmfg.exceptions import (
    GMPError,
    InvalidInput,
    InvalidTransition,
    PermissionRefused,
    ReasonRequired,
    StaleRecord,
)
from tests.batches.coi_steps import a_collection, a_patient, an_intake, released
from tests.conftest import PASSWORD, assert_hidden

REASON = "Typing error: 205 mL written as 250 mL (bag weighed again)"


@pytest.fixture
def donation(site, coordinator, product):
    return a_collection(coordinator, a_patient(coordinator, site, n=1), product)


@pytest.fixture
def intake(donation, technician, small_mbr):
    """Accepted within criteria; its batch is planned."""
    return an_intake(technician, donation)


@pytest.fixture
def cold_intake(donation, technician):
    """Outside criteria (11 °C in transport): pending, waiting for a QP."""
    return an_intake(technician, donation, transport_temperature_c=Decimal("11"))


def correct(actor, intake, *, reason=REASON, password=PASSWORD, version=None, **changes):
    return intake_correct(actor=actor, intake=intake, changes=changes, reason=reason, password=password,
                          expected_version=intake.version if version is None else version)


def snapshot(intake) -> dict:
    row = ApheresisIntake.objects.get(pk=intake.pk)
    return {**row.signable_content(), "evaluation": row.evaluation, "version": row.version,
            "meets": row.meets_criteria, "deviation": row.deviation_id}


# -- the correction itself ------------------------------------------------------------------


def test_a_transcription_error_is_corrected_and_the_original_value_stays_visible(intake, technician):
    correction = correct(technician, intake, volume_ml=Decimal("205"))

    intake.refresh_from_db()
    assert intake.volume_ml == Decimal("205.0")
    assert intake.version == 2
    assert intake.outcome == IntakeOutcome.ACCEPTED
    assert correction.sequence == 1
    assert correction.changes == {"volume_ml": {"old": "250.0", "new": "205.0"}}
    assert correction.reason == REASON
    assert correction.corrected_by == technician
    assert correction.outcome_before == correction.outcome_after == IntakeOutcome.ACCEPTED
    assert correction.deviation is None


def test_the_correction_is_signed_by_the_corrector(intake, technician):
    correction = correct(technician, intake, volume_ml=Decimal("205"))

    [signature] = Signature.objects.filter(object_id=str(correction.pk), content_type__model="intakecorrection")
    assert signature.signer == technician
    assert signature.meaning == Meaning.PERFORMED
    assert signature.voided_at is None
    assert REASON in signature.comment


def test_the_audit_event_keeps_old_and_new_values_and_the_reason(intake, technician):
    correct(technician, intake, volume_ml=Decimal("205"), wbc_10e3_per_ul=Decimal("54.5"))

    event = AuditEvent.objects.get(action=Action.UPDATE, object_type="batches.apheresisintake",
                                   object_id=str(intake.pk))
    assert event.reason == REASON
    assert event.changes["volume_ml"] == {"old": "250.0", "new": "205.0"}
    assert event.changes["wbc_10e3_per_ul"] == {"old": "45.50", "new": "54.50"}
    assert event.changes["correction"] == 1
    assert event.actor_id == technician.pk
    created = AuditEvent.objects.get(action=Action.CREATE, object_type="batches.intakecorrection")
    assert created.reason == REASON


def test_a_second_correction_is_numbered_after_the_first(intake, technician):
    correct(technician, intake, volume_ml=Decimal("205"))
    intake.refresh_from_db()
    second = correct(technician, intake, volume_ml=Decimal("210"), reason="Weighed a third time")

    assert second.sequence == 2
    assert second.changes["volume_ml"] == {"old": "205.0", "new": "210.0"}


def test_a_correction_that_changes_nothing_is_refused(intake, technician):
    with pytest.raises(InvalidInput, match="Nothing changed"):
        correct(technician, intake, volume_ml=Decimal("250.0"))
    assert not IntakeCorrection.objects.exists()


# -- the outcome never changes silently --------------------------------------------------------


def test_a_correction_that_makes_accepted_material_fail_raises_a_major_deviation_that_blocks_release(
    intake, technician
):
    correction = correct(technician, intake, transport_temperature_c=Decimal("9.5"),
                         reason="Thermometer read 9.5 °C, written as 5.9 °C")

    intake.refresh_from_db()
    assert intake.outcome == IntakeOutcome.ACCEPTED_WITH_DEVIATION
    assert intake.meets_criteria is False
    assert intake.evaluation["transport_temperature_c"]["met"] is False
    deviation = correction.deviation
    assert deviation is not None
    assert deviation.source == DeviationSource.INTAKE
    assert deviation.classification == DeviationClass.MAJOR
    batch = Batch.objects.get(donation=intake.donation)
    assert deviation.batch == batch
    assert intake.deviation == deviation
    assert "Transport temperature 9.5 °C" in deviation.description
    assert open_blocking_deviations(batch) == [deviation]
    assert correction.outcome_before == IntakeOutcome.ACCEPTED
    assert correction.outcome_after == IntakeOutcome.ACCEPTED_WITH_DEVIATION
    event = AuditEvent.objects.get(action=Action.UPDATE, object_type="batches.apheresisintake")
    assert event.changes["outcome"] == {"old": IntakeOutcome.ACCEPTED, "new": IntakeOutcome.ACCEPTED_WITH_DEVIATION}
    assert event.changes["meets_criteria"] == {"old": True, "new": False}


def test_a_correction_within_criteria_raises_no_deviation(intake, technician):
    correct(technician, intake, transport_temperature_c=Decimal("6.5"))

    assert not Deviation.objects.exists()


def test_a_pending_intake_stays_for_the_qp_to_decide_even_when_the_corrected_values_meet_the_criteria(
    cold_intake, technician
):
    correct(technician, cold_intake, transport_temperature_c=Decimal("1.1") + Decimal("3"),
            reason="Typing error: 4.1 °C written as 11 °C")

    cold_intake.refresh_from_db()
    assert cold_intake.outcome == IntakeOutcome.PENDING
    assert cold_intake.meets_criteria is True
    assert not Batch.objects.exists()
    assert not Deviation.objects.exists()


# -- identity is not a typing error -------------------------------------------------------------


@pytest.mark.parametrize("field", ["din", "label_scanned_code", "patient", "donation"])
def test_identity_fields_cannot_be_corrected(intake, technician, field):
    before = snapshot(intake)

    with pytest.raises(IdentityNotCorrectable, match="chain-of-identity event"):
        correct(technician, intake, **{field: "W000126000099"}, volume_ml=Decimal("205"))

    assert snapshot(intake) == before
    assert not IntakeCorrection.objects.exists()


def test_an_unknown_field_is_refused(intake, technician):
    with pytest.raises(InvalidInput, match="cannot be corrected: recorded_by"):
        correct(technician, intake, recorded_by=1)


# -- reason, signature, stale form, bad input: nothing changes -----------------------------------


@pytest.mark.parametrize("reason", ["", "   ", None])
def test_a_correction_needs_a_reason(intake, technician, reason):
    before = snapshot(intake)
    with pytest.raises(ReasonRequired):
        correct(technician, intake, reason=reason, volume_ml=Decimal("205"))
    assert snapshot(intake) == before


def test_a_wrong_password_changes_nothing_and_the_refusal_is_audited(intake, technician):
    before = snapshot(intake)
    with pytest.raises(SignatureRefused):
        correct(technician, intake, password="not-my-password", volume_ml=Decimal("205"))

    assert snapshot(intake) == before
    assert not IntakeCorrection.objects.exists()
    assert AuditEvent.objects.filter(action=Action.SIGN_REFUSED, actor=technician).exists()


def test_a_stale_form_changes_nothing(intake, technician):
    correct(technician, intake, volume_ml=Decimal("205"))
    before = snapshot(intake)

    with pytest.raises(StaleRecord, match="changed since you opened it"):
        correct(technician, intake, version=1, volume_ml=Decimal("220"))
    assert snapshot(intake) == before
    assert IntakeCorrection.objects.count() == 1


@pytest.mark.parametrize(
    ("changes", "reason", "field"),
    [
        ({"volume_ml": "lots"}, REASON, "volume_ml"),
        ({"volume_ml": 1.5}, REASON, "volume_ml"),
        ({"volume_ml": Decimal("0")}, REASON, "volume_ml"),
        ({"cd3_cells_total": "9" * 5000}, REASON, "cd3_cells_total"),
        ({"cd3_cells_total": Decimal("NaN")}, REASON, "cd3_cells_total"),
        ({"transport_temperature_c": Decimal("99")}, REASON, "transport_temperature_c"),
        ({"bag_intact": "no"}, REASON, "bag_intact"),
        ({"received_at": timezone.now() + dt.timedelta(hours=2)}, REASON, "received_at"),
        ({"received_at": dt.datetime(2026, 1, 1, 12, 0)}, REASON, "received_at"),  # noqa: DTZ001  (naive on purpose)
        ({"received_at": timezone.now() - dt.timedelta(hours=6)}, REASON, "received_at"),
        ({"volume_ml": Decimal("205")}, "typing\x00error", "Reason for the correction"),
        ({"volume_ml": Decimal("205")}, "x" * 5000, "Reason for the correction"),
        ({"volume_ml": Decimal("205")}, 42, "Reason for the correction"),
    ],
)
def test_bad_input_is_refused_with_a_clear_message_and_nothing_changes(intake, technician, changes, reason, field):
    before = snapshot(intake)

    with pytest.raises(InvalidInput) as excinfo:
        correct(technician, intake, reason=reason, **changes)

    assert excinfo.value.field == field
    assert excinfo.value.message
    assert snapshot(intake) == before
    assert not IntakeCorrection.objects.exists()


def test_changes_that_are_not_a_mapping_are_refused(intake, technician):
    with pytest.raises(InvalidInput, match="out of date"):
        intake_correct(actor=technician, intake=intake, changes=["volume_ml"],  # type: ignore[arg-type]
                       reason=REASON, password=PASSWORD, expected_version=1)


# -- who may correct ---------------------------------------------------------------------------


@pytest.mark.parametrize("persona", ["qp", "coordinator", "auditor", "qc_analyst", "other_site_user"])
def test_only_those_who_record_intakes_at_the_site_may_correct_them(intake, persona, request):
    actor = request.getfixturevalue(persona)
    before = snapshot(intake)

    with pytest.raises(PermissionRefused):
        correct(actor, intake, volume_ml=Decimal("205"))
    assert snapshot(intake) == before


def test_another_technician_of_the_site_may_correct(intake, verifier):
    correction = correct(verifier, intake, volume_ml=Decimal("205"))
    assert correction.corrected_by == verifier


# -- when corrections stop ---------------------------------------------------------------------


@pytest.mark.parametrize("state", [BatchState.PROVISIONALLY_RELEASED, BatchState.RELEASED])
def test_once_the_batch_is_certified_the_intake_cannot_be_corrected(intake, technician, qp, state):
    batch = Batch.objects.get(donation=intake.donation)
    released(batch, qp, to=state)
    before = snapshot(intake)

    with pytest.raises(InvalidTransition, match="certified or closed"):
        correct(technician, intake, volume_ml=Decimal("205"))
    assert snapshot(intake) == before


def test_on_hold_after_a_provisional_release_the_intake_cannot_be_corrected(intake, technician, qp):
    batch = released(Batch.objects.get(donation=intake.donation), qp)
    batch_transition(actor=qp, batch=batch, to_state=BatchState.ON_HOLD, reason="test: late result")

    with pytest.raises(InvalidTransition, match="certified or closed"):
        correct(technician, intake, volume_ml=Decimal("205"))


def test_a_cancelled_batch_closes_the_intake_to_corrections(intake, technician, qp):
    batch_transition(actor=qp, batch=Batch.objects.get(donation=intake.donation), to_state=BatchState.CANCELLED,
                     reason="test: patient withdrew")

    with pytest.raises(InvalidTransition):
        correct(technician, intake, volume_ml=Decimal("205"))


def test_while_the_batch_awaits_release_the_intake_can_still_be_corrected(intake, technician, qp):
    batch = Batch.objects.get(donation=intake.donation)
    for state in (BatchState.IN_PROCESS, BatchState.AWAITING_RELEASE):
        batch = batch_transition(actor=qp, batch=batch, to_state=state, reason="test: batch made")

    assert correct(technician, intake, volume_ml=Decimal("205")).sequence == 1


def test_a_qp_signed_acceptance_with_deviation_cannot_be_corrected_here(cold_intake, technician, qp, small_mbr):
    intake_accept_with_deviation(actor=qp, intake=cold_intake, password=PASSWORD, reason="No alternative",
                                 expected_version=1)
    cold_intake.refresh_from_db()
    before = snapshot(cold_intake)

    with pytest.raises(InvalidTransition, match="A QP signed the decision"):
        correct(technician, cold_intake, transport_temperature_c=Decimal("5"))
    assert snapshot(cold_intake) == before


def test_a_rejected_intake_cannot_be_corrected(cold_intake, technician, qp):
    intake_reject(actor=qp, intake=cold_intake, password=PASSWORD, reason="Too warm", expected_version=1)
    cold_intake.refresh_from_db()

    with pytest.raises(InvalidTransition):
        correct(technician, cold_intake, transport_temperature_c=Decimal("5"))


def test_a_correction_is_not_judged_against_criteria_changed_since_the_intake(intake, technician, site, product):
    IntakeCriteria.objects.create(site=site, product=product, max_temperature_c=Decimal("10"))
    before = snapshot(intake)

    with pytest.raises(InvalidTransition, match="criteria of .* changed"):
        correct(technician, intake, transport_temperature_c=Decimal("9.5"))
    assert snapshot(intake) == before


# -- the page ----------------------------------------------------------------------------------


def _form(intake, **overrides) -> dict:
    zone = intake.site.zone

    def local(value):
        return value.astimezone(zone).strftime("%Y-%m-%dT%H:%M")

    data = {
        "collection_started_at": local(intake.collection_started_at),
        "collection_ended_at": local(intake.collection_ended_at), "received_at": local(intake.received_at),
        "transport_temperature_c": str(intake.transport_temperature_c), "volume_ml": str(intake.volume_ml),
        "wbc_10e3_per_ul": str(intake.wbc_10e3_per_ul), "cd3_cells_total": str(intake.cd3_cells_total),
        "bag_intact": "yes" if intake.bag_intact else "no", "reason": REASON, "password": PASSWORD,
        "version": str(intake.version),
    }
    data.update(overrides)
    return data


def test_the_page_corrects_only_the_value_changed_and_shows_the_history(intake, technician, client_for):
    client = client_for(technician)
    url = reverse("batches:intake_correct", args=[intake.pk])

    response = client.post(url, _form(intake, volume_ml="205"))

    assert response.status_code == 302
    [correction] = IntakeCorrection.objects.all()
    assert list(correction.changes) == ["volume_ml"]  # the times shown to the minute are not "changed"
    html = client.get(url).content.decode()
    assert "<del>250.0</del>" in html
    assert "<b>205.0</b>" in html
    assert REASON in html
    assert "Irina Sokolova" in html
    assert "Performed" in html


def test_the_intake_page_links_to_its_corrections(intake, technician, client_for):
    correct(technician, intake, volume_ml=Decimal("205"))
    html = client_for(technician).get(reverse("batches:intake_detail", args=[intake.pk])).content.decode()

    assert reverse("batches:intake_correct", args=[intake.pk]) in html
    assert "Corrected 1 time" in html


@pytest.mark.parametrize(
    ("overrides", "status", "message"),
    [
        ({"password": "wrong"}, 403, "signature was refused"),
        ({"version": "0"}, 409, "changed since you opened it"),
        ({"reason": "typing\x00error"}, 400, "Null characters are not allowed"),
        ({"reason": "x" * 3000}, 400, "at most 2000 characters"),
        ({"volume_ml": "lots"}, 400, "Enter a number"),
        ({"volume_ml": "9" * 500}, 400, "digits in total"),
        ({"version": "abc"}, 400, "The form is out of date: reload the page."),
    ],
)
def test_a_refused_correction_on_the_page_says_why_and_changes_nothing(intake, technician, client_for, overrides,
                                                                        status, message):
    before = snapshot(intake)
    response = client_for(technician).post(reverse("batches:intake_correct", args=[intake.pk]),
                                           _form(intake, **{"volume_ml": "205", **overrides}))

    assert response.status_code == status
    assert message in response.content.decode()
    assert snapshot(intake) == before
    assert not IntakeCorrection.objects.exists()


def test_a_qp_sees_the_history_but_cannot_post_a_correction(intake, technician, qp, client_for):
    correct(technician, intake, volume_ml=Decimal("205"))
    client = client_for(qp)
    url = reverse("batches:intake_correct", args=[intake.pk])

    page = client.get(url)
    assert page.status_code == 200
    assert "<del>250.0</del>" in page.content.decode()
    assert 'name="password"' not in page.content.decode()
    assert client.post(url, _form(intake, volume_ml="210")).status_code == 403
    assert IntakeCorrection.objects.count() == 1


def test_the_page_says_why_a_certified_batchs_intake_cannot_be_corrected(intake, technician, qp, client_for):
    released(Batch.objects.get(donation=intake.donation), qp)
    html = client_for(technician).get(reverse("batches:intake_correct", args=[intake.pk])).content.decode()

    assert "certified or closed" in html
    assert 'name="password"' not in html


def test_another_sites_user_gets_404(intake, other_site_user, client_for):
    assert_hidden(client_for(other_site_user), reverse("batches:intake_correct", args=[intake.pk]))
    assert not IntakeCorrection.objects.exists()


@pytest.mark.parametrize("corrections", [1, 4])
def test_the_history_page_runs_a_fixed_number_of_queries(intake, technician, client_for,
                                                         django_assert_num_queries, corrections):
    for n in range(corrections):
        intake.refresh_from_db()
        correct(technician, intake, volume_ml=Decimal(200 + n))
    client = client_for(technician)
    url = reverse("batches:intake_correct", args=[intake.pk])
    client.get(url)  # warm the session and permission caches

    with django_assert_num_queries(HISTORY_PAGE_QUERIES):
        response = client.get(url)
    assert response.status_code == 200
    assert response.content.decode().count("<del>") == corrections


HISTORY_PAGE_QUERIES = 18


@pytest.mark.parametrize("value", ["NaN", "sNaN", "Infinity", "-inf"])
def test_a_number_that_is_not_finite_is_a_clear_refusal_not_a_crash(site_admin, product, value):
    """The criteria page passes what was typed straight to the service (a NaN once raised
    decimal.InvalidOperation there: a 500)."""
    from batches.services.intake import intake_criteria_set

    with pytest.raises(InvalidInput, match="must be"):
        intake_criteria_set(actor=site_admin, product=product, reason="test", password=PASSWORD,
                            min_cd3_cells=value, min_temperature_c="2", max_temperature_c="8",
                            max_hours_collection_to_receipt="24")
    assert not IntakeCriteria.objects.exists()


def test_the_chain_of_identity_timeline_shows_each_correction_with_what_was_first_written(intake, technician):
    from batches.timeline import coi_timeline

    correct(technician, intake, transport_temperature_c=Decimal("9.5"), reason="Thermometer read 9.5 °C")

    [entry] = [e for e in coi_timeline(intake.donation) if e.kind == "correction"]
    assert entry.title == "Intake corrected (1)"
    assert entry.who == "Irina Sokolova"
    assert "Transport temperature (°C): 5.0 → 9.5" in entry.details
    assert "Reason: Thermometer read 9.5 °C" in entry.details
    assert "Outcome: accepted → accepted with deviation" in entry.details


@settings(max_examples=80, deadline=None)
@given(reason=st.text(max_size=2100), changes=st.dictionaries(st.text(max_size=30), st.none(), max_size=3))
def test_any_typed_reason_and_field_names_are_either_taken_or_refused_with_a_message(reason, changes):
    """What a form or the API can send never escapes as anything but a clear refusal."""
    from batches.services.intake_correction import _check_request

    try:
        cleaned = _check_request(changes, reason, 1)
    except GMPError as exc:
        refusal = exc.message
    else:
        refusal = ""
        assert cleaned == cleaned.strip()
        assert 0 < len(cleaned) <= 2000
        assert "\x00" not in cleaned
        assert set(changes) <= set(CORRECTABLE_FIELDS)
    assert refusal or cleaned


def test_a_qp_accepting_a_pending_intake_corrected_into_its_criteria_gets_a_deviation_that_says_so(
    cold_intake, technician, qp, small_mbr
):
    correct(technician, cold_intake, transport_temperature_c=Decimal("4.1"), reason="Typing error: 4.1 written as 11")
    cold_intake.refresh_from_db()

    intake_accept_with_deviation(actor=qp, intake=cold_intake, password=PASSWORD, reason="Correction checked",
                                 expected_version=cold_intake.version)

    deviation = Deviation.objects.get()
    assert deviation.description.startswith("Criteria met on the values corrected after recording")
    assert Batch.objects.filter(donation=cold_intake.donation).exists()


def test_the_intake_page_says_a_correction_raised_the_deviation_rather_than_awaiting_a_qp_signature(
    intake, technician, client_for
):
    correct(technician, intake, transport_temperature_c=Decimal("9.5"))

    html = client_for(technician).get(reverse("batches:intake_detail", args=[intake.pk])).content.decode()
    assert "a correction then failed the criteria and raised the deviation" in html
    assert "No decision signed yet." not in html
