"""QC samples: from the batch's sampling steps, labelled with its DIN, received by QC
with a scan of that label (a wrong label blocks and is audited)."""

from __future__ import annotations

import datetime as dt

import pytest
from django.urls import reverse

from batches.exceptions import IdentityMismatch, NotReady
from batches.models import ContainerType, CustodyEvent, CustodyStep, Label, LabelStatus
from batches.services.labels import label_reconciliation, labels_print
from carmfg.audit.models import Action, AuditEvent
from carmfg.exceptions import InvalidInput, PermissionRefused
from qc.checklist import OK, release_checklist
from qc.models import CertificationKind, Sample
from qc.selectors import batch_test_status
from qc.services.samples import (
    sample_create,
    sample_label_apply,
    sample_label_pdf,
    sample_receive,
    samples_create_from_steps,
)
from tests.conftest import assert_hidden


@pytest.fixture
def batch(make_batch):
    return make_batch()


def test_samples_are_created_from_the_sampling_steps_once(batch, qc_analyst, technician):
    created = samples_create_from_steps(actor=qc_analyst, batch=batch)
    again = samples_create_from_steps(actor=qc_analyst, batch=batch)

    [sample] = created
    assert again == []
    assert sample.step_record is not None
    assert sample.label is not None
    assert sample.step_record.definition.code == "qc_sampling"
    assert "sterility" in sample.test_codes
    assert "viability" in sample.test_codes
    assert sample.taken_by == technician
    assert sample.label.container_code == "QC-1"  # the QC-sample label of the batch's DIN


def test_expected_dates_follow_the_sample_date(batch, qc_analyst):
    [sample] = samples_create_from_steps(actor=qc_analyst, batch=batch)
    sterility = batch_test_status(batch).by_code("sterility")

    assert sterility is not None
    assert sterility.sample == sample
    assert sterility.expected_on == sample.taken_at.astimezone(batch.site.zone).date() + dt.timedelta(days=14)


def test_a_sample_is_received_with_a_scan_of_its_label(batch, qc_analyst):
    [sample] = samples_create_from_steps(actor=qc_analyst, batch=batch)

    received = sample_receive(actor=qc_analyst, sample=sample, scanned_code=f"={batch.donation.din}00/QC-1")

    assert received.received_by == qc_analyst
    assert CustodyEvent.objects.filter(donation=batch.donation, step=CustodyStep.QC_HANDOVER).exists()
    with pytest.raises(NotReady, match="already received"):
        sample_receive(actor=qc_analyst, sample=sample, scanned_code=f"={batch.donation.din}00/QC-1")


def test_a_sample_of_another_donation_is_blocked_and_audited(batch, make_batch, qc_analyst):
    other = make_batch()
    [sample] = samples_create_from_steps(actor=qc_analyst, batch=batch)

    with pytest.raises(IdentityMismatch, match="another donation"):
        sample_receive(actor=qc_analyst, sample=sample, scanned_code=f"={other.donation.din}00/QC-1")

    sample.refresh_from_db()
    assert sample.received_at is None
    assert AuditEvent.objects.filter(action=Action.BLOCKED, root_id=str(batch.donation.pk),
                                     root_type="batches.donation").exists()
    # Until the right label is scanned, the blocked hand-over is an unresolved mismatch.
    assert release_checklist(batch, kind=CertificationKind.PROVISIONAL).item("identity").status != OK
    sample_receive(actor=qc_analyst, sample=sample, scanned_code=f"={batch.donation.din}00/QC-1")
    assert release_checklist(batch, kind=CertificationKind.PROVISIONAL).item("identity").status == OK


def test_an_unreadable_scan_is_refused(batch, qc_analyst):
    [sample] = samples_create_from_steps(actor=qc_analyst, batch=batch)

    with pytest.raises(IdentityMismatch):
        sample_receive(actor=qc_analyst, sample=sample, scanned_code="hello")


def test_qc_registers_a_sample_for_tests_of_the_specification_only(batch, qc_analyst):
    sample = sample_create(actor=qc_analyst, batch=batch, test_codes=["sterility"], sample_type="Retest sample")

    assert sample.test_codes == ["sterility"]
    with pytest.raises(InvalidInput, match="Not tests of"):
        sample_create(actor=qc_analyst, batch=batch, test_codes=["rcl"], sample_type="x")
    with pytest.raises(InvalidInput):
        sample_create(actor=qc_analyst, batch=batch, test_codes=[], sample_type="x")
    assert Sample.objects.filter(batch=batch).count() == 1


