"""Two-stage release by the qualified person: provisional on the fresh product, final
when every result is in; single certification for single-stage products."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from django.core import mail
from django.utils import timezone

from batches.exceptions import IdentityMismatch, NotReady
from batches.isbt128 import parse_din
from batches.models import (
    BatchFailureReason,
    BatchState,
    CustodyStep,
    DeviationClass,
    DeviationSource,
    DeviationStatus,
    Label,
    LabelStatus,
    OrderStatus,
    ReleaseModel,
    StepRecord,
)
from batches.scans import label_scan_data
from batches.services.custody import custody_scan
from batches.services.deviations import deviation_close, deviation_raise_manual, deviation_update
from batches.services.infusion import infusion_record
from carmfg.accounts.models import Role
from carmfg.audit.models import Action, AuditEvent
from carmfg.audit.services import audit_record
from carmfg.esign.exceptions import SegregationOfDuties
from carmfg.esign.models import Meaning, Signature
from carmfg.esign.selectors import signatures_for_record
from carmfg.esign.services import signatures_void_changed
from carmfg.exceptions import InvalidInput, StaleRecord
from qc.checklist import FAILED, OK, release_checklist
from qc.models import (
    Alert,
    Certification,
    CertificationDecision,
    CertificationKind,
    NotificationEmail,
    OosPhase1Conclusion,
    OosStatus,
)
from qc.services.alerts import alert_acknowledge
from qc.services.oos import oos_phase1_conclude, oos_phase2_conclude
from qc.services.release import (
    certification_final_sign,
    certification_provisional_sign,
    certification_reject,
)
from tests.conftest import PASSWORD
from tests.qc.conftest import (
    FAILING,
    LATE_CODES,
    PROVISIONAL_CODES,
    enter,
    enter_and_review,
    review,
)


def provisional(batch, qp, **kwargs):
    return certification_provisional_sign(actor=qp, batch=batch, password=PASSWORD, **kwargs)


def final(batch, qp, **kwargs):
    return certification_final_sign(actor=qp, batch=batch, password=PASSWORD, **kwargs)


@pytest.fixture
def ready_batch(make_batch, qc_passed):
    batch = make_batch()
    qc_passed(batch)
    return batch


# --- provisional ------------------------------------------------------------------------------


def test_provisional_certification_releases_the_fresh_batch_and_names_pending_tests(ready_batch, qp):
    cert = provisional(ready_batch, qp)

    ready_batch.refresh_from_db()
    assert ready_batch.state == BatchState.PROVISIONALLY_RELEASED
    assert cert.kind == CertificationKind.PROVISIONAL
    assert cert.decision == CertificationDecision.RELEASED
    assert {item["status"] for item in cert.checklist} == {OK, "not_applicable"}
    pending = {p["tests"][0]: p for p in cert.pending_tests}
    assert set(pending) == set(LATE_CODES)
    sample_day = (ready_batch.completed_at.astimezone(ready_batch.site.zone)).date()
    assert pending["sterility"]["expected_on"] == (sample_day + dt.timedelta(days=14)).isoformat()
    [sig] = [v for v in signatures_for_record(cert) if v.is_valid]
    assert sig.signature.meaning == Meaning.RELEASED_PROVISIONAL
    assert sig.signature.signer_id == qp.pk


def test_provisional_refused_while_a_required_test_is_missing(make_batch, qc_analyst, qc_reviewer, qp):
    batch = make_batch()
    enter_and_review(batch, [c for c in PROVISIONAL_CODES if c != "endotoxin"], qc_analyst, qc_reviewer)

    with pytest.raises(NotReady, match="Endotoxin: no result yet"):
        provisional(batch, qp)
    batch.refresh_from_db()
    assert batch.state == BatchState.AWAITING_RELEASE
    assert not Certification.objects.filter(batch=batch).exists()


def test_provisional_refused_while_a_required_result_is_unreviewed(make_batch, qc_analyst, qc_reviewer, qp):
    batch = make_batch()
    enter_and_review(batch, [c for c in PROVISIONAL_CODES if c != "cd3"], qc_analyst, qc_reviewer)
    enter(batch, "cd3", qc_analyst)

    with pytest.raises(NotReady, match="CD3\\+ T cells: .* awaits review"):
        provisional(batch, qp)


def test_provisional_refused_while_a_required_test_fails(make_batch, qc_analyst, qc_reviewer, qp):
    batch = make_batch()
    enter_and_review(batch, [c for c in PROVISIONAL_CODES if c != "viability"], qc_analyst, qc_reviewer)
    review(enter(batch, "viability", qc_analyst, outcome=FAILING), qc_reviewer)

    with pytest.raises(NotReady) as refused:
        provisional(batch, qp)
    assert "Viability: 55.0 % of nucleated cells is out of specification" in refused.value.message
    assert "One major or critical deviation is open" in refused.value.message


def test_provisional_refused_while_a_major_deviation_is_open(ready_batch, technician, qp):
    deviation = deviation_raise_manual(actor=technician, site=ready_batch.site, classification=DeviationClass.MAJOR,
                                       title="Incubator CO2 excursion", description="5.9 % for 3 h", batch=ready_batch)

    with pytest.raises(NotReady, match=f"Deviations: One major or critical deviation is open: {deviation.number}"):
        provisional(ready_batch, qp)


def test_a_minor_deviation_does_not_block_provisional_release(ready_batch, technician, qp):
    deviation_raise_manual(actor=technician, site=ready_batch.site, classification=DeviationClass.MINOR,
                           title="Label printer jam", description="Reprinted", batch=ready_batch)

    assert provisional(ready_batch, qp).decision == CertificationDecision.RELEASED


def test_provisional_release_possible_once_the_deviation_is_closed(ready_batch, technician, qp):
    deviation = deviation_raise_manual(actor=technician, site=ready_batch.site, classification=DeviationClass.MAJOR,
                                       title="Incubator CO2 excursion", description="5.9 % for 3 h", batch=ready_batch)
    deviation = deviation_update(actor=technician, deviation=deviation, reason="investigated", expected_version=1,
                                 impact_assessment="No impact: within validated range", root_cause="Sensor drift",
                                 capa="Sensor recalibrated")
    deviation_close(actor=qp, deviation=deviation, password=PASSWORD)

    assert provisional(ready_batch, qp).decision == CertificationDecision.RELEASED


def test_provisional_refused_while_a_step_signature_is_voided(ready_batch, technician, qp):
    record = StepRecord.objects.get(batch=ready_batch, definition__code="line_clearance")
    record.comment = "corrected after verification"
    record.save()
    signatures_void_changed(actor=technician, obj=record, reason="record corrected")

    checklist = release_checklist(ready_batch, kind=CertificationKind.PROVISIONAL)
    assert checklist.item("signatures").status == FAILED
    assert "voided" in checklist.item("signatures").message
    assert checklist.item("steps").status == FAILED
    with pytest.raises(NotReady, match="Signatures: .*was voided"):
        provisional(ready_batch, qp)


def test_provisional_refused_while_a_signature_is_invalidated_by_a_silent_change(ready_batch, qp):
    StepRecord.objects.filter(batch=ready_batch, definition__code="harvest_car_pos").update(value=Decimal("1"))

    with pytest.raises(NotReady, match="no longer matches the record"):
        provisional(ready_batch, qp)


def scan_qc_handover(batch, actor, scanned_code):
    return custody_scan(actor=actor, donation=batch.donation, step=CustodyStep.QC_HANDOVER, scanned_code=scanned_code,
                        location="QC laboratory")


def test_provisional_refused_while_chain_of_identity_has_an_unresolved_mismatch(ready_batch, make_batch, qc_analyst, qp):
    other = make_batch()
    with pytest.raises(IdentityMismatch):
        scan_qc_handover(ready_batch, qc_analyst, label_scan_data(parse_din(other.donation.din), "QC-1"))

    with pytest.raises(NotReady, match="Chain of identity: Blocked scan at qc_handover"):
        provisional(ready_batch, qp)


def test_a_mismatch_followed_by_the_right_scan_is_resolved(ready_batch, make_batch, qc_analyst, qp):
    other = make_batch()
    with pytest.raises(IdentityMismatch):
        scan_qc_handover(ready_batch, qc_analyst, label_scan_data(parse_din(other.donation.din), "QC-1"))
    scan_qc_handover(ready_batch, qc_analyst, label_scan_data(parse_din(ready_batch.donation.din), "QC-1"))

    assert release_checklist(ready_batch, kind=CertificationKind.PROVISIONAL).item("identity").status == OK
    # The other patient's record notes where its label turned up, but its own chain is intact.
    assert release_checklist(other, kind=CertificationKind.PROVISIONAL).item("identity").status == OK


def test_the_checklist_knows_a_misplaced_label_by_its_structured_key_not_by_the_wording(ready_batch, qc_analyst):
    """A blocked scan on this donation whose cause merely *reads* like the other-patient
    note is still an unresolved mismatch of this batch: only the structured key
    ``SEEN_AT_OTHER_HANDOVER`` marks a label that turned up at someone else's hand-over."""
    donation = ready_batch.donation
    audit_record(actor=qc_analyst, action=Action.BLOCKED, obj=donation, root=donation,
                 changes={"context": "custody scan", "step": CustodyStep.QC_HANDOVER, "expected": "x", "scanned": "y",
                          "cause": "Scanned by mistake for donation W0000 26 000001 [X]."})

    assert release_checklist(ready_batch, kind=CertificationKind.PROVISIONAL).item("identity").status == FAILED


