"""Guided execution of a batch: the blocks that stop a technician, and what is recorded."""

from __future__ import annotations

from decimal import Decimal

import pytest

from batches.demo_mbr import label_scan, run_good_steps, step_inputs
from batches.exceptions import (
    ConfirmationRequired,
    EquipmentNotUsable,
    IdentityMismatch,
    MaterialNotUsable,
    NotReady,
    OutOfOrder,
)
from batches.models import (
    BatchState,
    DeviationClass,
    DeviationSource,
    DeviationStatus,
    EquipmentStatus,
    LimitResult,
    MaterialLot,
    StepCorrection,
    StepRecord,
    StepStatus,
)
from batches.progress import RecordState, load_plan
from batches.services.deviations import deviation_approve_use, deviation_request_use
from batches.services.equipment import equipment_update
from batches.services.execution import (
    batch_complete,
    batch_resume,
    batch_start,
    step_correct,
    step_record,
    step_verify,
)
from batches.services.materials import material_lot_reject
from batches.services.mbr import mbr_approve, mbr_load, mbr_make_effective
from carmfg.audit.models import Action, AuditEvent
from carmfg.esign.exceptions import SegregationOfDuties, SignatureRefused
from carmfg.esign.models import Meaning
from carmfg.exceptions import InvalidInput, PermissionRefused, ReasonRequired, StaleRecord
from tests.conftest import PASSWORD


@pytest.fixture
def batch(started_batch):
    """The shared started batch of the shipped recipe (tests/batches/conftest.py)."""
    return started_batch


def record(batch, code, actor, **inputs):
    state = load_plan(batch).by_code[code]
    return step_record(actor=actor, batch=batch, definition=state.definition, password=PASSWORD,
                       expected_occurrence=state.next_occurrence, **inputs)


def good(batch, code, actor):
    state = load_plan(batch).by_code[code]
    return record(batch, code, actor, **step_inputs(state, batch, actor=actor))


def advance(batch, technician, verifier, *, stop_before, **kwargs):
    return run_good_steps(batch=batch, technician=technician, verifier=verifier, password=PASSWORD,
                          stop_before=stop_before, **kwargs)


def latest(batch, code) -> RecordState:
    state = load_plan(batch).by_code[code].latest
    assert state is not None
    return state


def signer_of(signature_state):
    assert signature_state is not None
    return signature_state.signature.signer


def records_of(batch, code):
    return list(StepRecord.objects.filter(batch=batch, definition__code=code))


# --- starting, order ---------------------------------------------------------------------------


def test_starting_execution_moves_a_planned_batch_in_process(shipped_mbr, make_batch, technician):
    batch = make_batch(shipped_mbr.product)

    batch_start(actor=technician, batch=batch, expected_version=batch.version)

    batch.refresh_from_db()
    assert batch.state == BatchState.IN_PROCESS
    assert batch.started_at is not None


def test_no_step_is_recorded_before_the_batch_starts(shipped_mbr, make_batch, technician):
    batch = make_batch(shipped_mbr.product)

    with pytest.raises(NotReady, match="start manufacturing"):
        record(batch, "line_clearance", technician)


def test_a_step_cannot_be_done_before_the_steps_before_it(batch, technician):
    with pytest.raises(OutOfOrder, match="Line clearance"):
        record(batch, "apheresis_volume_ml", technician, value="212.0", unit="mL")

    assert not StepRecord.objects.filter(batch=batch).exists()


def test_a_step_that_allows_it_may_be_done_out_of_order_but_is_still_required(product, site_admin, qp, technician,
                                                                             verifier, make_batch):
    mbr = mbr_load(actor=site_admin, product=product, data={"title": "Small", "stages": [{
        "code": "s", "name": "Stage", "steps": [
            {"code": "first", "kind": "instruction", "title": "First"},
            {"code": "anytime", "kind": "instruction", "title": "Room log checked", "allow_out_of_order": True},
            {"code": "last", "kind": "instruction", "title": "Last"}]}]})
    mbr_approve(actor=site_admin, mbr=mbr, password=PASSWORD, expected_revision=mbr.revision)
    mbr_approve(actor=qp, mbr=mbr, password=PASSWORD, expected_revision=mbr.revision)
    mbr_make_effective(actor=qp, mbr=mbr)
    batch = make_batch(product, mbr=mbr)
    batch_start(actor=technician, batch=batch, expected_version=batch.version)

    record(batch, "anytime", technician)
    with pytest.raises(OutOfOrder):
        record(batch, "last", technician)
    record(batch, "first", technician)
    record(batch, "last", technician)

    batch.refresh_from_db()
    batch_complete(actor=technician, batch=batch, expected_version=batch.version)
    batch.refresh_from_db()
    assert batch.state == BatchState.AWAITING_RELEASE


