"""Give the application's database role the rights it needs and no more (PostgreSQL).

python manage.py db_grant_app_role bwv_app

Run by the owning role (the one that runs `migrate` and owns every table) right after `migrate`;
safe to run again at any time. Web, worker and beat connect as the application role, so their
credentials, if stolen, cannot rewrite history:

- every table of the schema: SELECT, INSERT, UPDATE and DELETE; never TRUNCATE, REFERENCES or
  TRIGGER, and not the owner, so no ALTER TABLE, DROP, DISABLE TRIGGER or DROP TRIGGER;
- the audit log (`evidence_auditevent`) and its Merkle tree's nodes: SELECT and INSERT only; the
  chain head: SELECT, INSERT (the first append creates it) and UPDATE (each append moves it),
  never DELETE;
- `django_migrations`: SELECT only; sequences: USAGE and SELECT;
- tables made by later migrations get the same rights by default (ALTER DEFAULT PRIVILEGES for
  the owning role), and the audit tables' extra rights are revoked again on every run.

A superuser ignores all of this, and so does a member of the owning role: the command refuses
such a role rather than pretend to limit it.
"""

from __future__ import annotations

import re

from django.core.management.base import BaseCommand, CommandError
from django.db import connection, transaction
from psycopg import sql

from custody.models import AuditChainHead, AuditEvent, AuditTreeNode

ROLE_NAME = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")

# Tables whose rows the application may add to but never change or remove (beyond what the
# append needs), with the rights it keeps on them.
LIMITED_TABLES = {
    AuditEvent._meta.db_table: ("SELECT", "INSERT"),
    AuditTreeNode._meta.db_table: ("SELECT", "INSERT"),
    AuditChainHead._meta.db_table: ("SELECT", "INSERT", "UPDATE"),
    "django_migrations": ("SELECT",),
}
TABLE_RIGHTS = ("SELECT", "INSERT", "UPDATE", "DELETE")


def grant_statements(*, role: str, owner: str, schema: str, database: str) -> list[sql.Composed]:
    """The statements, in order: revoke everything, grant the usual rights, narrow the audit
    tables. Revoking first makes a run idempotent and removes any right granted by hand."""
    r, o, s = sql.Identifier(role), sql.Identifier(owner), sql.Identifier(schema)
    rights = sql.SQL(", ").join(map(sql.SQL, TABLE_RIGHTS))
    statements = [
        sql.SQL("GRANT CONNECT ON DATABASE {} TO {}").format(sql.Identifier(database), r),
        sql.SQL("GRANT USAGE ON SCHEMA {} TO {}").format(s, r),
        sql.SQL("REVOKE CREATE ON SCHEMA {} FROM {}").format(s, r),
        sql.SQL("REVOKE ALL ON ALL TABLES IN SCHEMA {} FROM {}").format(s, r),
        sql.SQL("GRANT {} ON ALL TABLES IN SCHEMA {} TO {}").format(rights, s, r),
        sql.SQL("REVOKE ALL ON ALL SEQUENCES IN SCHEMA {} FROM {}").format(s, r),
        sql.SQL("GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA {} TO {}").format(s, r),
        sql.SQL(
            "ALTER DEFAULT PRIVILEGES FOR ROLE {} IN SCHEMA {} REVOKE ALL ON TABLES FROM {}"
        ).format(o, s, r),
        sql.SQL(
            "ALTER DEFAULT PRIVILEGES FOR ROLE {} IN SCHEMA {} REVOKE ALL ON SEQUENCES FROM {}"
        ).format(o, s, r),
        sql.SQL(
            "ALTER DEFAULT PRIVILEGES FOR ROLE {} IN SCHEMA {} GRANT {} ON TABLES TO {}"
        ).format(o, s, rights, r),
        sql.SQL(
            "ALTER DEFAULT PRIVILEGES FOR ROLE {} IN SCHEMA {} GRANT USAGE, SELECT ON SEQUENCES TO {}"
        ).format(o, s, r),
    ]
    for table, kept in LIMITED_TABLES.items():
        t = sql.Identifier(schema, table)
        statements.append(sql.SQL("REVOKE ALL ON {} FROM {}").format(t, r))
        statements.append(
            sql.SQL("GRANT {} ON {} TO {}").format(sql.SQL(", ").join(map(sql.SQL, kept)), t, r)
        )
    return statements


class Command(BaseCommand):
    help = (
        "Grant the application's database role its rights (run by the owning role after migrate)."
    )

    def add_arguments(self, parser):
        parser.add_argument("role", help="the role web, worker and beat connect as")

    def handle(self, *args, role: str, **options):
        if connection.vendor != "postgresql":
            raise CommandError("database roles exist on PostgreSQL only")
        if not ROLE_NAME.match(role):
            raise CommandError(f"{role!r} is not a plain role name (lower case, digits, _)")
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute("SELECT current_user, current_schema(), current_database()")
            owner, schema, database = cursor.fetchone()
            cursor.execute(
                "SELECT rolsuper, pg_has_role(rolname, current_user, 'MEMBER') "
                "FROM pg_roles WHERE rolname = %s",
                [role],
            )
            row = cursor.fetchone()
            if row is None:
                raise CommandError(f"role {role} does not exist: create it first (LOGIN, no more)")
            superuser, member_of_owner = row
            if role == owner or superuser or member_of_owner:
                what = "a superuser" if superuser else "the owning role or one of its members"
                raise CommandError(
                    f"role {role} is {what}: no grant can limit it; connect the application as "
                    "a role of its own"
                )
            for statement in grant_statements(
                role=role, owner=owner, schema=schema, database=database
            ):
                cursor.execute(statement.as_string(connection.connection))
        self.stdout.write(
            f"{role}: read and write on the tables of {schema}, append-only on the audit log "
            f"(owner {owner})"
        )
