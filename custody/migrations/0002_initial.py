"""Exports' and share links' references to other apps, in Django's state only (the columns exist);
the content types of the moved models are renamed, so permissions given on them are kept.
"""

import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models

APP = "custody"
MODELS = ["auditevent", "auditchainhead", "audittreenode", "export", "sharelink"]


def _rename_content_types(apps, app_from: str, app_to: str) -> None:
    # Permissions point at content types: renaming them keeps every group's permissions.
    ContentType = apps.get_model("contenttypes", "ContentType")
    ContentType.objects.filter(app_label=app_from, model__in=MODELS).update(app_label=app_to)


def forward(apps, schema_editor):
    _rename_content_types(apps, "evidence", APP)


def backward(apps, schema_editor):
    _rename_content_types(apps, APP, "evidence")


class Migration(migrations.Migration):
    initial = True

    dependencies = [
        ("contenttypes", "0002_remove_content_type_name"),
        ("custody", "0001_initial"),
        ("evidence", "0013_move_audit_exports_flags_cases"),
        ("review", "0001_initial"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.AddField(
                    model_name="export",
                    name="case",
                    field=models.ForeignKey(
                        blank=True,
                        null=True,
                        on_delete=django.db.models.deletion.PROTECT,
                        related_name="exports",
                        to="review.case",
                    ),
                ),
                migrations.AddField(
                    model_name="export",
                    name="created_by",
                    field=models.ForeignKey(
                        on_delete=django.db.models.deletion.PROTECT,
                        related_name="+",
                        to=settings.AUTH_USER_MODEL,
                    ),
                ),
                migrations.AddField(
                    model_name="export",
                    name="recordings",
                    field=models.ManyToManyField(related_name="exports", to="evidence.recording"),
                ),
                migrations.AddField(
                    model_name="sharelink",
                    name="created_by",
                    field=models.ForeignKey(
                        on_delete=django.db.models.deletion.PROTECT,
                        related_name="+",
                        to=settings.AUTH_USER_MODEL,
                    ),
                ),
                migrations.AddField(
                    model_name="sharelink",
                    name="export",
                    field=models.ForeignKey(
                        on_delete=django.db.models.deletion.PROTECT,
                        related_name="shares",
                        to="custody.export",
                    ),
                ),
                migrations.AddField(
                    model_name="sharelink",
                    name="revoked_by",
                    field=models.ForeignKey(
                        blank=True,
                        null=True,
                        on_delete=django.db.models.deletion.PROTECT,
                        related_name="+",
                        to=settings.AUTH_USER_MODEL,
                    ),
                ),
            ],
            database_operations=[],
        ),
        migrations.RunPython(forward, backward),
    ]