def test_provisional_refused_while_labels_are_not_reconciled(ready_batch, technician, qp):
    Label.objects.create(site=ready_batch.site, donation=ready_batch.donation, container_type="final_product_bag",
                         container_code="FP-2", status=LabelStatus.PRINTED, printed_by=technician,
                         printed_at=timezone.now())

    with pytest.raises(NotReady, match="Label reconciliation: 4 printed ≠ 3 applied \\+ 0 destroyed; not accounted for: FP-2"):
        provisional(ready_batch, qp)


def test_provisional_refused_when_the_dose_misses_the_target_by_more_than_the_tolerance(make_batch, qc_passed, qp):
    # 52.5 × 10⁶ CAR+ cells for 70 kg: 0.75 × 10⁶/kg, below the target 1.0 × 10⁶ − 20 %.
    batch = make_batch(harvest_car_cells=Decimal("52500000"))
    qc_passed(batch)

    with pytest.raises(NotReady, match="Dose: Dose 7.50 × 10⁵ CAR\\+ cells/kg differs from the order's target"):
        provisional(batch, qp)


def test_provisional_refused_when_the_dose_is_outside_the_specification_range(make_batch, qc_passed, qp):
    batch = make_batch(target=Decimal("300000"))  # the order asks less than the specification's 0.4 × 10⁶/kg

    qc_passed(batch)
    checklist = release_checklist(batch, kind=CertificationKind.PROVISIONAL)
    assert checklist.item("dose").status == FAILED
    assert "outside the specification's range" in checklist.item("dose").message
    with pytest.raises(NotReady, match="Dose"):
        provisional(batch, qp)


