"""The default policy: footage not retained is deleted 31 days after the recording started."""

from django.db import migrations


def create_default(apps, schema_editor):
    RetentionPolicy = apps.get_model("retention", "RetentionPolicy")
    RetentionPolicy.objects.get_or_create(
        name="Default (unretained footage)",
        defaults={
            "days": 31,
            "is_default": True,
            "description": "Footage not retained as evidence or for a policing purpose is deleted "
            "automatically within 31 days of recording.",
        },
    )


def remove_default(apps, schema_editor):
    apps.get_model("retention", "RetentionPolicy").objects.filter(is_default=True).delete()


class Migration(migrations.Migration):
    dependencies = [("retention", "0001_initial")]
    operations = [migrations.RunPython(create_default, remove_default)]
