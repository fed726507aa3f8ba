"""The signed records on the release page: listed with their progress for QPs and
auditors, downloadable once signed, a fresh export on request; hidden from everyone else."""

from __future__ import annotations

import hashlib
import uuid

import pytest
from django.urls import reverse

from qc import documents
from qc.models import BatchRecordDocument, DocumentPurpose, DocumentStatus
from tests.conftest import assert_hidden
from tests.qc.record_fixtures import (  # noqa: F401
    eager_celery_fixture,
    record_batch_fixture,
    record_pki_fixture,
    record_settings_fixture,
    record_tsa_fixture,
)

pytestmark = pytest.mark.django_db


def _signed_record(auditor, batch, capture) -> BatchRecordDocument:
    with capture(execute=True):
        document = documents.batch_record_request(actor=auditor, batch=batch, purpose=DocumentPurpose.EXPORT)
    document.refresh_from_db()
    assert document.status == DocumentStatus.DONE, document.failure_reason
    return document


def test_a_signed_record_is_listed_on_the_release_page_and_downloads_with_the_stored_hash(
    record_settings, record_batch, auditor, qp, eager_celery, django_capture_on_commit_callbacks, client_for
):
    document = _signed_record(auditor, record_batch, django_capture_on_commit_callbacks)
    page = client_for(qp).get(reverse("qc:batch_release", args=[record_batch.pk]))
    assert page.status_code == 200
    html = page.content.decode()
    assert "Signed batch records" in html
    assert reverse("qc:record_download", args=[document.pk]) in html
    assert 'hx-trigger="every 2s"' not in html  # nothing is being made: no polling

    response = client_for(auditor).get(reverse("qc:record_download", args=[document.pk]))
    assert response.status_code == 200
    assert response["Content-Type"] == "application/pdf"
    assert f"batch-record-{record_batch.number}-v1.pdf" in response["Content-Disposition"]
    assert hashlib.sha256(b"".join(response.streaming_content)).hexdigest() == document.sha256


def test_a_record_being_made_shows_its_progress_and_the_panel_polls_until_it_is_signed(
    record_batch, auditor, client_for
):
    from carmfg.celery import app

    saved = app.conf.task_always_eager
    app.conf.task_always_eager = True  # queued, but the task is not run: on_commit never fires in this test
    try:
        document = documents.batch_record_request(actor=auditor, batch=record_batch, purpose=DocumentPurpose.EXPORT)
    finally:
        app.conf.task_always_eager = saved
    html = client_for(auditor).get(reverse("qc:records_panel", args=[record_batch.pk])).content.decode()
    assert document.status == DocumentStatus.QUEUED
    assert 'hx-trigger="every 2s"' in html
    assert '<progress max="4" value="1"' in html
    assert client_for(auditor).get(reverse("qc:record_download", args=[document.pk])).status_code == 404


def test_an_auditor_requests_an_export_once_even_when_the_form_is_sent_twice(
    record_settings, record_batch, auditor, eager_celery, django_capture_on_commit_callbacks, client_for
):
    client = client_for(auditor)
    request_id = str(uuid.uuid4())
    url = reverse("qc:record_export", args=[record_batch.pk])
    with django_capture_on_commit_callbacks(execute=True):
        first = client.post(url, {"request_id": request_id})
        second = client.post(url, {"request_id": request_id})
    assert first.status_code == second.status_code == 302
    documents_made = BatchRecordDocument.objects.filter(batch=record_batch)
    assert [(d.purpose, d.status) for d in documents_made] == [(DocumentPurpose.EXPORT, DocumentStatus.DONE)]


def test_a_malformed_request_id_is_refused_with_a_message_and_nothing_is_queued(record_batch, auditor, client_for):
    response = client_for(auditor).post(reverse("qc:record_export", args=[record_batch.pk]),
                                        {"request_id": "not-a-uuid"}, follow=True)
    assert response.status_code == 200
    assert "request id is not valid" in response.content.decode()
    assert not BatchRecordDocument.objects.exists()


def test_people_who_may_not_read_the_records_get_404_and_see_no_panel(
    record_settings, record_batch, auditor, technician, other_site_user, eager_celery,
    django_capture_on_commit_callbacks, client_for
):
    document = _signed_record(auditor, record_batch, django_capture_on_commit_callbacks)
    stranger = client_for(other_site_user)
    for url in (reverse("qc:record_download", args=[document.pk]), reverse("qc:records_panel", args=[record_batch.pk])):
        assert_hidden(stranger, url, methods=("get",))
    assert_hidden(stranger, reverse("qc:record_export", args=[record_batch.pk]), methods=("post",))
    own_site = client_for(technician)
    assert own_site.get(reverse("qc:record_download", args=[document.pk])).status_code == 404
    page = own_site.get(reverse("qc:batch_release", args=[record_batch.pk])).content.decode()
    assert "Signed batch records" not in page
    refused = own_site.post(reverse("qc:record_export", args=[record_batch.pk]), follow=True)
    assert BatchRecordDocument.objects.filter(batch=record_batch).count() == 1
    assert "export batch records" in refused.content.decode() or refused.status_code in (403, 404)