def test_a_qp_who_performed_a_step_cannot_certify(make_user, site, make_batch, qc_passed):
    from carmfg.esign.services import signature_sign

    tech_qp = make_user("techqp", roles=[Role.TECHNICIAN, Role.QUALIFIED_PERSON], site=site)
    batch = make_batch()
    record = StepRecord.objects.get(batch=batch, definition__code="line_clearance")
    Signature.objects.filter(object_id=str(record.pk), meaning=Meaning.VERIFIED).delete()
    signature_sign(actor=tech_qp, obj=record, meaning=Meaning.VERIFIED, password=PASSWORD)
    qc_passed(batch)

    with pytest.raises(SegregationOfDuties, match="You verified a step of batch"):
        provisional(batch, tech_qp)


def test_a_qp_who_reviewed_a_result_cannot_certify(make_user, site, make_batch, qc_analyst, qc_reviewer):
    qc_qp = make_user("qcqp", roles=[Role.QC_ANALYST, Role.QUALIFIED_PERSON], site=site)
    batch = make_batch()
    enter_and_review(batch, [c for c in PROVISIONAL_CODES if c != "gram"], qc_analyst, qc_reviewer)
    enter_and_review(batch, ["gram"], qc_analyst, qc_qp)

    with pytest.raises(SegregationOfDuties, match="You reviewed a QC result of batch"):
        provisional(batch, qc_qp)
    batch.refresh_from_db()
    assert batch.state == BatchState.AWAITING_RELEASE


