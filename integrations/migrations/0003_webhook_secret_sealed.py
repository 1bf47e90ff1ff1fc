"""Webhook signing secrets sealed under the key-encryption key instead of kept in clear."""

import uuid

from django.db import migrations, models

from evidence.crypto import unwrap_data_key, wrap_data_key


def seal_secrets(apps, schema_editor):
    WebhookSubscriber = apps.get_model("integrations", "WebhookSubscriber")
    for subscriber in WebhookSubscriber.objects.all():
        subscriber.secret_id = uuid.uuid4()
        subscriber.secret_kek_id, subscriber.secret_sealed = wrap_data_key(
            subscriber.secret.encode(), object_id=subscriber.secret_id
        )
        subscriber.save(update_fields=["secret_id", "secret_kek_id", "secret_sealed"])


def unseal_secrets(apps, schema_editor):
    WebhookSubscriber = apps.get_model("integrations", "WebhookSubscriber")
    for subscriber in WebhookSubscriber.objects.all():
        subscriber.secret = unwrap_data_key(
            subscriber.secret_sealed,
            kek_id=subscriber.secret_kek_id,
            object_id=subscriber.secret_id,
        ).decode()
        subscriber.save(update_fields=["secret"])


class Migration(migrations.Migration):
    dependencies = [("integrations", "0002_outcome_retention_table")]

    operations = [
        migrations.AddField(
            model_name="webhooksubscriber",
            name="secret_id",
            field=models.UUIDField(null=True, editable=False),
        ),
        migrations.AddField(
            model_name="webhooksubscriber",
            name="secret_kek_id",
            field=models.CharField(default="", editable=False, max_length=64),
            preserve_default=False,
        ),
        migrations.AddField(
            model_name="webhooksubscriber",
            name="secret_sealed",
            field=models.BinaryField(
                default=b"", editable=False, help_text="Shared with the receiver"
            ),
            preserve_default=False,
        ),
        migrations.RunPython(seal_secrets, unseal_secrets),
        migrations.AlterField(
            model_name="webhooksubscriber",
            name="secret",
            field=models.CharField(default="", max_length=100),
        ),
        migrations.RemoveField(model_name="webhooksubscriber", name="secret"),
        migrations.AlterField(
            model_name="webhooksubscriber",
            name="secret_id",
            field=models.UUIDField(default=uuid.uuid4, editable=False, unique=True),
        ),
    ]