def test_a_step_is_recorded_once_then_only_corrected(batch, technician):
    good(batch, "line_clearance", technician)
    definition = load_plan(batch).by_code["line_clearance"].definition

    with pytest.raises(NotReady, match="recorded already"):
        step_record(actor=technician, batch=batch, definition=definition, password=PASSWORD, expected_occurrence=2)


def test_only_technicians_record_steps(batch, qc_analyst, auditor, qp):
    for person in (qc_analyst, auditor, qp):
        with pytest.raises(PermissionRefused):
            record(batch, "line_clearance", person)


def test_a_wrong_password_records_nothing(batch, technician):
    definition = load_plan(batch).by_code["line_clearance"].definition
    with pytest.raises(SignatureRefused):
        step_record(actor=technician, batch=batch, definition=definition, password="nope-nope-nope",
                    expected_occurrence=1)

    assert not StepRecord.objects.filter(batch=batch).exists()
    assert AuditEvent.objects.filter(action=Action.SIGN_REFUSED, actor=technician).exists()


# --- values and limits -------------------------------------------------------------------------


@pytest.mark.parametrize(("value", "unit", "message"), [
    ("212.05", "mL", "decimal places"),
    ("abc", "mL", "not a number"),
    ("212,0", "mL", "comma"),
    ("212.0", "L", "not 'L'"),
    ("1\x00", "mL", "NUL"),
    ("9" * 5000, "mL", "too long"),
])
def test_a_value_is_checked_by_the_server_for_type_unit_and_decimal_places(batch, technician, verifier, value, unit,
                                                                            message):
    advance(batch, technician, verifier, stop_before="apheresis_volume_ml")

    with pytest.raises(InvalidInput, match=message):
        record(batch, "apheresis_volume_ml", technician, value=value, unit=unit)
    assert not records_of(batch, "apheresis_volume_ml")


def test_a_value_outside_alert_limits_needs_confirmation_and_a_comment(batch, technician, verifier):
    advance(batch, technician, verifier, stop_before="apheresis_volume_ml")

    with pytest.raises(ConfirmationRequired, match="alert limits"):
        record(batch, "apheresis_volume_ml", technician, value="80.0", unit="mL")
    with pytest.raises(ConfirmationRequired):
        record(batch, "apheresis_volume_ml", technician, value="80.0", unit="mL", confirmed=True)
    assert not records_of(batch, "apheresis_volume_ml")

    saved = record(batch, "apheresis_volume_ml", technician, value="80.0", unit="mL", confirmed=True,
                   comment="Small patient, collection stopped early by the clinic")
    assert (saved.limit_result, saved.status) == (LimitResult.ALERT, StepStatus.DONE)
    assert saved.deviation is None


def test_a_value_outside_action_limits_is_recorded_out_of_limits_with_a_deviation(batch, technician, verifier):
    advance(batch, technician, verifier, stop_before="apheresis_volume_ml")

    saved = record(batch, "apheresis_volume_ml", technician, value="40.0", unit="mL", confirmed=True,
                   comment="Bag weighed twice")

    assert (saved.limit_result, saved.status) == (LimitResult.ACTION, StepStatus.OUT_OF_LIMIT)
    deviation = saved.deviation
    assert deviation.source == DeviationSource.OUT_OF_LIMIT
    assert deviation.classification == DeviationClass.MINOR
    assert deviation.batch_id == batch.pk
    assert "40" in deviation.title
    batch.refresh_from_db()
    assert batch.state == BatchState.IN_PROCESS  # not a critical step


