"""Faults while a signed batch record is made.

- A Celery worker SIGKILLed in the middle of a PDF job (real worker, Redis, PostgreSQL):
  nobody hands the job back by hand; a new worker's own sweep finds it once the
  visibility timeout has passed, and the record is completed exactly once, within
  visibility timeout + restore interval + the job's own time.
- The disk is full while the PDF is stored: the attempt fails visibly (the reason is on
  the record), the job retries, and no record row ever points at a missing file.
"""

from __future__ import annotations

import errno
import os
import signal
import time
from pathlib import Path

import pytest
from django.core.files.storage import FileSystemStorage, default_storage, storages
from django.db import connection

from carmfg.audit.models import Action, AuditEvent
from qc import documents
from qc.models import BatchRecordDocument, DocumentPurpose, DocumentStatus
from qc.tasks import MAX_RETRIES, batch_record_generate
from qc.verification import verify_record
from tests.fixtures.services import CeleryWorker, _database_url
from tests.qc.record_fixtures import (  # noqa: F401
    make_batch,
    record_batch_fixture,
    record_pki_fixture,
    record_settings_fixture,
    record_tsa_fixture,
)
from tests.qc.test_document_task_worker import HeldBackTsa

# The worker of the crash test runs with a short visibility timeout, so that the test
# measures the real recovery path in seconds rather than production's minutes. It is
# long enough that the new worker is up before the job becomes visible again: the job
# is then found by the worker's periodic sweep, not only by its start-up scan.
VISIBILITY_TIMEOUT_S = 20
RESTORE_INTERVAL_S = 1
# Recovery bound asserted: timeout + one sweep + the job itself (render + sign +
# timestamp: ~2 s on an idle machine, 9 s measured on a loaded 2-core one).
JOB_BOUND_S = 40
RECOVERY_BOUND_S = VISIBILITY_TIMEOUT_S + RESTORE_INTERVAL_S + JOB_BOUND_S


def _wait_for(predicate, *, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.05)
    pytest.fail(f"timed out after {timeout} s waiting for {what}")


def _status(document_id: int) -> str:
    return BatchRecordDocument.objects.values_list("status", flat=True).get(pk=document_id)


def _create_events(document) -> int:
    return AuditEvent.objects.filter(
        object_type="qc.batchrecorddocument", object_id=str(document.pk), action=Action.CREATE
    ).count()


def _no_row_points_at_a_missing_file() -> None:
    for name in BatchRecordDocument.objects.exclude(file="").values_list("file", flat=True):
        assert default_storage.exists(name), f"a record points at {name}, which is not stored"


@pytest.mark.integration
@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_a_job_of_a_killed_worker_comes_back_by_itself_and_completes_once_within_the_bound(
    redis_url, record_pki, record_tsa, site, auditor, settings, tmp_path, worker_id
):
    from carmfg.celery import app

    tsa = HeldBackTsa(record_tsa.stamper)
    media = tmp_path / "media"
    settings.MEDIA_ROOT, settings.CARMFG_PKI_DIR, settings.CARMFG_TSA_URL = media, record_pki.directory, tsa.url
    name = f"carmfg-faults-{worker_id}-{os.getpid()}"
    worker = CeleryWorker(database_url=_database_url(connection.settings_dict), redis_url=redis_url, name=name,
                          log_path=tmp_path / f"{name}.log")
    worker.extra_env = {
        "MEDIA_ROOT": str(media), "CARMFG_PKI_DIR": str(record_pki.directory), "CARMFG_TSA_URL": tsa.url,
        "CELERY_VISIBILITY_TIMEOUT": str(VISIBILITY_TIMEOUT_S), "CELERY_RESTORE_INTERVAL": str(RESTORE_INTERVAL_S),
    }
    saved = app.conf.task_default_queue, app.conf.task_always_eager
    app.conf.task_default_queue, app.conf.task_always_eager = worker.queue, False
    try:
        worker.start(timeout=180)
        batch = make_batch(site)
        document = documents.batch_record_request(actor=auditor, batch=batch, purpose=DocumentPurpose.EXPORT)
        _wait_for(lambda: tsa.asked.is_set() and _status(document.pk) == DocumentStatus.SIGNING,
                  timeout=120, what="the worker to reach signing")

        assert worker.process is not None
        os.kill(worker.process.pid, signal.SIGKILL)
        worker.process.wait(timeout=10)
        killed_at = time.monotonic()
        tsa.release.set()
        assert _status(document.pk) == DocumentStatus.SIGNING
        worker.start(timeout=180)  # a new worker; nothing hands it the job but the broker's own sweep
        ready_in = time.monotonic() - killed_at

        _wait_for(lambda: _status(document.pk) in (DocumentStatus.DONE, DocumentStatus.FAILED),
                  timeout=RECOVERY_BOUND_S + 30, what="the abandoned job to be redelivered and finished")
        recovered_in = time.monotonic() - killed_at
        print(f"\nkilled worker's job completed {recovered_in:.1f} s after the kill; new worker ready after "
              f"{ready_in:.1f} s (visibility timeout {VISIBILITY_TIMEOUT_S} s, restore interval {RESTORE_INTERVAL_S} s)")
        assert recovered_in <= max(ready_in, VISIBILITY_TIMEOUT_S) + RESTORE_INTERVAL_S + JOB_BOUND_S
        if ready_in < VISIBILITY_TIMEOUT_S:
            assert recovered_in <= RECOVERY_BOUND_S

        document.refresh_from_db()
        assert document.status == DocumentStatus.DONE, document.failure_reason
        assert document.attempts == 2
        assert BatchRecordDocument.objects.filter(batch=batch).count() == 1
        files = [p for p in media.rglob("*") if p.is_file()]
        assert [p.relative_to(media).as_posix() for p in files] == [document.file.name]
        assert _create_events(document) == 1
        verdict = verify_record(files[0].read_bytes(), trust_roots=record_pki.trust_roots)
        assert verdict.ok, verdict.problems

        # Nothing is left to run again: the queue and the unacked set are empty, so the
        # record will not be made a second time later.
        time.sleep(RESTORE_INTERVAL_S * 2)
        with app.connection_for_write() as conn:
            channel = conn.default_channel
            assert channel.client.llen(worker.queue) == 0
            assert channel.client.hlen(channel.unacked_key) == 0
    finally:
        tsa.close()
        worker.stop()
        app.conf.task_default_queue, app.conf.task_always_eager = saved


