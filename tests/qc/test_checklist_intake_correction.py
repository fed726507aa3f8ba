"""The release checklist shows the QP an intake corrected after it was recorded (review
by exception), and a correction that fails the criteria blocks release."""

from __future__ import annotations

from decimal import Decimal

from django.urls import reverse

from batches.models import ApheresisIntake, IntakeCorrection
from batches.services.intake_correction import intake_correct
from carmfg.esign.models import Signature
from qc.checklist import FAILED, OK, release_checklist
from qc.models import CertificationKind
from tests.conftest import PASSWORD


def _correct(technician, batch, **changes):
    intake = ApheresisIntake.objects.get(donation=batch.donation)
    return intake_correct(actor=technician, intake=intake, changes=changes, reason="Typing error at receipt",
                          password=PASSWORD, expected_version=intake.version)


def test_an_uncorrected_intake_reads_as_before(make_batch):
    identity = release_checklist(make_batch(), kind=CertificationKind.PROVISIONAL).item("identity")

    assert identity.status == OK
    assert "corrected" not in identity.message


def test_a_corrected_intake_is_named_in_the_identity_item_with_a_link_to_its_corrections(make_batch, technician):
    batch = make_batch()
    before = release_checklist(batch, kind=CertificationKind.PROVISIONAL)
    correction = _correct(technician, batch, volume_ml=Decimal("205"))

    after = release_checklist(batch, kind=CertificationKind.PROVISIONAL)
    identity = after.item("identity")
    assert identity.status == OK
    assert "its values corrected after recording (1 signed correction(s): read them)" in identity.message
    assert identity.link == reverse("batches:intake_correct", args=[correction.intake_id])
    assert after.fingerprint != before.fingerprint  # a QP never signs the checklist seen before the correction


def test_a_correction_that_fails_the_criteria_blocks_release_through_its_deviation(make_batch, technician):
    batch = make_batch()
    correction = _correct(technician, batch, transport_temperature_c=Decimal("12.0"))

    deviations = release_checklist(batch, kind=CertificationKind.PROVISIONAL).item("deviations")
    assert deviations.status == FAILED
    assert correction.deviation is not None
    assert correction.deviation.number in " ".join([deviations.message, *deviations.details])


def test_a_correction_changed_after_it_was_signed_fails_the_identity_item(make_batch, technician):
    batch = make_batch()
    correction = _correct(technician, batch, volume_ml=Decimal("205"))
    IntakeCorrection.objects.filter(pk=correction.pk).update(reason="Edited in the database after signing")

    identity = release_checklist(batch, kind=CertificationKind.PROVISIONAL).item("identity")

    assert identity.status == FAILED
    assert "Correction 1 of the intake has no valid signature" in " ".join([identity.message, *identity.details])
    assert "signed correction" not in identity.message


def test_a_correction_without_its_signature_fails_the_identity_item(make_batch, technician):
    batch = make_batch()
    correction = _correct(technician, batch, volume_ml=Decimal("205"))
    Signature.objects.filter(object_id=str(correction.pk), content_type__model="intakecorrection").delete()

    identity = release_checklist(batch, kind=CertificationKind.PROVISIONAL).item("identity")

    assert identity.status == FAILED
    assert "Correction 1 of the intake has no valid signature" in " ".join([identity.message, *identity.details])