def test_only_qc_handles_samples(batch, technician):
    with pytest.raises(PermissionRefused):
        samples_create_from_steps(actor=technician, batch=batch)


# --- samples QC takes by hand (e.g. a retest) and their labels ------------------------------------


def test_a_free_applied_qc_sample_label_is_used_before_a_new_one_is_printed(batch, qc_analyst):
    sample = sample_create(actor=qc_analyst, batch=batch, test_codes=["viability"], sample_type="Retest sample")

    assert sample.label is not None
    assert sample.label.container_code == "QC-1"
    assert Label.objects.filter(donation=batch.donation, container_type=ContainerType.QC_SAMPLE).count() == 1


def test_a_retest_sample_gets_a_new_qc_sample_label_printed_for_it(batch, qc_analyst):
    samples_create_from_steps(actor=qc_analyst, batch=batch)  # takes QC-1

    sample = sample_create(actor=qc_analyst, batch=batch, test_codes=["viability"], sample_type="Retest sample")

    label = sample.label
    assert label is not None
    assert (label.container_code, label.status, label.container_type) == ("QC-2", LabelStatus.PRINTED,
                                                                          ContainerType.QC_SAMPLE)
    assert label.donation_id == batch.donation_id
    assert AuditEvent.objects.filter(action=Action.PRINT, object_type="batches.label", object_id=str(label.pk)).exists()
    # Printed and not yet applied: the reconciliation shows it outstanding until it is on the tube.
    assert "QC-2" in label_reconciliation(batch.donation).outstanding


def test_a_retest_sample_is_received_only_once_its_label_is_applied(batch, qc_analyst):
    samples_create_from_steps(actor=qc_analyst, batch=batch)
    sample = sample_create(actor=qc_analyst, batch=batch, test_codes=["viability"], sample_type="Retest sample")
    scan = f"={batch.donation.din}00/QC-2"

    with pytest.raises(IdentityMismatch, match="never recorded as applied"):
        sample_receive(actor=qc_analyst, sample=sample, scanned_code=scan)
    sample_label_apply(actor=qc_analyst, sample=sample)
    received = sample_receive(actor=qc_analyst, sample=sample, scanned_code=scan)

    assert received.received_by == qc_analyst
    assert label_reconciliation(batch.donation).balanced


def test_a_sample_label_is_printed_only_before_it_is_applied_and_each_print_is_audited(batch, qc_analyst):
    samples_create_from_steps(actor=qc_analyst, batch=batch)
    sample = sample_create(actor=qc_analyst, batch=batch, test_codes=["viability"], sample_type="Retest sample")
    prints = AuditEvent.objects.filter(action=Action.PRINT, object_id=str(sample.label_id)).count()

    pdf = sample_label_pdf(actor=qc_analyst, sample=sample)

    assert pdf.startswith(b"%PDF")
    assert AuditEvent.objects.filter(action=Action.PRINT, object_id=str(sample.label_id)).count() == prints + 1
    sample_label_apply(actor=qc_analyst, sample=sample)
    with pytest.raises(NotReady, match="printed only before it is applied"):
        sample_label_pdf(actor=qc_analyst, sample=sample)


def test_qc_prints_only_qc_sample_labels(batch, qc_analyst):
    with pytest.raises(PermissionRefused):
        labels_print(actor=qc_analyst, donation=batch.donation, container_type=ContainerType.APHERESIS_BAG)


def test_another_sites_user_cannot_register_or_print_sample_labels(batch, qc_analyst, other_site_user):
    samples_create_from_steps(actor=qc_analyst, batch=batch)
    sample = sample_create(actor=qc_analyst, batch=batch, test_codes=["viability"], sample_type="Retest sample")

    with pytest.raises(PermissionRefused):
        sample_create(actor=other_site_user, batch=batch, test_codes=["viability"], sample_type="Retest sample")
    with pytest.raises(PermissionRefused):
        sample_label_pdf(actor=other_site_user, sample=sample)
    with pytest.raises(PermissionRefused):
        sample_label_apply(actor=other_site_user, sample=sample)


# --- the pages ----------------------------------------------------------------------------------


