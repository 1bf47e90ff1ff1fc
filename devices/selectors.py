"""Reads of the devices app. Protected reads take the user and are scoped to what they may see."""

from __future__ import annotations

import hashlib
import hmac
from datetime import datetime

from django.db.models import Min, Q, QuerySet
from django.http import Http404

from common.roles import Role, user_has_role
from devices.models import (
    Borough,
    Camera,
    CameraAssignment,
    Dock,
    LostCameraAlert,
    Officer,
    Unit,
)


def user_borough(user) -> Borough | None:
    """The borough a staff member works in (through their officer record), or None."""
    officer = getattr(user, "officer", None) if user.is_authenticated else None
    return officer.borough if officer is not None else None


def boroughs_for(*, user) -> QuerySet[Borough]:
    """Boroughs whose data the user may see: all for a system admin, else their own."""
    if user_has_role(user, Role.SYSTEM_ADMIN):
        return Borough.objects.all()
    borough = user_borough(user)
    return Borough.objects.filter(pk=borough.pk) if borough else Borough.objects.none()


def officer_list_for(*, user) -> QuerySet[Officer]:
    if not user_has_role(user, Role.SYSTEM_ADMIN, Role.BOROUGH_ADMIN):
        return Officer.objects.none()
    return Officer.objects.filter(borough__in=boroughs_for(user=user)).select_related(
        "borough", "unit"
    )


def camera_list_for(*, user) -> QuerySet[Camera]:
    if not user_has_role(user, Role.SYSTEM_ADMIN, Role.BOROUGH_ADMIN):
        return Camera.objects.none()
    return Camera.objects.filter(borough__in=boroughs_for(user=user)).select_related("borough")


def officer_holding_camera(*, camera: Camera, at: datetime) -> Officer | None:
    """Who held `camera` at the instant `at`: the assignment issued at or before it and not yet
    returned then. None when nobody held it (the recording must then be attributed by an admin)."""
    assignment = (
        CameraAssignment.objects.filter(camera=camera, issued_at__lte=at)
        .filter(Q(returned_at__isnull=True) | Q(returned_at__gt=at))
        .select_related("officer")
        .order_by("-issued_at")
        .first()
    )
    return assignment.officer if assignment else None


def camera_registered_at(*, camera: Camera) -> datetime:
    """The earliest moment the system knows the camera existed: its registration, or an earlier
    issue recorded for it (an estate entered after its roll-out carries its real issue dates). No
    clip can have been recorded on it before then."""
    first_issue = camera.assignments.aggregate(first=Min("issued_at"))["first"]
    return min(camera.created_at, first_issue) if first_issue else camera.created_at


def dock_authenticate(*, key: str) -> Dock | None:
    """The active dock whose API key this is, or None. Constant-time comparison of the hash."""
    # The secret part is url-safe base64 and may itself contain "_": split twice at most.
    parts = key.split("_", 2)
    if len(parts) != 3 or parts[0] != "bwvdock":
        return None
    dock = Dock.objects.select_related("borough").filter(key_id=parts[1]).first()
    if dock is None or dock.revoked_at is not None:
        return None
    digest = hashlib.sha256(key.encode()).hexdigest()
    return dock if hmac.compare_digest(digest, dock.key_hash) else None


def estate_admin(user) -> bool:
    return user_has_role(user, Role.SYSTEM_ADMIN, Role.BOROUGH_ADMIN)


def unit_list_for(*, user) -> QuerySet[Unit]:
    if not estate_admin(user):
        return Unit.objects.none()
    return Unit.objects.filter(
        Q(borough__in=boroughs_for(user=user)) | Q(borough__isnull=True)
    ).select_related("borough")


def dock_list_for(*, user) -> QuerySet[Dock]:
    if not estate_admin(user):
        return Dock.objects.none()
    return Dock.objects.filter(borough__in=boroughs_for(user=user)).select_related("borough")


def _get_or_404(queryset, pk):
    obj = queryset.filter(pk=pk).first() if str(pk).isdigit() else None
    if obj is None:
        raise Http404
    return obj


def officer_get_for(*, user, officer_id) -> Officer:
    return _get_or_404(officer_list_for(user=user), officer_id)


def camera_get_for(*, user, camera_id) -> Camera:
    return _get_or_404(camera_list_for(user=user), camera_id)


def dock_get_for(*, user, dock_id) -> Dock:
    return _get_or_404(dock_list_for(user=user), dock_id)


def lost_alert_list_for(*, user) -> QuerySet[LostCameraAlert]:
    if not estate_admin(user):
        return LostCameraAlert.objects.none()
    return LostCameraAlert.objects.filter(borough__in=boroughs_for(user=user)).select_related(
        "camera", "raised_by"
    )


# -- Roll-out and estate dashboards -----------------------------------------------------------------
