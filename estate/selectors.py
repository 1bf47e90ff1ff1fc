"""Reads of the estate pages: the roll-out and estate dashboard's figures, scoped to the viewer."""

from __future__ import annotations

from datetime import datetime, timedelta

from django.db.models import Count, F, FloatField, OuterRef, Q, Subquery, Sum
from django.db.models.functions import Coalesce, TruncDate
from django.utils import timezone

from common.roles import Role, user_has_role
from devices.models import Camera, CameraAssignment, CameraStatus, Force, Officer
from devices.selectors import boroughs_for
from evidence.models import Recording, RecordingState
from retention.models import SweepRun


def force_camera_target() -> int:
    """The force's target of cameras in use (data, set in the admin; boroughs have their own)."""
    return Force.objects.values_list("camera_target", flat=True).first() or 0


def estate_figures(*, user, now: datetime) -> dict:
    """Every table behind the dashboard's charts, scoped to the user's boroughs, and the target
    the viewer answers for (their borough's, or the force's for a system admin)."""
    target, target_label = camera_target_for(user=user)
    boroughs = boroughs_for(user=user)
    london = timezone.get_default_timezone()  # London: nights and days as people here count them
    issued = dict(
        CameraAssignment.objects.filter(returned_at__isnull=True, camera__borough__in=boroughs)
        .values_list("camera__borough")
        .annotate(n=Count("pk"))
    )
    registered = dict(
        Camera.objects.filter(borough__in=boroughs)
        .exclude(status=CameraStatus.RETIRED)
        .values_list("borough")
        .annotate(n=Count("pk"))
    )
    rollout = [
        {
            "borough": b.name,
            "code": b.code,
            "issued": issued.get(b.pk, 0),
            "registered": registered.get(b.pk, 0),
            "target": b.target_cameras,
            "go_live": b.go_live_date.isoformat() if b.go_live_date else "",
        }
        for b in boroughs.order_by("name")
    ]
    recordings = Recording.objects.filter(borough__in=boroughs)
    since = now - timedelta(days=30)
    uploads = [
        {
            "day": row["day"].isoformat(),
            "uploads": row["n"],
            "hours": round((row["seconds"] or 0) / 3600, 2),
        }
        for row in recordings.filter(available_at__gte=since)
        .annotate(day=TruncDate("available_at", tzinfo=london))
        .values("day")
        .annotate(
            n=Count("pk"), seconds=Coalesce(Sum("duration_seconds"), 0.0, output_field=FloatField())
        )
        .order_by("day")
    ]
    live = recordings.filter(state=RecordingState.AVAILABLE)
    per_borough = {
        row["borough__name"]: row
        for row in live.values("borough__name").annotate(
            n=Count("pk"), bytes=Sum("size_bytes"), held=Count("pk", filter=Q(held=True))
        )
    }
    storage = [
        {"borough": name, "recordings": row["n"], "gib": round((row["bytes"] or 0) / 2**30, 3)}
        for name, row in sorted(per_borough.items())
    ]
    flagged = [
        {
            "borough": name,
            "held": row["held"],
            "recordings": row["n"],
            "share_percent": round(100 * row["held"] / row["n"], 1) if row["n"] else 0.0,
        }
        for name, row in sorted(per_borough.items())
    ]
    deletions = [
        {
            "night": run.started_at.astimezone(london).date().isoformat(),
            "deleted": run.deleted,
            "failed": run.failed,
            "status": run.status,
        }
        for run in SweepRun.objects.filter(started_at__gte=since, dry_run=False).order_by(
            "started_at"
        )
    ]
    overdue = [
        {"borough": row["borough__name"], "overdue": row["n"]}
        for row in recordings.filter(
            state__in=[RecordingState.AVAILABLE, RecordingState.DELETING],
            held=False,
            delete_after__lt=now - timedelta(days=1),
        )
        .values("borough__name")
        .annotate(n=Count("pk"))
        .order_by("borough__name")
    ]
    total_issued = sum(r["issued"] for r in rollout)
    return {
        "rollout": rollout,
        "uploads": uploads,
        "storage": storage,
        "flagged": flagged,
        "deletions": deletions,
        "overdue": overdue,
        "total_issued": total_issued,
        "target": target,
        "target_label": target_label,
        "percent_of_target": round(100 * total_issued / target, 1) if target else 0.0,
    }


