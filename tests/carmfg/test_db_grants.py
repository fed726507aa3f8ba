"""The audit trail is append-only for the application's database role, by privilege
(``manage.py db_grant_app_role``) as well as by trigger: the role may add and read
events, never change, delete or truncate them. Needs PostgreSQL."""

from __future__ import annotations

import os
import uuid

import psycopg
import pytest
from django.core.management import CommandError, call_command
from django.db import DatabaseError, connection, transaction

from carmfg.audit.models import Action, AuditEvent
from carmfg.audit.services import audit_record
from carmfg.audit.verification import PG_GUARD, PG_GUARD_CHECK

# postgres: checked before any fixture, so SQLite never reaches a transactional flush
# (which the audit table's triggers refuse).
pytestmark = [pytest.mark.integration, pytest.mark.postgres]

APP_PASSWORD = "app-role-test-password"
# PostgreSQL's own message for a missing privilege; the triggers say "append-only".
PERMISSION_DENIED = "permission denied for table audit_auditevent"


@pytest.fixture
def app_role(transactional_db):
    """A second login role, as in production: owns nothing; dropped afterwards."""
    role = f"carmfg_app_test_{uuid.uuid4().hex[:10]}"
    with connection.cursor() as cursor:
        cursor.execute(f"CREATE ROLE {role} LOGIN PASSWORD %s", [APP_PASSWORD])
    yield role
    with connection.cursor() as cursor:
        cursor.execute(f"DROP OWNED BY {role}")
        cursor.execute(f"DROP ROLE {role}")


@pytest.fixture
def as_app_role(app_role):
    """A connection to the test database, logged in as the application role."""
    settings = connection.settings_dict
    conn = psycopg.connect(
        host=settings["HOST"] or None, port=settings["PORT"] or None, dbname=settings["NAME"],
        user=app_role, password=APP_PASSWORD, autocommit=True, connect_timeout=10,
    )
    yield conn
    conn.close()


def _refused(conn, statement: str, params=()) -> str:
    with pytest.raises(psycopg.Error) as refused:
        conn.execute(statement, params)
    return str(refused.value)


def _insert_event_sql(chain: int) -> tuple[str, list]:
    return (
        "INSERT INTO audit_auditevent (chain, seq, occurred_at, actor_username, actor_name, action, "
        "object_type, object_id, object_repr, root_type, root_id, changes, reason, request_id, prev_hash, hash) "
        "VALUES (%s, 1, now(), '', '', 'create', 'tests.sample', '1', '', '', '', '{}', '', '', %s, %s)",
        [chain, "0" * 64, uuid.uuid4().hex * 2],
    )


def test_app_role_may_insert_and_read_audit_events_but_never_change_them(site, technician, app_role, as_app_role):
    with transaction.atomic():
        audit_record(actor=technician, action=Action.CREATE, site=site, object_type="tests.sample", object_id="1")
    call_command("db_grant_app_role", app_role)

    count = as_app_role.execute("SELECT count(*) FROM audit_auditevent").fetchone()[0]
    assert count == AuditEvent.objects.count() > 0
    as_app_role.execute(*_insert_event_sql(chain=987654))
    assert AuditEvent.objects.filter(chain=987654).count() == 1

    assert PERMISSION_DENIED in _refused(as_app_role, "UPDATE audit_auditevent SET reason = 'edited'")
    assert PERMISSION_DENIED in _refused(as_app_role, "DELETE FROM audit_auditevent")
    assert PERMISSION_DENIED in _refused(as_app_role, "TRUNCATE audit_auditevent")
    assert "must be owner" in _refused(as_app_role, "ALTER TABLE audit_auditevent DISABLE TRIGGER ALL")
    assert "must be owner" in _refused(as_app_role, "DROP TRIGGER audit_event_append_only ON audit_auditevent")


def test_app_role_keeps_read_write_on_the_other_tables(site, app_role, as_app_role):
    call_command("db_grant_app_role", app_role)

    as_app_role.execute("UPDATE accounts_site SET name = name || '.' WHERE id = %s", [site.pk])
    as_app_role.execute("UPDATE audit_chainhead SET seq = seq WHERE chain = %s", [site.pk])  # the writers' lock row
    assert as_app_role.execute("SELECT count(*) FROM django_migrations").fetchone()[0] > 0
    assert "permission denied" in _refused(as_app_role, "DELETE FROM django_migrations")


def test_trigger_refuses_update_and_delete_even_for_the_owner(site, technician, app_role):
    with transaction.atomic():
        event = audit_record(actor=technician, action=Action.CREATE, site=site, object_type="tests.sample", object_id="1")

    for statement in ("UPDATE audit_auditevent SET reason = 'edited' WHERE id = %s", "DELETE FROM audit_auditevent WHERE id = %s"):
        with pytest.raises(DatabaseError, match="append-only"), transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(statement, [event.pk])
    assert AuditEvent.objects.get(pk=event.pk).reason == event.reason


def test_grant_is_refused_for_a_role_that_could_not_be_restricted(transactional_db):
    with connection.cursor() as cursor:
        cursor.execute("SELECT current_user")
        owner = cursor.fetchone()[0]
    with pytest.raises(CommandError):
        call_command("db_grant_app_role", owner)  # here the superuser that owns the tables
    with pytest.raises(CommandError, match="No PostgreSQL role"):
        call_command("db_grant_app_role", f"nobody_{os.getpid()}")


def test_app_role_cannot_drop_the_column_guard_but_can_check_it(app_role, as_app_role):
    """The verifier (run by the app's worker) compares the guard with the same constraint
    on a temporary copy of the table; only the owner could drop or replace it."""
    call_command("db_grant_app_role", app_role)

    assert "must be owner" in _refused(as_app_role, f"ALTER TABLE audit_auditevent DROP CONSTRAINT {PG_GUARD}")
    with as_app_role.transaction():
        as_app_role.execute("CREATE TEMPORARY TABLE carmfg_guard_probe (LIKE audit_auditevent) ON COMMIT DROP")
        as_app_role.execute(f"ALTER TABLE carmfg_guard_probe ADD CONSTRAINT {PG_GUARD} CHECK ({PG_GUARD_CHECK})")
        expected = as_app_role.execute(
            "SELECT pg_get_constraintdef(oid) FROM pg_constraint WHERE conrelid = 'carmfg_guard_probe'::regclass"
        ).fetchone()[0]
    live = as_app_role.execute(
        "SELECT pg_get_constraintdef(oid) FROM pg_constraint "
        "WHERE conrelid = 'audit_auditevent'::regclass AND conname = %s", [PG_GUARD],
    ).fetchone()[0]
    assert live == expected
