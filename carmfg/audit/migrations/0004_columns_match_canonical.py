"""PostgreSQL refuses an audit event whose columns do not say what its sealed text says.

Every event stores the canonical text its hash is made of (0003). This CHECK constraint
makes the database itself keep the columns that pages, exports and PDFs show equal to
that text, on every INSERT (and on any UPDATE, should the append-only trigger ever be
disabled). A constraint cannot be switched off like a trigger: to edit a column an
attacker must drop or weaken it, and ``verify_audit_chain`` checks that it is present,
validated and unchanged before it trusts it (``carmfg.audit.verification``). That lets
the routine check of millions of events hash the stored text in PostgreSQL instead of
re-reading every column.

Added NOT VALID, then validated in a second transaction: validation reads every
existing event without blocking writers. Events written before 0003 have no text (NULL) and pass; the verifier
checks those from their columns. SQLite has no such constraint: there the verifier
always compares every column.
"""

from django.db import migrations

# Frozen copy of carmfg.audit.verification.PG_GUARD_CHECK as of this migration; the
# verifier compares the live constraint with its own text, so a drift fails loudly.
CHECK = (
    "canonical IS NULL OR canonical::jsonb = jsonb_build_object("
    "'chain', \"chain\", 'seq', \"seq\", "
    "'occurred_at', to_char(occurred_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"+00:00\"'), "
    "'actor_id', \"actor_id\", 'actor_username', \"actor_username\", 'actor_name', \"actor_name\", "
    "'site_id', \"site_id\", 'action', \"action\", 'object_type', \"object_type\", 'object_id', \"object_id\", "
    "'object_repr', \"object_repr\", 'root_type', \"root_type\", 'root_id', \"root_id\", 'changes', \"changes\", "
    "'reason', \"reason\", 'request_id', \"request_id\", 'prev_hash', \"prev_hash\")"
)
NAME = "audit_columns_match_canonical"


def install(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    # A validation that failed before left the constraint NOT VALID: start again.
    schema_editor.execute(f"ALTER TABLE audit_auditevent DROP CONSTRAINT IF EXISTS {NAME}")
    schema_editor.execute(f"ALTER TABLE audit_auditevent ADD CONSTRAINT {NAME} CHECK ({CHECK}) NOT VALID")
    schema_editor.execute(f"ALTER TABLE audit_auditevent VALIDATE CONSTRAINT {NAME}")


def remove(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(f"ALTER TABLE audit_auditevent DROP CONSTRAINT IF EXISTS {NAME}")


class Migration(migrations.Migration):
    atomic = False  # validation in its own transaction, after the short lock of ADD
    dependencies = [("audit", "0003_auditevent_canonical")]
    operations = [migrations.RunPython(install, remove)]
