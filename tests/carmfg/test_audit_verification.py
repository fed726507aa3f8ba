"""The fast chain check (stored canonical text, hashed in PostgreSQL) catches every edit
the full re-serialisation catches, on SQLite and PostgreSQL alike."""

from __future__ import annotations

import datetime as dt
import hashlib
import importlib
import io

import pytest
from django.core.management import call_command
from django.db import IntegrityError, connection, transaction
from django.test.utils import CaptureQueriesContext

from carmfg.audit.models import Action, AuditEvent
from carmfg.audit.services import audit_record, event_hash, event_seal
from carmfg.audit.tasks import audit_chain_verify
from carmfg.audit.verification import PG_GUARD, PG_GUARD_CHECK, verify_chain, verify_chains
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
    if connection.vendor == "postgresql":  # as after migration 0004: the guard lets events without text pass
        _guard_sql(f"ALTER TABLE audit_auditevent ADD CONSTRAINT {{guard}} CHECK ({PG_GUARD_CHECK})")
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


# The column guard (PostgreSQL): a CHECK constraint keeps the columns equal to the sealed
# text, so the routine check hashes stored text and compares columns only when the guard
# cannot be trusted.

def _guard_sql(sql: str) -> None:
    with connection.cursor() as cursor:
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")  # no pending FK checks before ALTER TABLE
        cursor.execute(sql.format(guard=PG_GUARD))


def _past_the_trigger(sql: str, params: list) -> None:
    """An edit by a superuser who skips the append-only trigger but leaves the guard."""
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SET LOCAL session_replication_role = replica")
        cursor.execute(sql, params)


def test_the_migration_installs_the_guard_the_verifier_expects():
    migration = importlib.import_module("carmfg.audit.migrations.0004_columns_match_canonical")
    assert migration.CHECK == PG_GUARD_CHECK
    assert migration.NAME == PG_GUARD


@pytest.mark.integration  # the unit layer runs on SQLite
@pytest.mark.postgres
def test_the_database_refuses_an_event_whose_columns_differ_from_its_text(site, technician):
    event = _chain(site, technician, n=1)[0]
    with pytest.raises(IntegrityError, match=PG_GUARD):
        _past_the_trigger("UPDATE audit_auditevent SET reason = 'forged' WHERE id = %s", [event.pk])


@pytest.mark.integration  # the unit layer runs on SQLite
@pytest.mark.postgres
def test_with_the_guard_intact_the_routine_check_compares_no_columns(site, technician):
    _chain(site, technician)
    with CaptureQueriesContext(connection) as routine:
        assert verify_chain(site.pk).ok
    with CaptureQueriesContext(connection) as deep:
        assert verify_chain(site.pk, deep=True).ok
    assert not any("jsonb_build_object" in q["sql"] and "SELECT e.seq" in q["sql"] for q in routine.captured_queries)
    assert any("jsonb_build_object" in q["sql"] and "SELECT e.seq" in q["sql"] for q in deep.captured_queries)


@pytest.mark.integration  # the unit layer runs on SQLite
@pytest.mark.postgres
def test_an_event_rewritten_whole_breaks_the_next_link(site, technician):
    """Text, hash and columns changed together satisfy the guard; the next event still
    points at the old hash."""
    events = _chain(site, technician)
    target = AuditEvent.objects.get(pk=events[2].pk)
    target.reason = "forged"
    event_seal(target)
    _past_the_trigger("UPDATE audit_auditevent SET reason = %s, canonical = %s, hash = %s WHERE id = %s",
                      [target.reason, target.canonical, target.hash, target.pk])
    report = verify_chain(site.pk)
    assert report.first_broken_seq == events[3].seq
    assert "link broken" in report.problems[0]


@pytest.mark.integration  # the unit layer runs on SQLite
@pytest.mark.postgres
@pytest.mark.parametrize(("attack", "words"), [
    ("ALTER TABLE audit_auditevent DROP CONSTRAINT {guard}", "was removed"),
    ("ALTER TABLE audit_auditevent DROP CONSTRAINT {guard};"
     "ALTER TABLE audit_auditevent ADD CONSTRAINT {guard} CHECK (canonical IS NULL OR reason IS NOT NULL)",
     "was changed"),
    ("ALTER TABLE audit_auditevent DROP CONSTRAINT {guard};"
     f"ALTER TABLE audit_auditevent ADD CONSTRAINT {{guard}} CHECK ({PG_GUARD_CHECK}) NOT VALID",
     "not validated"),
], ids=["dropped", "weakened", "re-added-not-valid"])
def test_a_column_edited_behind_a_tampered_guard_is_found(site, technician, attack, words):
    events = _chain(site, technician)
    for statement in attack.split(";"):
        if "ADD CONSTRAINT" not in statement:
            _guard_sql(statement)
    _past_the_trigger("UPDATE audit_auditevent SET reason = 'forged' WHERE id = %s", [events[1].pk])
    for statement in attack.split(";"):
        if "ADD CONSTRAINT" in statement:
            _guard_sql(statement)

    report = verify_chain(site.pk)

    assert report.first_broken_seq == events[1].seq
    assert "altered" in report.problems[0]
    assert words in report.problems[-1]


