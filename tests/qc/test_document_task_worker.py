"""A real Celery worker killed while it signs a record: the job comes back and the
record is completed exactly once (one row, one file, one audit event).

The kill lands at a known point: the worker waits on a timestamp authority that this
test holds back, with the record marked "signing". After SIGKILL the job sits
unacknowledged in Redis; Redis gives it back after the visibility timeout (10 min in
production), which the test shortens for this one message through kombu's own
restore, then a fresh worker takes it.
"""

from __future__ import annotations

import json
import os
import signal
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from asn1crypto import tsp

from carmfg.audit.models import Action, AuditEvent
from qc import documents
from qc.models import BatchRecordDocument, DocumentPurpose, DocumentStatus
from qc.verification import verify_record
from tests.qc.record_fixtures import make_batch, record_pki_fixture, record_tsa_fixture  # noqa: F401

pytestmark = [pytest.mark.integration, pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


class HeldBackTsa:
    """pyHanko's test TSA that answers only once ``release`` is set."""

    def __init__(self, stamper):
        self.asked = threading.Event()
        self.release = threading.Event()
        held = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 - the http.server API
                body = self.rfile.read(int(self.headers["Content-Length"]))
                held.asked.set()
                held.release.wait(timeout=120)
                reply = stamper.request_tsa_response(tsp.TimeStampReq.load(body)).dump()
                self.send_response(200)
                self.send_header("Content-Type", "application/timestamp-reply")
                self.send_header("Content-Length", str(len(reply)))
                self.end_headers()
                self.wfile.write(reply)

            def log_message(self, format, *args):  # noqa: A002 - the http.server API
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/tsa"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.release.set()
        self.server.shutdown()
        self.server.server_close()


def _redeliver(task_id: str) -> bool:
    """Give the unacknowledged job back to its queue now (what Redis does by itself
    once the visibility timeout has passed)."""
    from carmfg.celery import app

    with app.connection_for_write() as connection:
        channel = connection.default_channel
        client = channel.client
        for tag, payload in client.hgetall(channel.unacked_key).items():
            message = json.loads(payload)[0]
            if message.get("headers", {}).get("id") == task_id:
                channel.qos.restore_by_tag(tag, client)
                return True
    return False


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


def test_a_worker_killed_while_signing_leaves_the_record_to_the_next_worker_which_completes_it_once(
    celery_worker, record_pki, record_tsa, site, auditor, settings, monkeypatch, tmp_path
):
    tsa = HeldBackTsa(record_tsa.stamper)
    media = tmp_path / "media"
    worker_env = {"MEDIA_ROOT": str(media), "CARMFG_PKI_DIR": str(record_pki.directory), "CARMFG_TSA_URL": tsa.url}
    for name, value in worker_env.items():
        monkeypatch.setenv(name, value)
    settings.MEDIA_ROOT, settings.CARMFG_PKI_DIR, settings.CARMFG_TSA_URL = media, record_pki.directory, tsa.url
    celery_worker.stop()
    celery_worker.start()  # a worker with this test's storage, keys and TSA
    try:
        batch = make_batch(site)
        document = documents.batch_record_request(actor=auditor, batch=batch, purpose=DocumentPurpose.EXPORT)

        _wait_for(lambda: tsa.asked.is_set() and _status(document.pk) == DocumentStatus.SIGNING,
                  timeout=120, what="the worker to reach signing")
        os.kill(celery_worker.process.pid, signal.SIGKILL)
        celery_worker.process.wait(timeout=10)

        assert _status(document.pk) == DocumentStatus.SIGNING
        assert not media.exists() or not any(p.is_file() for p in media.rglob("*"))
        tsa.release.set()
        assert _redeliver(document.celery_task_id), "the killed worker's job is not waiting in Redis"
        celery_worker.start()

        _wait_for(lambda: _status(document.pk) in (DocumentStatus.DONE, DocumentStatus.FAILED),
                  timeout=180, what="the redelivered job to finish")
        document.refresh_from_db()
        assert document.status == DocumentStatus.DONE, document.failure_reason
        assert document.attempts == 2
        assert BatchRecordDocument.objects.filter(batch=batch).count() == 1
        files = [p for p in media.rglob("*") if p.is_file()]
        assert [p.relative_to(media).as_posix() for p in files] == [document.file.name]
        assert AuditEvent.objects.filter(
            object_type="qc.batchrecorddocument", object_id=str(document.pk), action=Action.CREATE
        ).count() == 1
        verdict = verify_record(files[0].read_bytes(), trust_roots=record_pki.trust_roots)
        assert verdict.ok, verdict.problems
        assert verdict.signature.timestamp_valid
    finally:
        tsa.close()
        celery_worker.stop()
        monkeypatch.undo()
        celery_worker.start()  # leave the session's worker as it was, for the next tests
