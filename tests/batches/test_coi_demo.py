"""The chain-of-identity demo is made through the services and can be run again."""

from __future__ import annotations

from batches.demo_coi import DEMO_PATIENTS, seed_coi_demo
from batches.models import (
    ApheresisIntake,
    Batch,
    CustodyEvent,
    IntakeOutcome,
    Label,
    LabelStatus,
    OrderStatus,
    Patient,
)
from carmfg.audit.models import Action, AuditEvent


def _counts():
    return (Patient.objects.count(), Label.objects.count(), CustodyEvent.objects.count(),
            ApheresisIntake.objects.count(), Batch.objects.count(), AuditEvent.objects.count())


def test_the_demo_shows_each_point_of_the_chain_and_runs_again_without_adding_anything(
    site, coordinator, technician, qp, site_admin, product, small_mbr
):
    seed_coi_demo(site=site, log=lambda _line: None)
    first = _counts()
    seed_coi_demo(site=site, log=lambda _line: None)

    assert _counts() == first
    by_story = {spec.story: Patient.objects.get(hospital_record_number=spec.hospital_record_number)
                for spec in DEMO_PATIENTS}
    assert by_story["ordered"].orders.get().status == OrderStatus.REGISTERED
    labelled = by_story["labelled"].orders.get().donation
    assert labelled.labels.get().status == LabelStatus.PRINTED
    accepted = by_story["accepted"].orders.get().donation
    assert accepted.intake.outcome == IntakeOutcome.ACCEPTED
    assert accepted.batch.mbr == small_mbr
    assert AuditEvent.objects.filter(action=Action.BLOCKED, root_id=str(accepted.pk)).count() == 1
    outside = by_story["outside"].orders.get().donation
    assert outside.intake.outcome == IntakeOutcome.PENDING


def test_without_an_effective_mbr_the_demo_leaves_the_accepted_intake_for_later(
    site, coordinator, technician, qp, site_admin, product
):
    seed_coi_demo(site=site, log=lambda _line: None)

    assert not Batch.objects.exists()
    assert ApheresisIntake.objects.get().outcome == IntakeOutcome.PENDING