def test_qc_registers_a_retest_sample_prints_its_label_and_receives_it_through_the_pages(batch, qc_analyst, client_for):
    samples_create_from_steps(actor=qc_analyst, batch=batch)
    client = client_for(qc_analyst)

    response = client.post(reverse("qc:sample_register", args=[batch.pk]),
                           {"tests": ["viability", "cd3"], "sample_type": "Retest sample, final product"})
    assert response.status_code == 302
    sample = Sample.objects.get(batch=batch, sample_type="Retest sample, final product")
    assert sample.test_codes == ["cd3", "viability"]

    pdf = client.get(reverse("qc:sample_label", args=[sample.pk]))
    assert pdf.status_code == 200
    assert pdf["Content-Type"] == "application/pdf"
    assert client.post(reverse("qc:sample_label_apply", args=[sample.pk])).status_code == 302
    received = client.post(reverse("qc:sample_receive", args=[sample.pk]),
                           {"scanned_code": f"={batch.donation.din}00/QC-2"})
    assert received.status_code == 302
    sample.refresh_from_db()
    assert sample.received_by == qc_analyst


@pytest.mark.parametrize(("data", "message"), [
    ({"sample_type": "Retest"}, "Choose at least one test"),
    ({"tests": ["rcl"], "sample_type": "Retest"}, "Not tests of the batch"),
    ({"tests": ["viability"], "sample_type": ""}, "Sample type"),
    ({"tests": ["viability"], "sample_type": "x\x00y"}, "Sample type"),
])
def test_bad_sample_registration_is_a_message_and_registers_nothing(batch, qc_analyst, client_for, data, message):
    response = client_for(qc_analyst).post(reverse("qc:sample_register", args=[batch.pk]), data)

    assert response.status_code == 400
    assert message in response.content.decode()
    assert not Sample.objects.filter(batch=batch).exists()


def test_an_applied_label_is_not_printed_again_from_the_page(batch, qc_analyst, client_for):
    sample = sample_create(actor=qc_analyst, batch=batch, test_codes=["viability"], sample_type="Retest sample")

    response = client_for(qc_analyst).get(reverse("qc:sample_label", args=[sample.pk]), follow=True)

    assert response.redirect_chain
    assert "printed only before it is applied" in response.content.decode()


def test_sample_registration_and_labels_are_hidden_from_another_site(batch, qc_analyst, client_for, other_site_user):
    sample = sample_create(actor=qc_analyst, batch=batch, test_codes=["viability"], sample_type="Retest sample")
    client = client_for(other_site_user)

    assert_hidden(client, reverse("qc:sample_register", args=[batch.pk]), methods=("post",))
    assert_hidden(client, reverse("qc:sample_label", args=[sample.pk]), methods=("get",))
    assert_hidden(client, reverse("qc:sample_label_apply", args=[sample.pk]), methods=("post",))
    assert Sample.objects.filter(batch=batch).count() == 1


def test_a_technician_cannot_register_qc_samples(batch, technician, client_for):
    response = client_for(technician).post(reverse("qc:sample_register", args=[batch.pk]),
                                           {"tests": ["viability"], "sample_type": "Retest"})

    assert response.status_code == 403
    assert not Sample.objects.filter(batch=batch).exists()


def test_the_qc_page_offers_registration_and_the_label_steps_of_a_new_label(batch, qc_analyst, client_for):
    samples_create_from_steps(actor=qc_analyst, batch=batch)
    sample = sample_create(actor=qc_analyst, batch=batch, test_codes=["viability"], sample_type="Retest sample")
    client = client_for(qc_analyst)

    page = client.get(reverse("qc:batch", args=[batch.pk])).content.decode()

    assert reverse("qc:sample_register", args=[batch.pk]) in page
    assert reverse("qc:sample_label", args=[sample.pk]) in page
    assert reverse("qc:sample_label_apply", args=[sample.pk]) in page
    assert reverse("qc:sample_receive", args=[sample.pk]) not in page  # the label goes on the tube first
    sample_label_apply(actor=qc_analyst, sample=sample)
    page = client.get(reverse("qc:batch", args=[batch.pk])).content.decode()
    assert reverse("qc:sample_receive", args=[sample.pk]) in page
    assert reverse("qc:sample_label", args=[sample.pk]) not in page