def test_a_value_outside_action_limits_also_needs_confirmation_and_a_comment_before_anything_is_written(
    batch, technician, verifier
):
    advance(batch, technician, verifier, stop_before="apheresis_volume_ml")
    deviations_before = batch.deviations.count()

    with pytest.raises(ConfirmationRequired, match="outside the action limits.*a deviation is raised"):
        record(batch, "apheresis_volume_ml", technician, value="40.0", unit="mL")
    with pytest.raises(ConfirmationRequired):
        record(batch, "apheresis_volume_ml", technician, value="40.0", unit="mL", confirmed=True)
    with pytest.raises(ConfirmationRequired):
        record(batch, "apheresis_volume_ml", technician, value="40.0", unit="mL", comment="Bag weighed twice")

    assert not records_of(batch, "apheresis_volume_ml")
    assert batch.deviations.count() == deviations_before


def test_a_critical_step_outside_action_limits_puts_the_batch_on_hold(batch, technician, verifier, qp):
    advance(batch, technician, verifier, stop_before="apheresis_viability")

    saved = record(batch, "apheresis_viability", technician, value="75.0", unit="%", confirmed=True,
                   comment="Counted twice")

    batch.refresh_from_db()
    assert batch.state == BatchState.ON_HOLD
    assert saved.deviation.classification == DeviationClass.MAJOR
    with pytest.raises(NotReady, match="on hold"):
        good(batch, "cell_processor", technician)

    batch_resume(actor=qp, batch=batch, reason="Impact assessed in the deviation: process may go on",
                 expected_version=batch.version)
    batch.refresh_from_db()
    assert batch.state == BatchState.IN_PROCESS
    good(batch, "cell_processor", technician)


def test_only_a_qp_resumes_a_batch_on_hold(batch, technician, verifier):
    advance(batch, technician, verifier, stop_before="apheresis_viability")
    record(batch, "apheresis_viability", technician, value="75.0", unit="%", confirmed=True, comment="Counted twice")
    batch.refresh_from_db()

    with pytest.raises(PermissionRefused):
        batch_resume(actor=technician, batch=batch, reason="Fine", expected_version=batch.version)


# --- materials, equipment, identity ---------------------------------------------------------------


def test_an_expired_lot_cannot_be_used_without_an_approved_deviation(batch, technician, verifier):
    advance(batch, technician, verifier, stop_before="transact")

    with pytest.raises(MaterialNotUsable, match="expired"):
        record(batch, "transact", technician, lot_barcode="LOT-TA-7318")

    assert not records_of(batch, "transact")
    blocked = AuditEvent.objects.filter(action=Action.BLOCKED, actor=technician).order_by("-seq")[0]
    assert blocked.changes["lot_barcode"] == "LOT-TA-7318"


def test_a_quarantined_lot_is_refused(batch, technician, verifier):
    advance(batch, technician, verifier, stop_before="il15")

    with pytest.raises(MaterialNotUsable, match="quarantine"):
        record(batch, "il15", technician, lot_barcode="LOT-IL15-0415")
    assert not records_of(batch, "il15")


def test_a_rejected_lot_is_refused(batch, technician, verifier, qp):
    lot = MaterialLot.objects.get(barcode="LOT-IL7-0311")
    material_lot_reject(actor=qp, lot=lot, password=PASSWORD, reason="Supplier recall", expected_version=lot.version)
    advance(batch, technician, verifier, stop_before="il7")

    with pytest.raises(MaterialNotUsable, match="rejected"):
        record(batch, "il7", technician, lot_barcode="LOT-IL7-0311")


def test_a_lot_of_another_material_or_an_unknown_barcode_is_refused(batch, technician, verifier):
    advance(batch, technician, verifier, stop_before="transact")

    with pytest.raises(MaterialNotUsable, match="this step needs transact"):
        record(batch, "transact", technician, lot_barcode="LOT-IL7-0311")
    with pytest.raises(MaterialNotUsable, match="No lot"):
        record(batch, "transact", technician, lot_barcode="NOT-A-LOT")


