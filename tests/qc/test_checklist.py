"""The release checklist: computed by the server, each item can fail."""

from __future__ import annotations

import datetime as dt

from batches.models import ApheresisIntake, IntakeOutcome, MbrStatus, StepRecord
from qc.checklist import FAILED, NOT_APPLICABLE, OK, release_checklist
from qc.models import CertificationKind
from tests.qc.conftest import LATE_CODES


def items(batch, kind=CertificationKind.PROVISIONAL):
    return {item.code: item for item in release_checklist(batch, kind=kind).items}


def test_a_complete_batch_passes_every_item_of_the_provisional_checklist(make_batch, qc_passed):
    batch = make_batch()
    qc_passed(batch)

    checklist = release_checklist(batch, kind=CertificationKind.PROVISIONAL)

    assert [i.code for i in checklist.items] == ["identity", "steps", "signatures", "deviations", "tests", "dose",
                                                  "versions", "provisional"]
    assert {i.status for i in checklist.items} == {OK, NOT_APPLICABLE}
    assert checklist.ok
    assert {p["tests"][0] for p in checklist.pending_tests} == set(LATE_CODES)


def test_every_item_carries_a_message_and_the_failed_ones_say_what_to_fix(make_batch):
    batch = make_batch()

    checklist = release_checklist(batch, kind=CertificationKind.PROVISIONAL)

    assert all(item.message for item in checklist.items)
    assert checklist.item("tests").status == FAILED
    assert "Viability: no result yet." in checklist.item("tests").details


def test_the_final_checklist_needs_every_test_and_the_provisional_certification(make_batch, qc_passed):
    batch = make_batch()
    qc_passed(batch)

    final = items(batch, CertificationKind.FINAL)

    assert final["tests"].status == FAILED
    assert any("Sterility: no result yet." in d for d in final["tests"].details)
    assert final["provisional"].status == FAILED


def test_a_step_not_recorded_fails_the_steps_item(make_batch, qc_passed):
    batch = make_batch()
    StepRecord.objects.filter(batch=batch, definition__code="qc_sampling").delete()

    assert items(batch)["steps"].status == FAILED
    assert "QC sampling: not recorded." in items(batch)["steps"].message


def test_a_step_needing_verification_fails_without_it(make_batch):
    batch = make_batch(verify=False)

    steps = items(batch)["steps"]
    assert steps.status == FAILED
    assert "Line clearance: needs verification by a second person." in steps.message


def test_an_intake_not_accepted_fails_the_identity_item(make_batch):
    batch = make_batch()
    ApheresisIntake.objects.filter(donation=batch.donation).update(outcome=IntakeOutcome.PENDING)

    assert "not accepted" in items(batch)["identity"].message


def test_a_batch_made_to_a_master_record_not_in_force_fails_the_versions_item(make_batch, mbr):
    batch = make_batch()
    mbr.status = MbrStatus.SUPERSEDED
    mbr.superseded_at = batch.created_at - dt.timedelta(days=1)
    mbr.save()

    assert items(batch)["versions"].status == FAILED


def test_a_batch_without_a_dose_calculation_fails_the_dose_item(make_batch):
    batch = make_batch()
    StepRecord.objects.filter(batch=batch, definition__calculation="dose_per_kg").update(value=None)

    dose = items(batch)["dose"]
    assert dose.status == FAILED
    assert "No dose calculation" in dose.message


def test_the_provisional_item_applies_only_to_the_final_certification(make_batch):
    batch = make_batch()

    assert items(batch, CertificationKind.PROVISIONAL)["provisional"].status == NOT_APPLICABLE
    assert items(batch, CertificationKind.SINGLE)["provisional"].status == NOT_APPLICABLE
    assert items(batch, CertificationKind.FINAL)["provisional"].status == FAILED


def test_the_fingerprint_changes_with_what_the_checklist_says(make_batch, qc_passed):
    batch = make_batch()
    before = release_checklist(batch, kind=CertificationKind.PROVISIONAL).fingerprint
    qc_passed(batch, ["viability"])

    assert release_checklist(batch, kind=CertificationKind.PROVISIONAL).fingerprint != before


def test_the_fingerprint_does_not_change_when_nothing_did(make_batch):
    batch = make_batch()

    assert (release_checklist(batch, kind=CertificationKind.PROVISIONAL).fingerprint
            == release_checklist(batch, kind=CertificationKind.PROVISIONAL).fingerprint)
