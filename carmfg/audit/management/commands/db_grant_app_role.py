"""Grant the application's PostgreSQL role what the running application needs, and no
more: the audit table is append-only for it (SELECT, INSERT; never UPDATE, DELETE or
TRUNCATE), which holds even if the triggers were ever dropped, and the role owns
nothing, so it can neither drop the triggers nor alter the tables (EU GMP Annex 11 §9,
21 CFR 11.10(e)).

Run it as the owner role (the one that runs the migrations) after every ``migrate``:
tables added by new migrations get their grants then. See docs/deployment.md.
"""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError
from django.db import connection, transaction

APPEND_ONLY_TABLES = ["audit_auditevent"]


class Command(BaseCommand):
    help = (
        "Grant ROLE read/write on the application's tables and sequences, but only "
        "SELECT and INSERT on the audit trail (PostgreSQL)."
    )

    def add_arguments(self, parser):
        parser.add_argument("role", help="the login role the web, worker and beat processes use")

    def handle(self, *args, role: str, **options):
        if connection.vendor != "postgresql":
            raise CommandError(f"db_grant_app_role is for PostgreSQL; this database is {connection.vendor}.")
        from psycopg import sql

        with connection.cursor() as cursor:
            cursor.execute("SELECT rolsuper, rolbypassrls FROM pg_roles WHERE rolname = %s", [role])
            row = cursor.fetchone()
            if row is None:
                raise CommandError(f"No PostgreSQL role {role!r}: create it first (CREATE ROLE … LOGIN).")
            if row[0] or row[1]:
                raise CommandError(f"Role {role!r} is a superuser or bypasses row security: grants cannot restrict it.")
            cursor.execute("SELECT current_user")
            if cursor.fetchone()[0] == role:
                raise CommandError(f"Role {role!r} is the role running this command (the owner): use a separate role.")
            cursor.execute(
                "SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
                "WHERE n.nspname = current_schema() AND pg_get_userbyid(c.relowner) = %s",
                [role],
            )
            if cursor.fetchone()[0]:
                raise CommandError(f"Role {role!r} owns tables: an owner can drop the audit triggers. Use a role that owns nothing.")

        tables = sorted(connection.introspection.django_table_names(only_existing=True, include_views=False))
        missing = [t for t in APPEND_ONLY_TABLES if t not in tables]
        if missing:
            raise CommandError(f"Tables {missing} do not exist: run `manage.py migrate` first.")
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
                "WHERE c.relkind = 'S' AND n.nspname = current_schema() ORDER BY 1"
            )
            sequences = [r[0] for r in cursor.fetchall()]

        who = sql.Identifier(role)
        statements = [
            sql.SQL("GRANT CONNECT ON DATABASE {} TO {}").format(sql.Identifier(connection.settings_dict["NAME"]), who),
            sql.SQL("GRANT USAGE ON SCHEMA {} TO {}").format(sql.Identifier(self._schema()), who),
            # Start from nothing, so a privilege granted by hand or by an older version
            # of this command does not survive.
            sql.SQL("REVOKE ALL ON ALL TABLES IN SCHEMA {} FROM {}").format(sql.Identifier(self._schema()), who),
            sql.SQL("REVOKE ALL ON ALL SEQUENCES IN SCHEMA {} FROM {}").format(sql.Identifier(self._schema()), who),
        ]
        for table in tables:
            privileges = "SELECT, INSERT" if table in APPEND_ONLY_TABLES else "SELECT, INSERT, UPDATE, DELETE"
            statements.append(sql.SQL(f"GRANT {privileges} ON TABLE {{}} TO {{}}").format(sql.Identifier(table), who))
        # django_migrations is not an application table: the app may read it, never write it.
        statements.append(sql.SQL("GRANT SELECT ON TABLE django_migrations TO {}").format(who))
        for sequence in sequences:
            statements.append(sql.SQL("GRANT USAGE, SELECT ON SEQUENCE {} TO {}").format(sql.Identifier(sequence), who))

        with transaction.atomic(), connection.cursor() as cursor:
            for statement in statements:
                cursor.execute(statement)
        self.stdout.write(
            self.style.SUCCESS(
                f"Granted {role}: read/write on {len(tables) - len(APPEND_ONLY_TABLES)} tables and "
                f"{len(sequences)} sequences; SELECT and INSERT only on {', '.join(APPEND_ONLY_TABLES)}."
            )
        )

    def _schema(self) -> str:
        with connection.cursor() as cursor:
            cursor.execute("SELECT current_schema()")
            return cursor.fetchone()[0]