@pytest.mark.integration  # the unit layer runs on SQLite
@pytest.mark.postgres
def test_a_tampered_guard_alone_breaks_the_chain(site, technician):
    _chain(site, technician)
    _guard_sql("ALTER TABLE audit_auditevent DROP CONSTRAINT {guard}")
    report = verify_chain(site.pk)
    assert not report.ok
    assert report.first_broken_seq is None
    assert "was removed" in report.problems[0]


@pytest.mark.integration
@pytest.mark.postgres
def test_an_event_added_twice_behind_a_dropped_unique_constraint_is_found(site, technician):
    """The owner drops the one-event-per-sequence-number constraint and adds a second,
    well-linked and well-sealed event with the last event's number."""
    events = _chain(site, technician, n=3)
    _guard_sql("ALTER TABLE audit_auditevent DROP CONSTRAINT audit_gap_free_sequence_per_chain")
    twin = AuditEvent.objects.get(pk=events[-1].pk)
    twin.pk, twin.reason = None, "a second story"
    event_seal(twin)
    with connection.cursor() as cursor:  # a plain INSERT: neither trigger nor guard refuses it
        cursor.execute(
            "INSERT INTO audit_auditevent (chain, seq, occurred_at, actor_id, actor_username, actor_name, site_id, "
            "action, object_type, object_id, object_repr, root_type, root_id, changes, reason, request_id, "
            "prev_hash, hash, canonical) SELECT chain, seq, occurred_at, actor_id, actor_username, actor_name, "
            "site_id, action, object_type, object_id, object_repr, root_type, root_id, changes, %s, request_id, "
            "prev_hash, %s, %s FROM audit_auditevent WHERE id = %s",
            [twin.reason, twin.hash, twin.canonical, events[-1].pk],
        )

    report = verify_chain(site.pk)

    assert not report.ok
    assert any("added twice" in problem for problem in report.problems)
    assert any("one event per sequence number" in problem for problem in report.problems)


@pytest.mark.integration
@pytest.mark.postgres
def test_a_read_only_connection_checks_every_column_instead_of_the_guard(site, technician):
    """A standby or read-only transaction cannot build the guard's temporary copy: the
    chain is still verified, column by column, and an edit is still found."""
    events = _chain(site, technician)
    with CaptureQueriesContext(connection) as queries:
        with connection.cursor() as cursor:
            cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")  # the test's pending FK checks, before read-only
            cursor.execute("SET TRANSACTION READ ONLY")
        report = verify_chain(site.pk)
    assert report.ok, report.problems
    assert any("jsonb_build_object" in q["sql"] and "SELECT e.seq" in q["sql"] for q in queries.captured_queries)
    assert report.count == report.head_seq == events[-1].seq


# A run over several chains (the command, the daily task) builds the guard's reference
# (a temporary table) once, and still reads each chain's live guard in its own snapshot.

def _probes(queries) -> int:
    return sum("CREATE TEMPORARY TABLE carmfg_guard_probe" in q["sql"] for q in queries.captured_queries)


@pytest.mark.integration
@pytest.mark.postgres
@pytest.mark.parametrize("run", [
    lambda chains: [r.ok for r in verify_chains(chains)],
    lambda chains: [r["ok"] for r in audit_chain_verify.apply(args=[chains]).get()["chains"]],
    lambda chains: call_command("verify_audit_chain", stdout=io.StringIO()) and None,
], ids=["verify_chains", "task", "command"])
def test_a_run_over_several_chains_builds_the_guards_reference_once(site, other_site, technician, run):
    _chain(site, technician)
    _chain(other_site, technician)
    chains = sorted([site.pk, other_site.pk])

    with CaptureQueriesContext(connection) as queries:
        verdicts = run(chains)

    assert verdicts in ([True, True], None)  # the command raises when a chain is broken
    assert _probes(queries) == 1


@pytest.mark.integration
@pytest.mark.postgres
def test_with_one_reference_per_run_a_guard_tampered_with_is_still_found_on_every_chain(site, other_site, technician):
    _chain(site, technician)
    events = _chain(other_site, technician)
    _guard_sql("ALTER TABLE audit_auditevent DROP CONSTRAINT {guard}")
    _past_the_trigger("UPDATE audit_auditevent SET reason = 'forged' WHERE id = %s", [events[1].pk])
    _guard_sql("ALTER TABLE audit_auditevent ADD CONSTRAINT {guard} CHECK (canonical IS NULL OR reason IS NOT NULL)")

    first, second = verify_chains(sorted([site.pk, other_site.pk]))
    reports = {first.chain: first, second.chain: second}

    assert "was changed" in reports[site.pk].problems[-1]
    assert reports[other_site.pk].first_broken_seq == events[1].seq
    assert "altered" in reports[other_site.pk].problems[0]
    assert "was changed" in reports[other_site.pk].problems[-1]
