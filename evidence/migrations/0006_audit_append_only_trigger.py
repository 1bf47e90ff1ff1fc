"""On PostgreSQL, the database itself refuses UPDATE, DELETE and TRUNCATE on the audit log.

The triggers fire for every role, the table's owner included; only someone who can disable
triggers (a superuser, or the owner with ALTER TABLE) can get round them, and then the hash chain
shows what they did. One narrow exception: Django's test runner empties tables with TRUNCATE between
transactional tests, so TRUNCATE passes in a database whose name starts with "test_" and only when
the session has set bwv.test_flush = 'on' (removed again in custody 0003: the tests flush otherwise).
"""

from django.db import migrations

TABLE = "evidence_auditevent"

FORWARD = f"""
CREATE OR REPLACE FUNCTION bwv_audit_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'TRUNCATE'
       AND current_database() LIKE 'test\\_%'
       AND current_setting('bwv.test_flush', true) = 'on' THEN
        RETURN NULL;
    END IF;
    RAISE EXCEPTION 'the audit log is append-only: % on % refused', TG_OP, TG_TABLE_NAME
        USING ERRCODE = 'insufficient_privilege';
END;
$$;
CREATE TRIGGER audit_no_update_delete BEFORE UPDATE OR DELETE ON {TABLE}
    FOR EACH ROW EXECUTE FUNCTION bwv_audit_append_only();
CREATE TRIGGER audit_no_truncate BEFORE TRUNCATE ON {TABLE}
    FOR EACH STATEMENT EXECUTE FUNCTION bwv_audit_append_only();
"""

REVERSE = f"""
DROP TRIGGER IF EXISTS audit_no_truncate ON {TABLE};
DROP TRIGGER IF EXISTS audit_no_update_delete ON {TABLE};
DROP FUNCTION IF EXISTS bwv_audit_append_only();
"""


def forward(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(FORWARD, params=None)


def reverse(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(REVERSE, params=None)


class Migration(migrations.Migration):
    dependencies = [("evidence", "0005_audit_hash_chain")]

    operations = [migrations.RunPython(forward, reverse)]
