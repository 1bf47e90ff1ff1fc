"""Clock-suspect recordings and the minimum review window after arrival (evidence/clock.py).

The fill protects footage already stored, before any sweep can run against the new rules: an
available recording whose start is before 2000, more than a day after it arrived, or before its
camera was registered is marked clock suspect and kept at least the retention period from its
arrival; every available recording is kept at least BWV_MIN_REVIEW_DAYS after its arrival. Dates
only ever move later and attribution is left alone (a borough admin corrects it, audited, from the
list of suspect clocks). Reversing drops the new columns; the later dates stay, which loses nothing.
"""

from datetime import UTC, datetime, timedelta

from django.conf import settings
from django.db import migrations, models
from django.db.models import F, OuterRef, Subquery
from django.db.models.functions import Coalesce, Greatest, Least


def protect_stored_recordings(apps, schema_editor):
    Recording = apps.get_model("evidence", "Recording")
    CameraAssignment = apps.get_model("devices", "CameraAssignment")
    RetentionPolicy = apps.get_model("retention", "RetentionPolicy")
    policy = RetentionPolicy.objects.filter(is_default=True).first()
    retention = timedelta(days=policy.days if policy else settings.BWV_RETENTION_DAYS)
    live = Recording.objects.filter(state="available", available_at__isnull=False)
    first_issue = (
        CameraAssignment.objects.filter(camera=OuterRef("camera"))
        .order_by("issued_at")
        .values("issued_at")[:1]
    )
    registered = Least(
        F("camera__created_at"), Coalesce(Subquery(first_issue), F("camera__created_at"))
    )
    suspects = [
        ("before_2000", live.filter(started_at__lt=datetime(2000, 1, 1, tzinfo=UTC))),
        ("ahead", live.filter(started_at__gt=F("available_at") + timedelta(days=1))),
        (
            "before_registration",
            live.annotate(registered=registered).filter(started_at__lt=F("registered")),
        ),
    ]
    for reason, found in suspects:
        Recording.objects.filter(pk__in=found.filter(clock_suspect=False).values("pk")).update(
            clock_suspect=True,
            clock_suspect_reason=reason,
            delete_after=Greatest(F("delete_after"), F("available_at") + retention),
        )
    if settings.BWV_MIN_REVIEW_DAYS > 0:
        window = timedelta(days=settings.BWV_MIN_REVIEW_DAYS)
        live.filter(delete_after__lt=F("available_at") + window).update(
            delete_after=F("available_at") + window, review_window_extended=True
        )


class Migration(migrations.Migration):
    dependencies = [
        ("devices", "0003_camera_lifecycle_and_pool"),
        ("evidence", "0008_access_request_workflow"),
        ("retention", "0004_fill_recording_held"),
    ]

    operations = [
        migrations.AddField(
            model_name="recording",
            name="clock_corrected_at",
            field=models.DateTimeField(blank=True, null=True),
        ),
        migrations.AddField(
            model_name="recording",
            name="clock_suspect",
            field=models.BooleanField(default=False),
        ),
        migrations.AddField(
            model_name="recording",
            name="clock_suspect_reason",
            field=models.CharField(
                blank=True,
                choices=[
                    ("file_time", "The clip carried no creation time: the time is the file's"),
                    ("before_2000", "Before 2000: the camera's clock was reset"),
                    ("before_registration", "Before the camera was registered"),
                    ("ahead", "Ahead of the server's clock"),
                ],
                max_length=20,
            ),
        ),
        migrations.AddField(
            model_name="recording",
            name="review_window_extended",
            field=models.BooleanField(default=False),
        ),
        migrations.AddIndex(
            model_name="recording",
            index=models.Index(
                condition=models.Q(("clock_suspect", True), ("state", "available")),
                fields=["borough", "delete_after"],
                name="rec_clock_suspect",
            ),
        ),
        migrations.AddIndex(
            model_name="recording",
            index=models.Index(
                condition=models.Q(("review_window_extended", True), ("state", "available")),
                fields=["delete_after"],
                name="rec_review_window",
            ),
        ),
        migrations.AddConstraint(
            model_name="recording",
            constraint=models.CheckConstraint(
                condition=models.Q(
                    ("clock_suspect", False),
                    models.Q(("clock_suspect_reason", ""), _negated=True),
                    _connector="OR",
                ),
                name="recording_clock_suspect_has_reason",
            ),
        ),
        migrations.RunPython(protect_stored_recordings, migrations.RunPython.noop),
    ]
