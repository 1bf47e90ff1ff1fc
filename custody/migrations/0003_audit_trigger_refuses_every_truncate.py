"""The append-only trigger loses its one exception: TRUNCATE was let through in a test database
for a session that asked (Django's flush between transactional tests). The tests now flush as the
superuser they run as, with triggers off for that statement alone, which no application role
may do; the production trigger refuses UPDATE, DELETE and TRUNCATE with no exception at all."""

from django.db import migrations

STRICT = """
CREATE OR REPLACE FUNCTION bwv_audit_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'the audit log is append-only: % on % refused', TG_OP, TG_TABLE_NAME
        USING ERRCODE = 'insufficient_privilege';
END;
$$;
"""

WITH_TEST_EXCEPTION = """
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
"""


def forward(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(STRICT, params=None)


def reverse(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(WITH_TEST_EXCEPTION, params=None)


class Migration(migrations.Migration):
    dependencies = [
        ("custody", "0002_initial"),
        ("evidence", "0012_audit_tree_append_only_trigger"),
    ]

    operations = [migrations.RunPython(forward, reverse)]
