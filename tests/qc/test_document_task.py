"""Generating the signed batch record (qc.documents, qc.tasks): idempotent, crash
safe, failures reported; the record says what it must (embedded data, audit head,
page x of y). Celery runs eagerly here; tests with a real worker are in
test_document_task_worker.py."""

from __future__ import annotations

import io
import json
import time
import uuid

import pytest
from django.core.files.storage import default_storage
from pypdf import PdfReader

from carmfg.audit.models import Action, AuditEvent, ChainHead
from carmfg.audit.services import audit_record
from carmfg.canonical import canonical_json
from carmfg.exceptions import PermissionRefused
from qc import documents, pdfsigning
from qc.models import BatchRecordDocument, DocumentPurpose, DocumentStatus
from qc.tasks import MAX_RETRIES, batch_record_generate
from tests.qc.record_fixtures import (  # noqa: F401
    eager_celery_fixture,
    record_batch_fixture,
    record_pki_fixture,
    record_settings_fixture,
    record_tsa_fixture,
)

pytestmark = pytest.mark.django_db


def _request(actor, batch, **kwargs) -> BatchRecordDocument:
    return documents.batch_record_request(actor=actor, batch=batch, purpose=DocumentPurpose.EXPORT, **kwargs)


def _stored_files(settings) -> list:
    root = settings.MEDIA_ROOT
    return sorted(p for p in root.rglob("*") if p.is_file()) if root.exists() else []


def _create_events(document) -> int:
    return AuditEvent.objects.filter(
        object_type="qc.batchrecorddocument", object_id=str(document.pk), action=Action.CREATE
    ).count()


