"""Reads of the retention app."""

from __future__ import annotations

from datetime import timedelta

from django.conf import settings
from django.db.models import Count, Sum
from django.db.models.functions import TruncDate
from django.utils import timezone

from common.roles import BOROUGH_ROLES, Role, user_has_role
from evidence.models import RecordingState
from evidence.selectors import recording_list_for
from retention.models import RetentionPolicy, SweepRun

WINDOW_LISTED = 20


def default_policy() -> RetentionPolicy | None:
    return RetentionPolicy.objects.filter(is_default=True).first()


def default_retention_days() -> int:
    policy = default_policy()
    return policy.days if policy else settings.BWV_RETENTION_DAYS


def _recordings_for(*, user):
    """The recordings whose retention the user may see (the evidence app's scope), or None for
    roles that do not manage retention: officers get a 404."""
    if not user_has_role(user, Role.SYSTEM_ADMIN, *BOROUGH_ROLES):
        return None
    return recording_list_for(user=user)


def retention_report_for(*, user, now, days: int = 7) -> dict | None:
    """What the retention page shows, scoped to the user; None when they may not see it."""
    recordings = _recordings_for(user=user)
    if recordings is None:
        return None
    due = (
        recordings.filter(
            state=RecordingState.AVAILABLE,
            held=False,
            delete_after__gt=now,
            delete_after__lte=now + timedelta(days=days),
        )
        .annotate(day=TruncDate("delete_after", tzinfo=timezone.get_default_timezone()))
        .values("day")
        .annotate(count=Count("pk"), bytes=Sum("size_bytes"))
        .order_by("day")
    )
    overdue = recordings.filter(
        state__in=[RecordingState.AVAILABLE, RecordingState.DELETING],
        held=False,
        delete_after__lt=now - timedelta(days=1),
    ).count()
    # Footage that arrived too late for its retention period alone to leave the review window:
    # what the window is keeping now, soonest deletion first.
    by_window = recordings.filter(
        state=RecordingState.AVAILABLE, review_window_extended=True, delete_after__gt=now
    )
    runs = list(SweepRun.objects.all()[:20])
    return {
        "review_days": settings.BWV_MIN_REVIEW_DAYS,
        "window_count": by_window.count(),
        "window_next": list(
            by_window.select_related("camera").order_by("delete_after", "id")[:WINDOW_LISTED]
        ),
        "runs": runs,
        # The last real run (not a dry run), shown on its own when it did not finish its work.
        "last_run": last_sweep_run(),
        "due": list(due),
        "overdue": overdue,
        "held": recordings.filter(state=RecordingState.AVAILABLE, held=True).count(),
        "stored": recordings.filter(state=RecordingState.AVAILABLE).count(),
    }


def last_sweep_run() -> SweepRun | None:
    """The last real run of the sweep (not a dry run), for the system admins' home page."""
    return SweepRun.objects.filter(dry_run=False).order_by("-started_at").first()
