"""The audit log, exports and share links move to the custody app, flags and cases to the review
app: in Django's state only. The tables, their rows and the audit log's triggers stay as they are
(the models keep their table names), so nothing in the database changes.
"""

from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [
        ("evidence", "0012_audit_tree_append_only_trigger"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.DeleteModel(
                    name="AuditChainHead",
                ),
                migrations.DeleteModel(
                    name="AuditEvent",
                ),
                migrations.DeleteModel(
                    name="AuditTreeNode",
                ),
                migrations.RemoveField(
                    model_name="export",
                    name="case",
                ),
                migrations.RemoveField(
                    model_name="evidenceflag",
                    name="flagged_by",
                ),
                migrations.RemoveField(
                    model_name="evidenceflag",
                    name="lifted_by",
                ),
                migrations.RemoveField(
                    model_name="evidenceflag",
                    name="recording",
                ),
                migrations.RemoveField(
                    model_name="export",
                    name="borough",
                ),
                migrations.RemoveField(
                    model_name="export",
                    name="created_by",
                ),
                migrations.RemoveField(
                    model_name="export",
                    name="recordings",
                ),
                migrations.RemoveField(
                    model_name="sharelink",
                    name="export",
                ),
                migrations.RemoveField(
                    model_name="sharelink",
                    name="created_by",
                ),
                migrations.RemoveField(
                    model_name="sharelink",
                    name="revoked_by",
                ),
                migrations.DeleteModel(
                    name="Case",
                ),
                migrations.DeleteModel(
                    name="EvidenceFlag",
                ),
                migrations.DeleteModel(
                    name="Export",
                ),
                migrations.DeleteModel(
                    name="ShareLink",
                ),
            ],
            database_operations=[],
        ),
    ]
