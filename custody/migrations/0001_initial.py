"""The chain of custody's models, moved from the evidence app: in Django's state only, on the tables
the evidence app made (same names, same rows, same triggers).
"""

import uuid

import django.db.models.deletion
import django.db.models.fields.json
import django.db.models.functions.comparison
from django.db import migrations, models

import custody.models


class Migration(migrations.Migration):
    initial = True

    dependencies = [
        ("evidence", "0013_move_audit_exports_flags_cases"),
        ("devices", "0004_force"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.CreateModel(
                    name="AuditChainHead",
                    fields=[
                        (
                            "id",
                            models.BigAutoField(
                                auto_created=True,
                                primary_key=True,
                                serialize=False,
                                verbose_name="ID",
                            ),
                        ),
                        ("seq", models.BigIntegerField(default=0)),
                        ("hash", models.CharField(max_length=64)),
                        ("frontier", models.BinaryField(default=b"")),
                        ("published_size", models.BigIntegerField(default=0)),
                    ],
                    options={
                        "db_table": "evidence_auditchainhead",
                    },
                ),
                migrations.CreateModel(
                    name="AuditTreeNode",
                    fields=[
                        (
                            "pk",
                            models.CompositePrimaryKey(
                                "level",
                                "index",
                                blank=True,
                                editable=False,
                                primary_key=True,
                                serialize=False,
                            ),
                        ),
                        ("level", models.PositiveSmallIntegerField()),
                        ("index", models.BigIntegerField()),
                        ("hash", models.BinaryField(max_length=32)),
                    ],
                    options={
                        "db_table": "evidence_audittreenode",
                    },
                ),
                migrations.CreateModel(
                    name="ShareLink",
                    fields=[
                        (
                            "id",
                            models.UUIDField(
                                default=uuid.uuid4,
                                editable=False,
                                primary_key=True,
                                serialize=False,
                            ),
                        ),
                        ("token_hash", models.CharField(max_length=64, unique=True)),
                        ("recipient_email", models.EmailField(max_length=254)),
                        ("created_at", models.DateTimeField()),
                        ("expires_at", models.DateTimeField()),
                        ("revoked_at", models.DateTimeField(blank=True, null=True)),
                        ("revoke_reason", models.TextField(blank=True)),
                        ("access_count", models.PositiveIntegerField(default=0)),
                        ("last_access_at", models.DateTimeField(blank=True, null=True)),
                    ],
                    options={
                        "db_table": "evidence_sharelink",
                        "ordering": ["-created_at"],
                    },
                ),
                migrations.CreateModel(
                    name="AuditEvent",
                    fields=[
                        (
                            "id",
                            models.BigAutoField(
                                auto_created=True,
                                primary_key=True,
                                serialize=False,
                                verbose_name="ID",
                            ),
                        ),
                        (
                            "seq",
                            models.BigIntegerField(
                                help_text="Position in the chain, from 1", unique=True
                            ),
                        ),
                        ("prev_hash", models.CharField(max_length=64)),
                        ("hash", models.CharField(max_length=64)),
                        (
                            "body",
                            models.TextField(
                                help_text="Canonical JSON of the event: the hashed content"
                            ),
                        ),
                        (
                            "at",
                            models.GeneratedField(
                                db_persist=True,
                                expression=custody.models.EpochMicros(
                                    django.db.models.functions.comparison.Cast(
                                        django.db.models.fields.json.KeyTextTransform(
                                            "t",
                                            django.db.models.functions.comparison.Cast(
                                                "body", models.JSONField()
                                            ),
                                        ),
                                        models.BigIntegerField(),
                                    )
                                ),
                                output_field=models.DateTimeField(),
                            ),
                        ),
                        (
                            "actor_user_id",
                            models.GeneratedField(
                                db_persist=True,
                                expression=django.db.models.functions.comparison.Cast(
                                    django.db.models.fields.json.KeyTextTransform(
                                        "actor_id",
                                        django.db.models.functions.comparison.Cast(
                                            "body", models.JSONField()
                                        ),
                                    ),
                                    models.BigIntegerField(),
                                ),
                                output_field=models.BigIntegerField(null=True),
                            ),
                        ),
                        (
                            "actor_label",
                            models.GeneratedField(
                                db_persist=True,
                                expression=django.db.models.fields.json.KeyTextTransform(
                                    "actor",
                                    django.db.models.functions.comparison.Cast(
                                        "body", models.JSONField()
                                    ),
                                ),
                                output_field=models.CharField(max_length=150),
                            ),
                        ),
                        (
                            "action",
                            models.GeneratedField(
                                db_persist=True,
                                expression=django.db.models.fields.json.KeyTextTransform(
                                    "action",
                                    django.db.models.functions.comparison.Cast(
                                        "body", models.JSONField()
                                    ),
                                ),
                                output_field=models.CharField(max_length=64),
                            ),
                        ),
                        (
                            "object_type",
                            models.GeneratedField(
                                db_persist=True,
                                expression=django.db.models.fields.json.KeyTextTransform(
                                    "object_type",
                                    django.db.models.functions.comparison.Cast(
                                        "body", models.JSONField()
                                    ),
                                ),
                                output_field=models.CharField(max_length=40),
                            ),
                        ),
                        (
                            "object_id",
                            models.GeneratedField(
                                db_persist=True,
                                expression=django.db.models.fields.json.KeyTextTransform(
                                    "object_id",
                                    django.db.models.functions.comparison.Cast(
                                        "body", models.JSONField()
                                    ),
                                ),
                                output_field=models.CharField(max_length=64),
                            ),
                        ),
                        (
                            "borough_code",
                            models.GeneratedField(
                                db_persist=True,
                                expression=django.db.models.fields.json.KeyTextTransform(
                                    "borough",
                                    django.db.models.functions.comparison.Cast(
                                        "body", models.JSONField()
                                    ),
                                ),
                                output_field=models.CharField(max_length=2),
                            ),
                        ),
                    ],
                    options={
                        "db_table": "evidence_auditevent",
                        "ordering": ["seq"],
                        "indexes": [
                            models.Index(
                                fields=["object_type", "object_id", "seq"], name="audit_object_seq"
                            ),
                            models.Index(fields=["actor_user_id", "seq"], name="audit_actor_seq"),
                            models.Index(fields=["action", "seq"], name="audit_action_seq"),
                        ],
                    },
                ),
                migrations.CreateModel(
                    name="Export",
                    fields=[
                        (
                            "id",
                            models.UUIDField(
                                default=uuid.uuid4,
                                editable=False,
                                primary_key=True,
                                serialize=False,
                            ),
                        ),
                        (
                            "recipient",
                            models.CharField(
                                help_text="Who it is for, e.g. CPS London North", max_length=200
                            ),
                        ),
                        ("purpose", models.TextField()),
                        ("created_at", models.DateTimeField()),
                        (
                            "borough",
                            models.ForeignKey(
                                on_delete=django.db.models.deletion.PROTECT,
                                related_name="exports",
                                to="devices.borough",
                            ),
                        ),
                    ],
                    options={
                        "db_table": "evidence_export",
                        "ordering": ["-created_at"],
                    },
                ),
            ],
            database_operations=[],
        ),
    ]
