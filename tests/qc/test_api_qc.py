"""The QC API: results entered and reviewed through the QC services (signatures with the
password re-entered), certifications read, signed batch records listed, requested and
downloaded by those who may read the site's records. Other sites: 404."""

from __future__ import annotations

import hashlib
import json

import pytest
from django.test import Client

from carmfg.accounts.tokens import api_token_create
from carmfg.audit.models import Action, AuditEvent
from carmfg.esign.models import Meaning, Signature
from qc.models import BatchRecordDocument, DocumentStatus, TestDefinition, TestResult
from qc.services.release import certification_provisional_sign
from tests.conftest import PASSWORD
from tests.qc.conftest import enter
from tests.qc.record_fixtures import (  # noqa: F401
    eager_celery_fixture,
    record_batch_fixture,
    record_pki_fixture,
    record_settings_fixture,
    record_tsa_fixture,
)

PROBLEM = "application/problem+json"


def post(client: Client, url: str, body, **headers):
    return client.post(url, json.dumps(body), content_type="application/json", headers=headers)


def assert_problem(response, status: int, field: str | None = None) -> dict:
    assert response.status_code == status, response.content
    assert response["Content-Type"] == PROBLEM
    body = response.json()
    if field is not None:
        assert field in [e["field"] for e in body["errors"]], body
    return body


def test_of(batch, code: str) -> TestDefinition:
    return TestDefinition.objects.get(specification=batch.specification_pin.specification, code=code)


test_of.__test__ = False  # type: ignore[attr-defined]


@pytest.fixture
def batch(make_batch):
    return make_batch()


def test_an_analyst_enters_a_result_signed_with_the_password(batch, qc_analyst):
    _, token = api_token_create(actor=qc_analyst, name="LIMS")
    client = Client(HTTP_AUTHORIZATION=f"Token {token}")
    response = post(client, f"/api/v1/batches/{batch.pk}/qc-results/", {
        "test": test_of(batch, "viability").pk, "raw_value": "85.0", "unit": "% of nucleated cells",
        "password": PASSWORD,
    })
    assert response.status_code == 201, response.content
    body = response.json()
    assert (body["evaluation"], body["status"]) == ("pass", "entered")
    assert [s["meaning"] for s in body["signatures"]] == [Meaning.PERFORMED]
    result = TestResult.objects.get(pk=body["id"])
    assert AuditEvent.objects.filter(object_type="qc.testresult", object_id=str(result.pk), action=Action.CREATE).exists()
    listed = client.get(f"/api/v1/batches/{batch.pk}/qc-results/").json()["results"]
    assert [r["test_code"] for r in listed] == ["viability"]


def test_results_are_refused_to_other_roles_and_bad_input_is_a_field_problem(batch, technician, qc_analyst,
                                                                            client_for):
    body = {"test": test_of(batch, "viability").pk, "raw_value": "85.0", "unit": "% of nucleated cells",
            "password": PASSWORD}
    assert_problem(post(client_for(technician), f"/api/v1/batches/{batch.pk}/qc-results/", body), 403)
    client = client_for(qc_analyst)
    assert_problem(post(client, f"/api/v1/batches/{batch.pk}/qc-results/", {**body, "raw_value": "8\x005"}), 400)
    assert_problem(post(client, f"/api/v1/batches/{batch.pk}/qc-results/", {**body, "test": 2**31 - 1}), 400, "test")
    assert_problem(post(client, f"/api/v1/batches/{batch.pk}/qc-results/", {**body, "test": "x"}), 400, "test")
    assert not TestResult.objects.exists()


def test_a_second_analyst_reviews_with_if_match_and_the_analyst_may_not(batch, qc_analyst, qc_reviewer, client_for):
    result = enter(batch, "viability", qc_analyst)
    own = client_for(qc_analyst)
    etag = own.get(f"/api/v1/qc-results/{result.pk}/")["ETag"]
    assert_problem(post(own, f"/api/v1/qc-results/{result.pk}/review/", {"password": PASSWORD}, **{"If-Match": etag}),
                   403)
    reviewer = client_for(qc_reviewer)
    response = post(reviewer, f"/api/v1/qc-results/{result.pk}/review/", {"password": PASSWORD}, **{"If-Match": etag})
    assert response.status_code == 200, response.content
    assert response.json()["status"] == "reviewed"
    assert Signature.objects.filter(object_id=str(result.pk), meaning=Meaning.REVIEWED, signer=qc_reviewer).exists()
    stale = post(reviewer, f"/api/v1/qc-results/{result.pk}/review/", {"password": PASSWORD}, **{"If-Match": etag})
    assert_problem(stale, 412)