def test_only_a_qualified_person_certifies(ready_batch, qc_analyst):
    from carmfg.exceptions import PermissionRefused

    with pytest.raises(PermissionRefused):
        provisional(ready_batch, qc_analyst)


def test_the_qp_signs_the_checklist_on_screen_not_a_changed_one(ready_batch, qp, technician):
    seen = release_checklist(ready_batch, kind=CertificationKind.PROVISIONAL).fingerprint
    deviation_raise_manual(actor=technician, site=ready_batch.site, classification=DeviationClass.MINOR,
                           title="Note", description="A minor deviation raised meanwhile", batch=ready_batch)

    with pytest.raises(StaleRecord, match="checklist changed"):
        provisional(ready_batch, qp, expected_checklist=seen)


def test_a_provisional_certification_is_given_once(ready_batch, make_user, site, qp):
    provisional(ready_batch, qp)
    other_qp = make_user("qp2", roles=[Role.QUALIFIED_PERSON], site=site)

    with pytest.raises(NotReady):
        provisional(ready_batch, other_qp)


# --- final --------------------------------------------------------------------------------


@pytest.fixture
def released_batch(ready_batch, qp):
    provisional(ready_batch, qp)
    ready_batch.refresh_from_db()
    return ready_batch


def test_final_certification_refused_while_any_test_is_pending(released_batch, qc_analyst, qc_reviewer, qp):
    enter_and_review(released_batch, [c for c in LATE_CODES if c != "sterility"], qc_analyst, qc_reviewer)

    with pytest.raises(NotReady, match="Sterility: no result yet"):
        final(released_batch, qp)
    released_batch.refresh_from_db()
    assert released_batch.state == BatchState.PROVISIONALLY_RELEASED


def test_final_certification_refused_while_a_late_result_is_unreviewed(released_batch, qc_analyst, qc_reviewer, qp):
    enter_and_review(released_batch, [c for c in LATE_CODES if c != "vcn"], qc_analyst, qc_reviewer)
    enter(released_batch, "vcn", qc_analyst)

    with pytest.raises(NotReady, match="Vector copy number: .* awaits review"):
        final(released_batch, qp)


def test_final_certification_releases_when_every_result_is_in(released_batch, qc_analyst, qc_reviewer, qp):
    enter_and_review(released_batch, LATE_CODES, qc_analyst, qc_reviewer)

    cert = final(released_batch, qp)

    released_batch.refresh_from_db()
    assert released_batch.state == BatchState.RELEASED
    assert cert.kind == CertificationKind.FINAL
    assert cert.decision == CertificationDecision.RELEASED
    assert cert.pending_tests == []
    assert {i["code"] for i in cert.checklist} >= {"provisional", "tests", "identity", "dose"}


def test_an_exceptional_release_is_refused_when_nothing_fails(released_batch, qc_analyst, qc_reviewer, qp):
    enter_and_review(released_batch, LATE_CODES, qc_analyst, qc_reviewer)

    with pytest.raises(InvalidInput, match="No result fails"):
        final(released_batch, qp, decision=CertificationDecision.RELEASED_EXCEPTIONAL,
              justification="Physician request documented in the patient file, consent signed.")


# --- late failing result ----------------------------------------------------------------------


@pytest.fixture
def infused_batch(released_batch, coordinator):
    """Fraction 1 given at the bedside (bag and wristband scanned)."""
    infusion_record(actor=coordinator, batch=released_batch, fraction_number=1,
                    bag_scanned_code=label_scan_data(parse_din(released_batch.donation.din), "FP-1"),
                    wristband_scanned_code=released_batch.order.patient.wristband_code,
                    infused_at=timezone.now() - dt.timedelta(hours=3), password=PASSWORD)
    released_batch.refresh_from_db()
    return released_batch


