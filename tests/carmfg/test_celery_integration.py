"""The daily audit-chain check, end to end: enqueued through Redis, run by a real
Celery worker process against the test's PostgreSQL database, result back through
the Redis result backend. Under CI=true a missing Redis or PostgreSQL fails these."""

from __future__ import annotations

import pytest
from django.db import transaction

from carmfg.audit.models import Action, AuditEvent, ChainHead
from carmfg.audit.services import audit_record
from carmfg.audit.tasks import audit_chain_verify

# postgres: checked before any fixture, so SQLite never reaches a transactional flush
# (which the audit table's triggers refuse).
pytestmark = [pytest.mark.integration, pytest.mark.postgres]


def _record_events(actor, site, n: int) -> AuditEvent:
    event = None
    for i in range(n):
        with transaction.atomic():
            event = audit_record(
                actor=actor, action=Action.CREATE, site=site, object_type="tests.sample",
                object_id=str(i), changes={"volume_ml": f"{i}.5"},
            )
    assert event is not None
    return event


def test_worker_verifies_the_chain_written_through_the_services(celery_worker, technician, site):
    last = _record_events(technician, site, 5)

    result = audit_chain_verify.delay([site.pk])
    summary = result.get(timeout=60)

    assert summary["worker"] == celery_worker.hostname  # the worker process ran it, not this one
    assert summary["ok"] is True
    [chain] = summary["chains"]
    assert chain["chain"] == site.pk
    assert chain["events"] == AuditEvent.objects.filter(chain=site.pk).count() >= 5
    assert (chain["head_seq"], chain["head_hash"]) == (last.seq, last.hash)


def test_worker_reports_a_chain_whose_last_events_were_removed(celery_worker, technician, site):
    last = _record_events(technician, site, 3)
    # Events cannot be deleted (triggers); simulate the trace of a removal at the end:
    # the head still points past the last event that remains.
    ChainHead.objects.filter(chain=site.pk).update(seq=last.seq + 1, hash="f" * 64)

    summary = audit_chain_verify.delay().get(timeout=60)

    by_chain = {c["chain"]: c for c in summary["chains"]}
    assert summary["ok"] is False
    assert by_chain[site.pk]["ok"] is False
    assert by_chain[site.pk]["first_broken_seq"] == last.seq + 1