def test_another_sites_results_and_batches_are_not_found(batch, qc_analyst, other_site_user, client_for):
    result = enter(batch, "viability", qc_analyst)
    client = client_for(other_site_user)
    for url in (f"/api/v1/qc-results/{result.pk}/", f"/api/v1/batches/{batch.pk}/qc-results/",
                f"/api/v1/batches/{batch.pk}/certifications/", f"/api/v1/batches/{batch.pk}/records/"):
        assert_problem(client.get(url), 404)
    assert_problem(post(client, f"/api/v1/qc-results/{result.pk}/review/", {"password": PASSWORD, "version": 1}), 404)


def test_certifications_are_read_by_the_site_only(batch, qc_passed, qp, auditor, other_site_user, client_for):
    qc_passed(batch)
    batch.refresh_from_db()
    certification = certification_provisional_sign(actor=qp, batch=batch, password=PASSWORD,
                                                   expected_version=batch.version)
    rows = client_for(auditor).get(f"/api/v1/batches/{batch.pk}/certifications/").json()
    assert [(r["id"], r["kind"], r["qp"]) for r in rows] == [(certification.pk, certification.kind, "qp")]
    assert rows[0]["decision"] == certification.decision
    assert rows[0]["checklist"]
    assert_problem(client_for(other_site_user).get(f"/api/v1/batches/{batch.pk}/certifications/"), 404)


def test_an_auditor_requests_and_downloads_the_signed_record_with_a_token(
    record_settings, record_batch, auditor, eager_celery, django_capture_on_commit_callbacks
):
    _, token = api_token_create(actor=auditor, name="archive")
    client = Client(HTTP_AUTHORIZATION=f"Token {token}")
    with django_capture_on_commit_callbacks(execute=True):
        response = post(client, f"/api/v1/batches/{record_batch.pk}/records/", {})
    assert response.status_code == 202, response.content
    document = BatchRecordDocument.objects.get(pk=response.json()["id"])
    detail = client.get(f"/api/v1/batch-records/{document.pk}/").json()
    assert detail["status"] == DocumentStatus.DONE
    assert detail["download"] == f"/api/v1/batch-records/{document.pk}/download/"
    pdf = client.get(detail["download"]).getvalue()
    assert pdf.startswith(b"%PDF")
    assert hashlib.sha256(pdf).hexdigest() == detail["sha256"]
    listed = client.get(f"/api/v1/batches/{record_batch.pk}/records/").json()["results"]
    assert [r["id"] for r in listed] == [document.pk]


def test_a_repeated_request_id_gives_the_same_record(record_batch, auditor, client_for):
    client = client_for(auditor)
    key = "6f1c7f5e-2a7e-4c55-9d2c-1d0c6f1f0a11"
    first = post(client, f"/api/v1/batches/{record_batch.pk}/records/", {"request_id": key})
    again = post(client, f"/api/v1/batches/{record_batch.pk}/records/", {"request_id": key})
    assert first.json()["id"] == again.json()["id"]
    assert BatchRecordDocument.objects.count() == 1
    assert_problem(post(client, f"/api/v1/batches/{record_batch.pk}/records/", {"request_id": "not-a-uuid"}), 400,
                   "request_id")


def test_records_are_for_auditors_and_qps_only(record_batch, technician, coordinator, client_for):
    for user in (technician, coordinator):
        client = client_for(user)
        assert_problem(post(client, f"/api/v1/batches/{record_batch.pk}/records/", {}), 403)
        assert client.get(f"/api/v1/batches/{record_batch.pk}/records/").json()["results"] == []
    assert not BatchRecordDocument.objects.exists()


def test_a_record_not_signed_yet_or_of_another_site_cannot_be_downloaded(record_batch, auditor, other_site_user,
                                                                         client_for):
    response = post(client_for(auditor), f"/api/v1/batches/{record_batch.pk}/records/", {})
    document_id = response.json()["id"]  # queued: the task runs only after a commit
    assert_problem(client_for(auditor).get(f"/api/v1/batch-records/{document_id}/download/"), 404)
    assert_problem(client_for(other_site_user).get(f"/api/v1/batch-records/{document_id}/"), 404)