def test_an_expired_lot_may_be_used_on_that_step_once_a_qp_approves_the_deviation(batch, technician, verifier, qp):
    advance(batch, technician, verifier, stop_before="transact")
    lot = MaterialLot.objects.get(barcode="LOT-TA-7318")
    definition = load_plan(batch).by_code["transact"].definition
    deviation = deviation_request_use(actor=technician, batch=batch, definition=definition, material_lot=lot,
                                      justification="No other lot in stock; stability data supports +30 days")

    with pytest.raises(MaterialNotUsable):
        record(batch, "transact", technician, lot_barcode="LOT-TA-7318")  # not approved yet
    deviation_approve_use(actor=qp, deviation=deviation, password=PASSWORD)
    saved = record(batch, "transact", technician, lot_barcode="LOT-TA-7318")

    assert saved.material_lot == lot
    assert saved.deviation == deviation
    deviation.refresh_from_db()
    assert deviation.status == DeviationStatus.APPROVED_FOR_USE


def test_equipment_past_calibration_is_refused(batch, technician, verifier):
    advance(batch, technician, verifier, stop_before="cell_processor")

    with pytest.raises(EquipmentNotUsable, match="calibration"):
        record(batch, "cell_processor", technician, equipment_code="PRODIGY-02")
    assert not records_of(batch, "cell_processor")


@pytest.mark.parametrize(("change", "message"), [
    ({"status": EquipmentStatus.OUT_OF_SERVICE}, "out of service"),
    ({"maintenance_due": "yesterday"}, "maintenance"),
])
def test_equipment_out_of_service_or_past_maintenance_is_refused(batch, technician, verifier, site_admin, change,
                                                                 message):
    import datetime as dt

    from batches.models import Equipment
    from batches.services.materials import site_today

    equipment = Equipment.objects.get(asset_id="PRODIGY-01")
    if change.get("maintenance_due") == "yesterday":
        change = {"maintenance_due": site_today(equipment.site) - dt.timedelta(days=1)}
    equipment_update(actor=site_admin, equipment=equipment, reason="test state", expected_version=equipment.version,
                     **change)
    advance(batch, technician, verifier, stop_before="cell_processor")

    with pytest.raises(EquipmentNotUsable, match=message):
        record(batch, "cell_processor", technician, equipment_code="PRODIGY-01")


def test_scanning_another_donations_label_blocks_the_step_and_is_logged(batch, technician, verifier, make_batch):
    other = make_batch(batch.product)
    other_bag = label_scan(other, "apheresis_bag", actor=technician)
    advance(batch, technician, verifier, stop_before="apheresis_bag_scan")

    with pytest.raises(IdentityMismatch, match="another donation"):
        record(batch, "apheresis_bag_scan", technician, scanned_code=other_bag)

    assert not records_of(batch, "apheresis_bag_scan")
    blocked = AuditEvent.objects.filter(action=Action.BLOCKED, object_type="batches.donation")
    assert blocked.filter(object_id=str(batch.donation.pk)).exists()
    assert blocked.filter(object_id=str(other.donation.pk)).exists()  # the other patient's record shows it too


@pytest.mark.parametrize(("scan", "message"), [
    ("din_only", "Only the DIN was scanned"),
    ("qc_sample", "Wrong container"),
    ("printed_not_applied", "never recorded as applied"),
])
def test_a_scan_step_needs_this_donations_applied_label_on_the_right_container(batch, technician, verifier, scan,
                                                                            message):
    from batches.services.labels import labels_print

    advance(batch, technician, verifier, stop_before="apheresis_bag_scan")
    if scan == "din_only":
        code = "=" + batch.donation.din + "00"
    elif scan == "qc_sample":
        code = label_scan(batch, "qc_sample", actor=technician)
    else:
        labels, _ = labels_print(actor=technician, donation=batch.donation, container_type="apheresis_bag")
        code = "=" + batch.donation.din + "00/" + labels[0].container_code

    with pytest.raises(IdentityMismatch, match=message):
        record(batch, "apheresis_bag_scan", technician, scanned_code=code)
    assert not records_of(batch, "apheresis_bag_scan")


# --- signatures, verification, corrections -----------------------------------------------------------


