"""The audit log becomes a hash chain.

Existing events are chained in their id order (the order they were written), their content moved
into the canonical `body`, and the searchable columns become generated from `body`. The reverse
keeps the chain (it cannot restore the dropped columns' values into a form that is not hashed).
"""

import django.db.models.fields.json
import django.db.models.functions.comparison
from django.db import migrations, models

import custody.models


def _json_of(expression):
    return django.db.models.fields.json.KeyTextTransform(
        expression, django.db.models.functions.comparison.Cast("body", models.JSONField())
    )


def _generated(key, output_field):
    return models.GeneratedField(
        db_persist=True, expression=_json_of(key), output_field=output_field
    )


def chain_existing_events(apps, schema_editor):
    from custody.audit import GENESIS, chain_hash, event_body

    AuditEvent = apps.get_model("evidence", "AuditEvent")
    AuditChainHead = apps.get_model("evidence", "AuditChainHead")
    User = apps.get_model("auth", "User")
    names = dict(User.objects.values_list("id", "username"))
    prev, seq = GENESIS, 0
    for event in AuditEvent.objects.order_by("id").select_related("borough").iterator(2000):
        seq += 1
        body = event_body(
            seq=seq,
            at=event.at,
            entry={
                "actor": event.actor_label or names.get(event.actor_id, "system"),
                "actor_id": event.actor_id,
                "action": event.action,
                "object_type": event.object_type,
                "object_id": event.object_id,
                "borough": event.borough.code if event.borough_id else "",
                "justification": event.justification,
                "recipient": event.recipient,
                "detail": event.detail,
            },
        )
        digest = chain_hash(prev, body)
        AuditEvent.objects.filter(pk=event.pk).update(
            seq=seq, prev_hash=prev, hash=digest, body=body
        )
        prev = digest
    AuditChainHead.objects.create(id=1, seq=seq, hash=prev)


class Migration(migrations.Migration):
    dependencies = [
        ("auth", "0012_alter_user_first_name_max_length"),
        ("devices", "0001_initial"),
        ("evidence", "0004_borough_grants_and_bookmarks"),
    ]

    operations = [
        migrations.CreateModel(
            name="AuditChainHead",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                ("seq", models.BigIntegerField(default=0)),
                ("hash", models.CharField(max_length=64)),
            ],
        ),
        migrations.AddField("auditevent", "body", models.TextField(null=True)),
        migrations.AddField("auditevent", "hash", models.CharField(max_length=64, null=True)),
        migrations.AddField("auditevent", "prev_hash", models.CharField(max_length=64, null=True)),
        migrations.AddField("auditevent", "seq", models.BigIntegerField(null=True, unique=True)),
        migrations.RunPython(chain_existing_events, migrations.RunPython.noop),
        migrations.RemoveIndex(model_name="auditevent", name="audit_object"),
        migrations.RemoveIndex(model_name="auditevent", name="audit_actor"),
        *[
            migrations.RemoveField(model_name="auditevent", name=name)
            for name in [
                "actor",
                "borough",
                "detail",
                "justification",
                "recipient",
                "at",
                "action",
                "actor_label",
                "object_id",
                "object_type",
            ]
        ],
        migrations.AlterField(
            "auditevent",
            "body",
            models.TextField(help_text="Canonical JSON of the event: the hashed content"),
        ),
        migrations.AlterField("auditevent", "hash", models.CharField(max_length=64)),
        migrations.AlterField("auditevent", "prev_hash", models.CharField(max_length=64)),
        migrations.AlterField(
            "auditevent",
            "seq",
            models.BigIntegerField(help_text="Position in the chain, from 1", unique=True),
        ),
        migrations.AddField(
            "auditevent",
            "at",
            models.GeneratedField(
                db_persist=True,
                expression=custody.models.EpochMicros(
                    django.db.models.functions.comparison.Cast(
                        _json_of("t"), models.BigIntegerField()
                    )
                ),
                output_field=models.DateTimeField(),
            ),
        ),
        migrations.AddField(
            "auditevent",
            "actor_user_id",
            models.GeneratedField(
                db_persist=True,
                expression=django.db.models.functions.comparison.Cast(
                    _json_of("actor_id"), models.BigIntegerField()
                ),
                output_field=models.BigIntegerField(null=True),
            ),
        ),
        migrations.AddField(
            "auditevent", "actor_label", _generated("actor", models.CharField(max_length=150))
        ),
        migrations.AddField(
            "auditevent", "action", _generated("action", models.CharField(max_length=64))
        ),
        migrations.AddField(
            "auditevent", "object_type", _generated("object_type", models.CharField(max_length=40))
        ),
        migrations.AddField(
            "auditevent", "object_id", _generated("object_id", models.CharField(max_length=64))
        ),
        migrations.AddField(
            "auditevent", "borough_code", _generated("borough", models.CharField(max_length=2))
        ),
        migrations.AddIndex(
            model_name="auditevent",
            index=models.Index(fields=["object_type", "object_id", "seq"], name="audit_object_seq"),
        ),
        migrations.AddIndex(
            model_name="auditevent",
            index=models.Index(fields=["actor_user_id", "seq"], name="audit_actor_seq"),
        ),
        migrations.AddIndex(
            model_name="auditevent",
            index=models.Index(fields=["action", "seq"], name="audit_action_seq"),
        ),
        migrations.AlterModelOptions(name="auditevent", options={"ordering": ["seq"]}),
    ]
