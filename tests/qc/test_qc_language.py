"""QC refusals and the release checklist speak the reader's language; what is recorded
(the error's message, the certification's checklist, the audit trail) stays English."""

from __future__ import annotations

import datetime as dt

import pytest
from django.urls import reverse
from django.utils import timezone, translation

from carmfg.accounts.services import profile_language_set
from carmfg.audit.models import Action, AuditEvent
from qc.checklist import release_checklist
from qc.exceptions import NotReady
from qc.models import Alert, Certification, CertificationKind
from qc.services.results import results_overdue_flag
from qc.verification import verify_record
from tests.conftest import PASSWORD
from tests.qc.conftest import enter


@pytest.fixture
def russian(client_for):
    def login(user):
        profile_language_set(actor=user, language="ru")
        return client_for(user)

    return login


def test_a_refused_result_with_values_reads_in_russian_and_the_error_keeps_english(
        make_batch, qc_analyst, russian):
    batch = make_batch()
    enter(batch, "viability", qc_analyst)
    test = batch.specification_pin.specification.tests.get(code="viability")

    response = russian(qc_analyst).post(reverse("qc:result_enter", args=[batch.pk]), {
        "test": test.pk, "value": "80.0", "unit": "% of nucleated cells", "password": PASSWORD})

    assert response.status_code == 409
    page = response.content.decode()
    assert f"У Viability уже есть действительный результат для серии {batch.number}." in page
    assert "already has a valid result" not in page
    with translation.override("ru"), pytest.raises(NotReady) as refused:
        enter(batch, "viability", qc_analyst)
    assert refused.value.message.startswith(f"Viability already has a valid result for batch {batch.number}.")


def test_a_failing_checklist_item_and_the_refusal_read_in_russian(make_batch, qp, russian):
    batch = make_batch()  # no QC result yet
    client = russian(qp)

    page = client.get(reverse("qc:batch_release", args=[batch.pk])).content.decode()
    refused = client.post(reverse("qc:certify", args=[batch.pk]), {
        "kind": "provisional", "version": batch.version, "password": PASSWORD})

    assert "Viability: результата пока нет." in page
    assert "Результаты ОКК" in page  # the item's title
    assert "no result yet" not in page
    assert refused.status_code == 409
    text = refused.content.decode()
    assert "Сертификация отклонена. Результаты ОКК: " in text
    assert "Certification refused" not in text


def test_a_russian_qp_signs_the_checklist_they_read_and_the_record_keeps_it_in_english(
        make_batch, qc_passed, qp, russian):
    batch = make_batch()
    qc_passed(batch)
    client = russian(qp)
    page = client.get(reverse("qc:batch_release", args=[batch.pk])).content.decode()
    assert f"DIN {batch.donation.din}: приёмка принята" in page
    fingerprint = release_checklist(batch, kind=CertificationKind.PROVISIONAL).fingerprint

    response = client.post(reverse("qc:certify", args=[batch.pk]), {
        "kind": "provisional", "version": batch.version, "checklist": fingerprint, "password": PASSWORD})

    assert response.status_code == 302
    cert = Certification.objects.get(batch=batch)
    identity = next(item for item in cert.checklist if item["code"] == "identity")
    assert identity["title"] == "Chain of identity"
    assert identity["message"].startswith(f"DIN {batch.donation.din}: intake accepted; labels printed ")
    event = AuditEvent.objects.get(object_type="qc.certification", object_id=str(cert.pk), action=Action.CREATE)
    assert event.changes["checklist"] == cert.checklist


def test_an_overdue_alert_reads_in_the_recipients_language_and_stays_english_in_the_record(
        make_batch, qp, russian):
    batch = make_batch()
    results_overdue_flag(now=timezone.now() + dt.timedelta(days=2))
    viability = batch.specification_pin.specification.tests.get(code="viability")
    alert = Alert.objects.get(recipient=qp, key=f"overdue:{batch.pk}:{viability.pk}")

    page = russian(qp).get(reverse("qc:alerts")).content.decode()

    assert alert.title == f"Overdue: Viability of batch {batch.number}"
    assert alert.message.startswith(f"The Viability result of batch {batch.number} was expected on ")
    event = AuditEvent.objects.get(object_type="qc.alert", object_id=str(alert.pk))
    assert event.changes["title"] == alert.title
    assert alert.title_text in page
    assert alert.message_text in page
    assert alert.title not in page
    assert batch.number in alert.title_text


def test_the_verify_page_states_its_findings_in_the_readers_language(auditor, russian):
    from django.core.files.uploadedfile import SimpleUploadedFile

    client = russian(auditor)
    response = client.post(reverse("qc:record_verify"),
                           {"file": SimpleUploadedFile("r.pdf", b"not a pdf", "application/pdf")})

    page = response.content.decode()
    assert response.status_code == 200
    assert not response.context["verdict"].ok
    assert "SHA-256 этого файла" in page
    assert "not one the system issued" not in page
    assert verify_record(b"not a pdf").problems[0] == (
        "this file's SHA-256 is not one the system issued (changed, re-saved or not ours)")