def test_the_performer_cannot_verify_their_own_step(batch, technician, make_user, site):
    from carmfg.accounts.models import Role

    both = make_user("both", roles=[Role.TECHNICIAN, Role.VERIFIER], site=site)
    saved = record(batch, "line_clearance", both)

    with pytest.raises(SegregationOfDuties):
        step_verify(actor=both, record=saved, password=PASSWORD, expected_version=saved.version)


def test_a_second_person_verifies_a_step(batch, technician, verifier):
    saved = record(batch, "line_clearance", technician)

    step_verify(actor=verifier, record=saved, password=PASSWORD, expected_version=saved.version)

    state = latest(batch, "line_clearance")
    assert signer_of(state.performed) == technician
    assert signer_of(state.verified) == verifier


def test_a_correction_needs_a_reason(batch, technician, verifier):
    advance(batch, technician, verifier, stop_before="apheresis_viable_wbc")
    saved = StepRecord.objects.get(batch=batch, definition__code="apheresis_volume_ml")

    for reason in ("", "   "):
        with pytest.raises(ReasonRequired):
            step_correct(actor=technician, record=saved, password=PASSWORD, reason=reason,
                         expected_version=saved.version, value="221.0", unit="mL")
    saved.refresh_from_db()
    assert saved.value == Decimal("212.0")


def test_a_correction_keeps_the_original_and_voids_and_asks_again_for_signatures(batch, technician, verifier):
    advance(batch, technician, verifier, stop_before="cell_processor")
    volume = StepRecord.objects.get(batch=batch, definition__code="apheresis_volume_ml")

    corrected = step_correct(actor=technician, record=volume, password=PASSWORD, reason="Typing error: 221 read as 212",
                             expected_version=volume.version, value="221.0", unit="mL")

    assert corrected.value == Decimal("221.0")
    correction = StepCorrection.objects.get(step_record=volume)
    assert correction.old_content["value"] == "212.000000"
    assert correction.new_content["value"] == "221.000000"
    state = latest(batch, "apheresis_volume_ml")
    assert state.performed is not None
    assert any(s.status == "voided" and s.signature.meaning == Meaning.PERFORMED for s in state.signatures)
    assert AuditEvent.objects.filter(action=Action.UPDATE, object_id=str(volume.pk),
                                     reason="Typing error: 221 read as 212").exists()


def test_a_corrected_step_must_be_verified_again(batch, technician, verifier):
    saved = record(batch, "line_clearance", technician)
    step_verify(actor=verifier, record=saved, password=PASSWORD, expected_version=saved.version)

    corrected = step_correct(actor=technician, record=saved, password=PASSWORD, reason="Comment added",
                             expected_version=saved.version, comment="Room B2")

    state = latest(batch, "line_clearance")
    assert state.verified is None
    assert state.needs_verification
    step_verify(actor=verifier, record=corrected, password=PASSWORD, expected_version=corrected.version)
    assert latest(batch, "line_clearance").verified is not None


def test_a_stale_correction_is_refused(batch, technician, verifier):
    advance(batch, technician, verifier, stop_before="apheresis_viable_wbc")
    volume = StepRecord.objects.get(batch=batch, definition__code="apheresis_volume_ml")
    opened_version = volume.version
    step_correct(actor=verifier, record=volume, password=PASSWORD, reason="Re-weighed", expected_version=opened_version,
                 value="215.0", unit="mL")

    with pytest.raises(StaleRecord):
        step_correct(actor=technician, record=volume, password=PASSWORD, reason="Re-weighed too",
                     expected_version=opened_version, value="214.0", unit="mL")


def test_a_second_technician_recording_the_same_step_is_told_it_changed(batch, technician, verifier):
    definition = load_plan(batch).by_code["line_clearance"].definition
    step_record(actor=technician, batch=batch, definition=definition, password=PASSWORD, expected_occurrence=1)

    with pytest.raises(StaleRecord, match="since you opened it"):
        step_record(actor=verifier, batch=batch, definition=definition, password=PASSWORD, expected_occurrence=1)
    assert len(records_of(batch, "line_clearance")) == 1