def test_late_failing_sterility_after_infusion_raises_a_critical_deviation_and_notifies(
        infused_batch, qc_analyst, qp, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        result = enter(infused_batch, "sterility", qc_analyst, outcome=FAILING)

    investigation = result.oos
    deviation = investigation.deviation
    assert deviation.classification == DeviationClass.CRITICAL
    assert deviation.source == DeviationSource.LATE_RESULT
    assert deviation.batch_id == infused_batch.pk
    infused_batch.refresh_from_db()
    assert infused_batch.state == BatchState.ON_HOLD  # no further fraction may be given
    physician_mail = [m for m in mail.outbox if "dr.house@test.invalid" in m.to]
    assert len(physician_mail) == 1
    assert "Sterility" in physician_mail[0].subject
    assert infused_batch.number in physician_mail[0].body
    assert "#1 at" in physician_mail[0].body  # which fraction was given
    assert any(qp.email in m.to for m in mail.outbox)
    assert NotificationEmail.objects.filter(batch=infused_batch, sent_at__isnull=False).count() == 2
    [alert] = Alert.objects.filter(recipient=qp, batch=infused_batch)
    assert alert.acknowledged_at is None
    assert "Sterility" in alert.title


def test_acknowledging_the_alert_is_audited(infused_batch, qc_analyst, qp):
    enter(infused_batch, "sterility", qc_analyst, outcome=FAILING)
    alert = Alert.objects.get(recipient=qp, batch=infused_batch)

    alert_acknowledge(actor=qp, alert=alert)

    alert.refresh_from_db()
    assert alert.acknowledged_at is not None
    assert AuditEvent.objects.filter(object_type="qc.alert", object_id=str(alert.pk), actor=qp,
                                     action=Action.TRANSITION).exists()


def test_only_the_recipient_acknowledges_an_alert(infused_batch, qc_analyst, qp, auditor):
    from carmfg.exceptions import PermissionRefused

    enter(infused_batch, "sterility", qc_analyst, outcome=FAILING)
    alert = Alert.objects.get(recipient=qp, batch=infused_batch)

    with pytest.raises(PermissionRefused):
        alert_acknowledge(actor=auditor, alert=alert)


@pytest.fixture
def late_failure(infused_batch, qc_analyst, qc_reviewer, qp):
    """Every late result in, sterility failing and confirmed (phase II closed), its
    critical deviation investigated and closed by the QP."""
    enter_and_review(infused_batch, [c for c in LATE_CODES if c != "sterility"], qc_analyst, qc_reviewer)
    result = review(enter(infused_batch, "sterility", qc_analyst, outcome=FAILING), qc_reviewer)
    investigation = oos_phase1_conclude(actor=qc_reviewer, investigation=result.oos, conclusion=OosPhase1Conclusion.NO_LAB_ERROR,
                                        notes="Positive control fine; aseptic technique reviewed.", password=PASSWORD,
                                        expected_version=1)
    investigation = oos_phase2_conclude(actor=qc_reviewer, investigation=investigation,
                                        notes="Organism: S. epidermidis, identified by MALDI-TOF.",
                                        conclusion="Confirmed contamination of the final product.", password=PASSWORD,
                                        expected_version=investigation.version)
    deviation = deviation_update(actor=qp, deviation=investigation.deviation, reason="investigation complete",
                                 expected_version=1, impact_assessment="Patient monitored; blood cultures negative.",
                                 root_cause="Sampling port contamination", capa="Port redesign")
    deviation_close(actor=qp, deviation=deviation, password=PASSWORD)
    infused_batch.refresh_from_db()
    return investigation


def test_after_a_late_failure_a_plain_final_release_is_refused(infused_batch, late_failure, qp):
    with pytest.raises(NotReady, match="can only be rejected, or released exceptionally"):
        final(infused_batch, qp)


def test_after_a_late_failure_an_exceptional_release_needs_a_justification(infused_batch, late_failure, qp):
    with pytest.raises(InvalidInput, match="Justification"):
        final(infused_batch, qp, decision=CertificationDecision.RELEASED_EXCEPTIONAL, justification="",
              investigations=[late_failure])


def test_after_a_late_failure_an_exceptional_release_needs_the_investigation_linked(infused_batch, late_failure, qp):
    with pytest.raises(NotReady, match="link its OOS investigation"):
        final(infused_batch, qp, decision=CertificationDecision.RELEASED_EXCEPTIONAL,
              justification="Infused before the result; the physician documents the patient's follow-up.")


def test_after_a_late_failure_the_final_decision_is_a_signed_justified_exceptional_release(infused_batch, late_failure, qp):
    cert = final(infused_batch, qp, decision=CertificationDecision.RELEASED_EXCEPTIONAL,
                 justification="Product infused before the result; physician informed, patient on antibiotics.",
                 investigations=[late_failure])

    infused_batch.refresh_from_db()
    assert infused_batch.state == BatchState.RELEASED
    assert cert.decision == CertificationDecision.RELEASED_EXCEPTIONAL
    assert list(cert.investigations.all()) == [late_failure]
    [sig] = [v for v in signatures_for_record(cert) if v.is_valid]
    assert sig.signature.meaning == Meaning.RELEASED
    assert cert.signable_content()["investigations"] == [late_failure.pk]


def test_after_a_late_failure_the_final_decision_can_be_a_signed_rejection(infused_batch, late_failure, qp):
    cert = certification_reject(actor=qp, batch=infused_batch, reason="Contaminated product",
                                failure_reason=BatchFailureReason.CONTAMINATION, password=PASSWORD)

    infused_batch.refresh_from_db()
    assert infused_batch.state == BatchState.REJECTED
    assert infused_batch.failure_reason == BatchFailureReason.CONTAMINATION
    assert cert.kind == CertificationKind.FINAL
    assert cert.decision == CertificationDecision.REJECTED
    assert [v.signature.meaning for v in signatures_for_record(cert)] == [Meaning.REJECTED]


def test_an_exceptional_release_is_refused_while_the_investigation_is_open(infused_batch, qc_analyst, qc_reviewer, qp):
    enter_and_review(infused_batch, [c for c in LATE_CODES if c != "sterility"], qc_analyst, qc_reviewer)
    result = review(enter(infused_batch, "sterility", qc_analyst, outcome=FAILING), qc_reviewer)

    with pytest.raises(NotReady):
        final(infused_batch, qp, decision=CertificationDecision.RELEASED_EXCEPTIONAL,
              justification="Product infused before the result; physician informed.", investigations=[result.oos])
    assert result.oos.status == OosStatus.PHASE_1


# --- the order follows its batch ---------------------------------------------------------------


def test_the_order_shows_the_product_released_once_the_batch_is_provisionally_certified(ready_batch, qp):
    provisional(ready_batch, qp)

    order = ready_batch.order
    order.refresh_from_db()
    assert order.status == OrderStatus.RELEASED
    event = AuditEvent.objects.filter(object_type="batches.order", object_id=str(order.pk)).latest("seq")
    assert event.action == Action.TRANSITION
    assert event.changes["status"]["new"] == OrderStatus.RELEASED
    assert ready_batch.number in event.reason


def test_the_order_stays_released_through_final_certification(released_batch, qc_analyst, qc_reviewer, qp):
    enter_and_review(released_batch, LATE_CODES, qc_analyst, qc_reviewer)

    final(released_batch, qp)

    released_batch.order.refresh_from_db()
    assert released_batch.order.status == OrderStatus.RELEASED


def test_a_late_failure_after_a_fraction_was_given_leaves_the_order_partly_infused(infused_batch, late_failure, qp):
    infused_batch.refresh_from_db()
    assert infused_batch.state == BatchState.ON_HOLD
    infused_batch.order.refresh_from_db()
    assert infused_batch.order.status == OrderStatus.PARTLY_INFUSED

    certification_reject(actor=qp, batch=infused_batch, reason="Contaminated product",
                         failure_reason=BatchFailureReason.CONTAMINATION, password=PASSWORD)

    # The patient was given product: the order does not become "failed (no product)".
    infused_batch.order.refresh_from_db()
    assert infused_batch.order.status == OrderStatus.PARTLY_INFUSED


def test_a_batch_rejected_before_any_infusion_fails_its_order_with_the_batchs_reason(make_batch, qp):
    batch = make_batch()

    certification_reject(actor=qp, batch=batch, reason="Insufficient expansion: 40 × 10⁶ cells",
                         failure_reason=BatchFailureReason.INSUFFICIENT_EXPANSION, password=PASSWORD)

    batch.order.refresh_from_db()
    assert batch.order.status == OrderStatus.FAILED
    assert batch.order.failure_reason == BatchFailureReason.INSUFFICIENT_EXPANSION


# --- rejection and single-stage -------------------------------------------------------------


def test_rejection_is_a_signed_decision_with_a_reason(make_batch, qp):
    batch = make_batch()

    cert = certification_reject(actor=qp, batch=batch, reason="Insufficient expansion: 40 × 10⁶ cells",
                                failure_reason=BatchFailureReason.INSUFFICIENT_EXPANSION, password=PASSWORD)

    batch.refresh_from_db()
    assert batch.state == BatchState.REJECTED
    assert batch.failure_reason == BatchFailureReason.INSUFFICIENT_EXPANSION
    assert cert.kind == CertificationKind.PROVISIONAL
    assert cert.justification.startswith("Insufficient")


def test_rejection_needs_a_reason(make_batch, qp):
    with pytest.raises(InvalidInput, match="Reason"):
        certification_reject(actor=qp, batch=make_batch(), reason="  ", failure_reason="other", password=PASSWORD)


def test_single_stage_products_need_every_result_in_one_certification(make_batch, product, qc_analyst, qc_reviewer, qp):
    product.release_model = ReleaseModel.SINGLE
    product.save()
    batch = make_batch()
    enter_and_review(batch, PROVISIONAL_CODES, qc_analyst, qc_reviewer)

    with pytest.raises(NotReady, match="single certification"):
        provisional(batch, qp)
    with pytest.raises(NotReady, match="Sterility: no result yet"):
        final(batch, qp)
    enter_and_review(batch, LATE_CODES, qc_analyst, qc_reviewer)
    cert = final(batch, qp)

    batch.refresh_from_db()
    assert cert.kind == CertificationKind.SINGLE
    assert batch.state == BatchState.RELEASED


def test_a_failing_result_before_release_opens_a_major_oos_deviation(make_batch, qc_analyst):
    batch = make_batch()
    result = enter(batch, "viability", qc_analyst, outcome=FAILING)

    assert result.oos.deviation.classification == DeviationClass.MAJOR
    assert result.oos.deviation.source == DeviationSource.OOS
    assert result.oos.deviation.status == DeviationStatus.OPEN


@pytest.mark.parametrize("code", ["sterility", "mycoplasma", "endotoxin"])
def test_a_failing_microbial_safety_result_opens_a_critical_deviation(make_batch, qc_analyst, code):
    result = enter(make_batch(), code, qc_analyst, outcome=FAILING)

    assert result.oos.deviation.classification == DeviationClass.CRITICAL


def test_each_certification_asks_for_its_signed_batch_record(ready_batch, qp, django_capture_on_commit_callbacks):
    from qc.models import BatchRecordDocument, DocumentPurpose

    with django_capture_on_commit_callbacks() as callbacks:
        cert = provisional(ready_batch, qp)

    [document] = BatchRecordDocument.objects.filter(certification=cert)
    assert document.purpose == DocumentPurpose.CERTIFICATION_PROVISIONAL
    assert callbacks  # the generation task is queued once the certification is committed


def test_a_refused_certification_asks_for_no_record(make_batch, qp):
    from qc.models import BatchRecordDocument

    with pytest.raises(NotReady):
        provisional(make_batch(), qp)
    assert not BatchRecordDocument.objects.exists()
