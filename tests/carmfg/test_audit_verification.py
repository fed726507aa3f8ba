"""The fast chain check (stored canonical text, hashed in PostgreSQL) catches every edit
the full re-serialisation catches, on SQLite and PostgreSQL alike."""

from __future__ import annotations

import datetime as dt
import hashlib

from django.db import connection

from carmfg.audit.models import Action, AuditEvent
from carmfg.audit.services import audit_record, event_hash
from carmfg.audit.verification import verify_chain
from carmfg.canonical import canonical_json
from tests.carmfg.test_audit import _tamper


def _chain(site, technician, n=5):
    return [
        audit_record(actor=technician, action=Action.CREATE, site=site, object_type="x", object_id=str(i),
                     changes={"value": str(i), "note": "Zellzahl µ ✓", "nested": {"b": [1, "2"], "a": None}})
        for i in range(n)
    ]


def test_every_event_stores_the_exact_text_its_hash_is_made_of(site, technician):
    for event in _chain(site, technician):
        stored = AuditEvent.objects.get(pk=event.pk)
        assert stored.canonical is not None
        assert stored.canonical.encode() == canonical_json(stored.hash_payload())
        assert hashlib.sha256(stored.canonical.encode()).hexdigest() == stored.hash == event_hash(stored)
    assert verify_chain(site.pk).ok


def test_an_edited_canonical_text_is_reported_as_altered(site, technician):
    events = _chain(site, technician)
    forged = str(events[2].canonical).replace('"value":"2"', '"value":"9"')
    _tamper(events[2].pk, "UPDATE audit_auditevent SET canonical = %s WHERE id = %s", [forged, events[2].pk])
    report = verify_chain(site.pk)
    assert report.first_broken_seq == events[2].seq
    assert "altered" in report.problems[0]


def test_text_and_hash_forged_together_are_caught_by_the_columns(site, technician):
    """The text says something the columns (what pages and exports show) do not."""
    events = _chain(site, technician)
    forged = str(events[2].canonical).replace('"value":"2"', '"value":"9"')
    _tamper(events[2].pk, "UPDATE audit_auditevent SET canonical = %s, hash = %s WHERE id = %s",
            [forged, hashlib.sha256(forged.encode()).hexdigest(), events[2].pk])
    report = verify_chain(site.pk)
    assert report.first_broken_seq == events[2].seq
    assert "altered" in report.problems[0]


def test_a_timestamp_moved_by_one_microsecond_is_caught(site, technician):
    events = _chain(site, technician)
    moved = events[1].occurred_at + dt.timedelta(microseconds=1)
    _tamper(events[1].pk, "UPDATE audit_auditevent SET occurred_at = %s WHERE id = %s",
            [connection.ops.adapt_datetimefield_value(moved), events[1].pk])
    report = verify_chain(site.pk)
    assert report.first_broken_seq == events[1].seq
    assert "altered" in report.problems[0]


def test_each_column_edit_is_caught(site, technician):
    for column, value in [("actor_name", "Someone Else"), ("reason", "x"), ("object_id", "77"), ("action", "delete")]:
        events = _chain(site, technician, n=2)
        _tamper(events[0].pk, f"UPDATE audit_auditevent SET {column} = %s WHERE id = %s", [value, events[0].pk])
        report = verify_chain(site.pk)
        assert report.first_broken_seq == events[0].seq, column
        assert "altered" in report.problems[0], column
        _tamper(events[0].pk, "DELETE FROM audit_auditevent WHERE chain = %s", [site.pk])
        _tamper(events[0].pk, "DELETE FROM audit_chainhead WHERE chain = %s", [site.pk])


def test_events_written_before_the_text_was_stored_are_checked_from_their_columns(site, technician):
    events = _chain(site, technician)
    _tamper(events[0].pk, "UPDATE audit_auditevent SET canonical = NULL WHERE chain = %s", [site.pk])
    assert verify_chain(site.pk).ok
    _tamper(events[3].pk, "UPDATE audit_auditevent SET reason = %s WHERE id = %s", ["forged", events[3].pk])
    report = verify_chain(site.pk)
    assert report.first_broken_seq == events[3].seq
    assert "altered" in report.problems[0]


def test_a_gap_is_reported_before_a_later_alteration(site, technician):
    events = _chain(site, technician, n=6)
    _tamper(events[1].pk, "DELETE FROM audit_auditevent WHERE id = %s", [events[1].pk])
    _tamper(events[4].pk, "UPDATE audit_auditevent SET reason = %s WHERE id = %s", ["forged", events[4].pk])
    report = verify_chain(site.pk)
    assert report.first_broken_seq == events[2].seq
    assert "gap" in report.problems[0]