def undocked_cameras_for(*, user, now: datetime, days: int):
    """Cameras of the user's boroughs in use (not in stock, retired or lost) that have not docked
    for `days` or never have, the longest first; each annotated with `holder_id`."""
    cameras = Camera.objects.filter(borough__in=boroughs_for(user=user)).exclude(
        status__in=[CameraStatus.RETIRED, CameraStatus.LOST, CameraStatus.IN_STOCK]
    )
    return cameras_with_holder_id(
        cameras.filter(
            Q(last_docked_at__lt=now - timedelta(days=days)) | Q(last_docked_at__isnull=True)
        )
        .select_related("borough")
        .order_by(F("last_docked_at").asc(nulls_first=True), "serial")
    )


def camera_target_for(*, user) -> tuple[int, str]:
    """The roll-out target the viewer answers for and what it is: the force's for a system admin,
    else the sum of their boroughs' (one borough for a borough admin)."""
    if user_has_role(user, Role.SYSTEM_ADMIN):
        return force_camera_target(), "the force's target"
    boroughs = list(boroughs_for(user=user))
    total = sum(b.target_cameras for b in boroughs)
    label = f"{boroughs[0].name}'s target" if len(boroughs) == 1 else "your boroughs' target"
    return total, label


def cameras_with_holder_id(cameras):
    """Cameras annotated with `holder_id`: the officer who holds each now (an open assignment;
    for a lost camera, who had it when it was lost), or None. One subquery, no extra query."""
    return cameras.annotate(
        holder_id=Subquery(
            CameraAssignment.objects.filter(camera=OuterRef("pk"), returned_at__isnull=True)
            .order_by("-issued_at")
            .values("officer_id")[:1]
        )
    )


def attach_holders(cameras) -> list[Camera]:
    """Gives each camera (annotated by `cameras_with_holder_id`) its `holder`, an Officer or
    None, in one query however many cameras there are."""
    cameras = list(cameras)
    officers = Officer.objects.in_bulk({c.holder_id for c in cameras if c.holder_id})
    for camera in cameras:
        camera.holder = officers.get(camera.holder_id)
    return cameras


def officers_with_camera(officers):
    """Officers annotated with the serial and id of the camera each holds now (the latest issued,
    if more than one), or None."""
    holding = CameraAssignment.objects.filter(
        officer=OuterRef("pk"), returned_at__isnull=True
    ).order_by("-issued_at")
    return officers.annotate(
        camera_serial=Subquery(holding.values("camera__serial")[:1]),
        camera_id_held=Subquery(holding.values("camera_id")[:1]),
    )


def estate_queue_for(*, user, now: datetime, undocked_days: int = 7, limit: int = 10) -> dict:
    """The borough admin's work queue on the home page: the roll-out against the viewer's target,
    cameras in use that have not docked for `undocked_days`, and cameras reported lost."""
    boroughs = boroughs_for(user=user)
    cameras = Camera.objects.filter(borough__in=boroughs)
    issued = CameraAssignment.objects.filter(
        returned_at__isnull=True, camera__borough__in=boroughs
    ).count()
    target, target_label = camera_target_for(user=user)
    undocked = undocked_cameras_for(user=user, now=now, days=undocked_days)
    lost = cameras.filter(status=CameraStatus.LOST).select_related("borough")
    return {
        "issued": issued,
        "target": target,
        "target_label": target_label,
        "percent": round(100 * issued / target) if target else 0,
        "undocked_days": undocked_days,
        "undocked_count": undocked.count(),
        "undocked": attach_holders(undocked[:limit]),
        "lost_count": lost.count(),
        "lost": attach_holders(
            cameras_with_holder_id(lost).order_by(
                F("status_changed_at").desc(nulls_last=True), "serial"
            )[:limit]
        ),
    }
