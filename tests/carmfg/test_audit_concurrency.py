"""The chain stays gap-free and valid under concurrent writers (PostgreSQL)."""

from __future__ import annotations

import threading

import pytest
from django.db import close_old_connections, connection, transaction

from carmfg.audit.models import Action, AuditEvent
from carmfg.audit.services import audit_record
from carmfg.audit.verification import verify_chain

WRITERS = 8
EVENTS_PER_WRITER = 25


@pytest.mark.integration
@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_eight_concurrent_writers_produce_a_valid_gap_free_chain(site, technician):
    start = threading.Barrier(WRITERS)
    errors: list[BaseException] = []

    def writer(n: int) -> None:
        try:
            start.wait(timeout=30)
            for i in range(EVENTS_PER_WRITER):
                with transaction.atomic():
                    audit_record(actor=technician, action=Action.CREATE, site=site,
                                 object_type="x", object_id=f"{n}-{i}", changes={"n": n, "i": i})
        except BaseException as exc:  # reported to the main thread below
            errors.append(exc)
        finally:
            close_old_connections()
            connection.close()

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(WRITERS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not errors, errors

    seqs = list(AuditEvent.objects.filter(chain=site.pk).order_by("seq").values_list("seq", flat=True))
    written = AuditEvent.objects.filter(chain=site.pk, object_type="x").count()
    assert written == WRITERS * EVENTS_PER_WRITER
    assert seqs == list(range(1, len(seqs) + 1))
    report = verify_chain(site.pk)
    assert report.ok, report.problems
