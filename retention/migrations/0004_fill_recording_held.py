"""Fill Recording.held from the active holds that existed before the flag."""

from django.db import migrations


def fill_held(apps, schema_editor):
    Hold = apps.get_model("retention", "Hold")
    Recording = apps.get_model("evidence", "Recording")
    held_ids = Hold.objects.filter(active=True).values("recording_id")
    Recording.objects.filter(pk__in=held_ids).update(held=True)


def clear_held(apps, schema_editor):
    apps.get_model("evidence", "Recording").objects.update(held=False)


class Migration(migrations.Migration):
    dependencies = [
        ("retention", "0003_sweep_runs_and_certificates"),
        ("evidence", "0002_recording_sweep_fields"),
    ]
    operations = [migrations.RunPython(fill_held, clear_held)]
