from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("evidence", "0013_move_audit_exports_flags_cases"),
    ]

    operations = [
        # Uploads begun before this migration were cut into parts of eight segments: they resume
        # with them.
        migrations.AddField(
            model_name="ingestupload",
            name="part_segments",
            field=models.PositiveSmallIntegerField(default=8),
            preserve_default=False,
        ),
    ]
