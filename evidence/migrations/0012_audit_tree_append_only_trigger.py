"""On PostgreSQL, the audit log's Merkle tree is append-only like the events: the trigger of
0006 (the same function, with the same narrow TRUNCATE exception for test databases) now also
refuses UPDATE, DELETE and TRUNCATE on the tree's nodes, for every role."""

from django.db import migrations

TABLE = "evidence_audittreenode"

FORWARD = f"""
CREATE TRIGGER audit_tree_no_update_delete BEFORE UPDATE OR DELETE ON {TABLE}
    FOR EACH ROW EXECUTE FUNCTION bwv_audit_append_only();
CREATE TRIGGER audit_tree_no_truncate BEFORE TRUNCATE ON {TABLE}
    FOR EACH STATEMENT EXECUTE FUNCTION bwv_audit_append_only();
"""

REVERSE = f"""
DROP TRIGGER IF EXISTS audit_tree_no_truncate ON {TABLE};
DROP TRIGGER IF EXISTS audit_tree_no_update_delete ON {TABLE};
"""


def forward(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(FORWARD, params=None)


def reverse(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(REVERSE, params=None)


class Migration(migrations.Migration):
    dependencies = [("evidence", "0011_audit_merkle_tree")]

    operations = [migrations.RunPython(forward, reverse)]