def test_request_queues_the_record_and_the_task_makes_it_after_commit(
    record_settings, record_batch, auditor, eager_celery, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        document = _request(auditor, record_batch)
        assert document.status == DocumentStatus.QUEUED  # nothing runs before the commit

    document.refresh_from_db()
    assert document.status == DocumentStatus.DONE
    assert document.attempts == 1
    assert document.celery_task_id
    assert document.requested_by == auditor
    assert document.file.name
    assert default_storage.exists(document.file.name)
    with document.file.open("rb") as fh:
        signed = fh.read()
    assert documents.hashlib.sha256(signed).hexdigest() == document.sha256
    assert document.size_bytes == len(signed)


def test_generating_twice_leaves_one_document_one_file_and_one_audit_event(record_settings, record_batch, auditor):
    document = _request(auditor, record_batch)

    first = batch_record_generate.apply(args=[document.pk]).get()
    second = batch_record_generate.apply(args=[document.pk]).get()

    assert first == second == {"document": document.pk, "status": "done", "sha256": first["sha256"]}
    assert BatchRecordDocument.objects.filter(batch=record_batch).count() == 1
    assert len(_stored_files(record_settings)) == 1
    document.refresh_from_db()
    assert document.attempts == 1
    assert _create_events(document) == 1


def test_the_same_request_id_or_certification_gives_the_same_document(record_settings, record_batch, auditor):
    request_id = uuid.uuid4()

    first = _request(auditor, record_batch, request_id=request_id)
    again = _request(auditor, record_batch, request_id=str(request_id))
    other = _request(auditor, record_batch)

    assert again.pk == first.pk
    assert other.pk != first.pk
    assert (first.version, other.version) == (1, 2)


def test_only_people_who_may_read_the_audit_trail_export_records(record_settings, record_batch, technician):
    with pytest.raises(PermissionRefused):
        _request(technician, record_batch)
    assert not BatchRecordDocument.objects.exists()


def test_a_killed_run_is_completed_once_by_the_next_delivery(record_settings, record_batch, auditor):
    document = _request(auditor, record_batch)
    # What a worker killed between writing the file and committing leaves behind:
    # the row still "signing", a file (maybe partial) under the record's fixed name.
    BatchRecordDocument.objects.filter(pk=document.pk).update(status=DocumentStatus.SIGNING, attempts=1)
    name = documents.storage_name(BatchRecordDocument.objects.get(pk=document.pk))
    default_storage.save(name, io.BytesIO(b"%PDF-1.7 half written"))

    batch_record_generate.apply(args=[document.pk]).get()

    document.refresh_from_db()
    assert document.status == DocumentStatus.DONE
    assert document.attempts == 2
    assert document.file.name == name
    assert [p.name for p in _stored_files(record_settings)] == [name.rsplit("/", 1)[1]]
    with document.file.open("rb") as fh:
        assert documents.hashlib.sha256(fh.read()).hexdigest() == document.sha256
    assert _create_events(document) == 1


def test_storage_failure_marks_the_record_failed_after_retries_and_points_at_no_file(
    record_settings, record_batch, auditor, tmp_path
):
    record_settings.CARMFG_TSA_URL = None  # six attempts: keep each one short
    document = _request(auditor, record_batch)
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("a file where the media directory should be")
    record_settings.MEDIA_ROOT = blocker  # every save raises OSError (NotADirectoryError)

    result = batch_record_generate.apply(args=[document.pk], throw=False)

    assert result.failed()
    assert isinstance(result.result, OSError)
    document.refresh_from_db()
    assert document.status == DocumentStatus.FAILED
    assert document.attempts == MAX_RETRIES + 1
    assert "NotADirectoryError" in document.failure_reason
    assert f"gave up after {MAX_RETRIES + 1} attempts" in document.failure_reason
    assert document.file.name == ""
    assert document.sha256 == ""
    assert _create_events(document) == 0

    # A failed record stays failed, even once storage works again; a new request
    # makes the next version.
    record_settings.MEDIA_ROOT = tmp_path / "media"
    assert batch_record_generate.apply(args=[document.pk]).get()["status"] == "failed"
    again = _request(auditor, record_batch)
    assert batch_record_generate.apply(args=[again.pk]).get()["status"] == "done"
    assert again.version == 2
    assert len(_stored_files(record_settings)) == 1


def test_the_record_carries_its_data_the_audit_head_and_page_numbers(record_settings, record_pki, record_batch, auditor):
    for n in range(3):
        audit_record(actor=auditor, action=Action.UPDATE, obj=record_batch, changes={"note": {"old": n, "new": n + 1}},
                     reason=f"test change {n}")
    document = _request(auditor, record_batch)
    head = ChainHead.objects.get(chain=record_batch.site_id)

    started = time.perf_counter()
    batch_record_generate.apply(args=[document.pk]).get()
    generate_s = time.perf_counter() - started

    document.refresh_from_db()
    with document.file.open("rb") as fh:
        signed = fh.read()
    reader = PdfReader(io.BytesIO(signed))
    [(name, [raw])] = reader.attachments.items()
    data = json.loads(raw)
    assert name == f"{record_batch.number}-v1-data.json"
    assert canonical_json(data) == raw
    assert documents.hashlib.sha256(raw).hexdigest() == document.data_sha256
    assert data["audit_chain"] == {"chain": record_batch.site_id, "head_seq": head.seq, "head_hash": head.hash}
    assert (document.audit_chain_seq, document.audit_chain_hash) == (head.seq, head.hash)
    assert data["sections"]["batch"]["din"] == record_batch.donation.din
    assert [e["reason"] for e in data["sections"]["audit_trail"]["events"]][-3:] == [
        "test change 0", "test change 1", "test change 2"
    ]
    pages = len(reader.pages)
    assert document.page_count == pages
    first_page, last_page = reader.pages[0].extract_text(), reader.pages[-1].extract_text()
    assert f"Batch record {record_batch.number}" in first_page
    assert f"Page 1 of {pages}" in first_page
    assert f"Page {pages} of {pages}" in last_page
    assert document.data_sha256 in last_page.replace("\n", "")
    assert head.hash in last_page.replace("\n", "")
    assert "not a GMP record" in first_page  # signed with the demo key

    verdict = pdfsigning.validate_pdf(signed, trust_roots=record_pki.trust_roots, require_timestamp=True)
    assert verdict.ok, verdict.problems
    assert document.timestamped_at == verdict.timestamp_time
    assert document.signer_fingerprint_sha256 == verdict.signer_fingerprint_sha256
    assert generate_s < 30


def test_the_audit_event_of_the_record_names_its_hash(record_settings, record_batch, auditor):
    document = _request(auditor, record_batch)
    batch_record_generate.apply(args=[document.pk]).get()
    document.refresh_from_db()

    event = AuditEvent.objects.get(object_type="qc.batchrecorddocument", object_id=str(document.pk))
    assert event.action == Action.CREATE
    assert event.actor == auditor
    assert event.chain == record_batch.site_id
    assert event.root_type == "batches.batch"
    assert event.root_id == str(record_batch.pk)
    assert event.changes["sha256"] == document.sha256
    assert document.audit_chain_seq is not None
    assert event.seq > document.audit_chain_seq  # the record states the head before its own event