def test_verifying_a_step_changed_since_the_page_was_opened_is_refused(batch, technician, verifier):
    saved = record(batch, "line_clearance", technician)
    opened = saved.version
    step_correct(actor=technician, record=saved, password=PASSWORD, reason="Comment", expected_version=opened,
                 comment="Room B2")

    with pytest.raises(StaleRecord):
        step_verify(actor=verifier, record=saved, password=PASSWORD, expected_version=opened)


# --- calculations in the record -----------------------------------------------------------------


def test_the_moi_is_calculated_by_the_server_from_the_vector_lots_titer(batch, technician, verifier):
    advance(batch, technician, verifier, stop_before="moi")

    moi = record(batch, "moi", technician)

    # 2.5e8 TU/mL × 2.00 mL / 1.0e8 viable cells = 5.00 TU/cell
    assert moi.value == Decimal("5.00")
    assert moi.limit_result == LimitResult.WITHIN
    assert moi.calculation_inputs["titer_tu_per_ml"]["value"] == "2.5E+8"
    assert "LV-CD19-023" in moi.calculation_inputs["titer_tu_per_ml"]["origin"]


def test_an_moi_outside_its_limits_needs_confirmation_and_holds_the_batch(batch, technician, verifier):
    advance(batch, technician, verifier, stop_before="vector_volume_ml")
    record(batch, "vector_volume_ml", technician, value="6.00", unit="mL")  # MOI 15

    with pytest.raises(ConfirmationRequired, match="action limits"):
        record(batch, "moi", technician)
    record(batch, "moi", technician, confirmed=True, comment="Vector volume checked")

    batch.refresh_from_db()
    assert batch.state == BatchState.ON_HOLD


def test_correcting_an_input_makes_its_calculation_stale_until_recalculated(batch, technician, verifier):
    advance(batch, technician, verifier, stop_before="vector_added")
    volume = StepRecord.objects.get(batch=batch, definition__code="vector_volume_ml")
    step_correct(actor=technician, record=volume, password=PASSWORD, reason="Read 2.40 mL on the syringe",
                 expected_version=volume.version, value="2.40", unit="mL")

    moi = StepRecord.objects.get(batch=batch, definition__code="moi")
    assert latest(batch, "moi").stale_inputs
    recalculated = step_correct(actor=technician, record=moi, password=PASSWORD, reason="Input corrected",
                                expected_version=moi.version)

    assert recalculated.value == Decimal("6.00")
    assert not latest(batch, "moi").stale_inputs


def test_the_daily_count_repeats_until_the_stage_moves_on(batch, technician, verifier):
    advance(batch, technician, verifier, stop_before="fold_expansion", expansion_days=3)
    plan = load_plan(batch)
    assert plan.by_code["daily_viable_cells"].count == 3
    cont, nxt, move_on = plan.cycle_continuation, plan.next_step, plan.move_on_step
    assert cont is not None
    assert nxt is not None
    assert move_on is not None
    assert cont.definition.code == "daily_viable_cells"
    assert (nxt.definition.code, nxt.next_occurrence) == ("daily_viable_cells", 4)
    assert move_on.definition.code == "fold_expansion"

    good(batch, "daily_viable_cells", technician)  # day 4 opened
    with pytest.raises(OutOfOrder, match="#4"):
        good(batch, "fold_expansion", technician)  # the day-4 count is not finished
    good(batch, "daily_viability", technician)
    good(batch, "daily_temperature", technician)
    record(batch, "fold_expansion", technician, confirmed=True, comment="Harvest on day 6 per physician request")

    with pytest.raises(OutOfOrder, match="moved on"):
        good(batch, "daily_viable_cells", technician)
    fold = StepRecord.objects.get(batch=batch, definition__code="fold_expansion")
    assert fold.value == Decimal("8.6")  # 8.6e8 on day 4 / 1.0e8 seeded


def test_a_batch_with_unverified_steps_cannot_await_release(batch, technician):
    record(batch, "line_clearance", technician)
    batch.refresh_from_db()

    with pytest.raises(NotReady, match="verification"):
        batch_complete(actor=technician, batch=batch, expected_version=batch.version)