# --- disk full ---------------------------------------------------------------------------------


class DiskFullStorage(FileSystemStorage):
    """A file system that runs out of space after writing part of a file, like a full
    disk does: the first ``full_for`` saves leave a partial file and raise ENOSPC."""

    full_for = 0
    saves = 0

    def _save(self, name, content):
        cls = type(self)
        cls.saves += 1
        if cls.saves <= cls.full_for:
            path = Path(self.path(name))
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(content.read()[:1024])  # what fitted before the disk filled up
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path))
        return super()._save(name, content)  # type: ignore[misc]  # FileSystemStorage's, not in the stubs


@pytest.fixture
def disk_full(record_settings):
    """Default storage swapped for :class:`DiskFullStorage` through the STORAGES setting."""
    DiskFullStorage.full_for, DiskFullStorage.saves = 0, 0
    record_settings.CARMFG_TSA_URL = None  # many attempts: keep each one short
    record_settings.STORAGES = {
        **record_settings.STORAGES,
        "default": {"BACKEND": f"{__name__}.DiskFullStorage"},
    }
    return DiskFullStorage


def _stored_files(settings) -> list[Path]:
    root = Path(settings.MEDIA_ROOT)
    return sorted(p for p in root.rglob("*") if p.is_file()) if root.exists() else []


@pytest.mark.django_db
def test_a_full_disk_fails_the_attempt_visibly_and_the_retry_stores_the_record(disk_full, record_batch, auditor,
                                                                               record_settings, monkeypatch):
    disk_full.full_for = 2
    document = documents.batch_record_request(actor=auditor, batch=record_batch, purpose=DocumentPurpose.EXPORT)
    seen: list[tuple[str, str]] = []
    real = documents.batch_record_attempt_failed

    def watch(document_id, *, reason, final):
        real(document_id, reason=reason, final=final)
        row = BatchRecordDocument.objects.get(pk=document_id)
        seen.append((row.status, row.failure_reason))
        _no_row_points_at_a_missing_file()

    monkeypatch.setattr(documents, "batch_record_attempt_failed", watch)  # observes; the real one runs

    result = batch_record_generate.apply(args=[document.pk]).get()

    assert isinstance(storages["default"], DiskFullStorage)
    # Each failed attempt is written on the record for the people waiting for it.
    assert [status for status, _ in seen] == [DocumentStatus.QUEUED, DocumentStatus.QUEUED]
    assert all("No space left on device" in reason and "retrying in" in reason for _, reason in seen)
    assert result["status"] == "done"
    document.refresh_from_db()
    assert document.attempts == 3
    assert document.failure_reason == ""
    files = _stored_files(record_settings)
    assert [p.relative_to(record_settings.MEDIA_ROOT).as_posix() for p in files] == [document.file.name]
    with document.file.open("rb") as fh:
        assert documents.hashlib.sha256(fh.read()).hexdigest() == document.sha256  # not the partial file
    assert _create_events(document) == 1
    _no_row_points_at_a_missing_file()


@pytest.mark.django_db
def test_a_disk_that_stays_full_fails_the_record_and_leaves_no_partial_file(disk_full, record_batch, auditor,
                                                                             record_settings):
    disk_full.full_for = 10_000
    document = documents.batch_record_request(actor=auditor, batch=record_batch, purpose=DocumentPurpose.EXPORT)

    result = batch_record_generate.apply(args=[document.pk], throw=False)

    assert result.failed()
    assert isinstance(result.result, OSError)
    assert result.result.errno == errno.ENOSPC
    document.refresh_from_db()
    assert document.status == DocumentStatus.FAILED
    assert document.attempts == MAX_RETRIES + 1
    assert "No space left on device" in document.failure_reason
    assert f"gave up after {MAX_RETRIES + 1} attempts" in document.failure_reason
    assert document.file.name == ""
    assert _stored_files(record_settings) == []  # the partial PDF is not left lying around
    assert _create_events(document) == 0
    _no_row_points_at_a_missing_file()
