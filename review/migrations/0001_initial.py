"""Flags and cases, moved from the evidence app: in Django's state only, on the tables the evidence
app made; their content types are renamed, so permissions given on them are kept.
"""

import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models

APP = "review"
MODELS = ["evidenceflag", "case"]


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
        ("devices", "0004_force"),
        ("evidence", "0013_move_audit_exports_flags_cases"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.CreateModel(
                    name="Case",
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
                        ("crime_reference", models.CharField(db_index=True, max_length=40)),
                        ("title", models.CharField(max_length=200)),
                        ("created_at", models.DateTimeField(auto_now_add=True)),
                        ("closed_at", models.DateTimeField(blank=True, null=True)),
                        ("close_reason", models.TextField(blank=True)),
                        (
                            "borough",
                            models.ForeignKey(
                                on_delete=django.db.models.deletion.PROTECT,
                                related_name="cases",
                                to="devices.borough",
                            ),
                        ),
                        (
                            "closed_by",
                            models.ForeignKey(
                                blank=True,
                                null=True,
                                on_delete=django.db.models.deletion.PROTECT,
                                related_name="+",
                                to=settings.AUTH_USER_MODEL,
                            ),
                        ),
                        (
                            "created_by",
                            models.ForeignKey(
                                on_delete=django.db.models.deletion.PROTECT,
                                related_name="+",
                                to=settings.AUTH_USER_MODEL,
                            ),
                        ),
                        (
                            "recordings",
                            models.ManyToManyField(
                                blank=True, related_name="cases", to="evidence.recording"
                            ),
                        ),
                    ],
                    options={
                        "db_table": "evidence_case",
                        "ordering": ["-created_at"],
                    },
                ),
                migrations.CreateModel(
                    name="EvidenceFlag",
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
                            "kind",
                            models.CharField(
                                choices=[
                                    ("evidence", "Evidence"),
                                    ("policing_purpose", "Policing purpose"),
                                ],
                                max_length=20,
                            ),
                        ),
                        ("crime_reference", models.CharField(blank=True, max_length=40)),
                        ("reason", models.TextField()),
                        ("flagged_at", models.DateTimeField()),
                        ("lifted_at", models.DateTimeField(blank=True, null=True)),
                        ("lift_reason", models.TextField(blank=True)),
                        (
                            "flagged_by",
                            models.ForeignKey(
                                on_delete=django.db.models.deletion.PROTECT,
                                related_name="+",
                                to=settings.AUTH_USER_MODEL,
                            ),
                        ),
                        (
                            "lifted_by",
                            models.ForeignKey(
                                blank=True,
                                null=True,
                                on_delete=django.db.models.deletion.PROTECT,
                                related_name="+",
                                to=settings.AUTH_USER_MODEL,
                            ),
                        ),
                        (
                            "recording",
                            models.ForeignKey(
                                on_delete=django.db.models.deletion.PROTECT,
                                related_name="flags",
                                to="evidence.recording",
                            ),
                        ),
                    ],
                    options={
                        "db_table": "evidence_evidenceflag",
                        "ordering": ["-flagged_at"],
                        "indexes": [
                            models.Index(fields=["crime_reference"], name="flag_crime_ref")
                        ],
                        "constraints": [
                            models.CheckConstraint(
                                condition=models.Q(
                                    models.Q(("kind", "evidence"), _negated=True),
                                    models.Q(("crime_reference", ""), _negated=True),
                                    _connector="OR",
                                ),
                                name="evidence_flag_has_crime_reference",
                            )
                        ],
                    },
                ),
            ],
            database_operations=[],
        ),
        migrations.RunPython(forward, backward),
    ]
