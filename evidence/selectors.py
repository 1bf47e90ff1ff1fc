"""Reads of the evidence app. Every read of footage goes through a selector that takes the user.

Scope: a system admin sees every borough; a custody sergeant, borough admin or disclosure officer
sees their borough; an officer sees their own recordings; anyone else nothing. Out of scope is the
same as missing (404), so a response never reveals that a recording exists.
"""

from __future__ import annotations

import uuid

from django.db.models import Q, QuerySet
from django.http import Http404
from django.utils import timezone

from common.roles import BOROUGH_ROLES, Role, user_has_role
from devices.models import Officer
from devices.selectors import boroughs_for
from devices.services import CameraFootage
from evidence.models import BoroughAccessGrant, IngestUpload, Recording, RecordingState


def staff_borough_ids(*, user, with_grants: bool) -> list[int] | None:
    """None for a system admin (every borough); the borough ids of a borough role (plus granted
    ones); [] for anyone else. Plain ids, not a subquery, so the planner walks the borough index."""
    if not user.is_authenticated:
        return []
    if user_has_role(user, Role.SYSTEM_ADMIN):
        return None
    if not user_has_role(user, *BOROUGH_ROLES):
        return []
    ids = _own_borough_ids(user=user)
    return ids + granted_borough_ids(user=user) if with_grants else ids


def _own_borough_ids(*, user) -> list[int]:
    """`boroughs_for`'s ids for a borough role, read off the officer record (one query, not three:
    every Range request of the player comes through here)."""
    officer = getattr(user, "officer", None)
    return [officer.borough_id] if officer is not None and officer.borough_id else []


def recording_list_for(*, user) -> QuerySet[Recording]:
    """Recordings the user may see (any state); filter further for what a page shows."""
    borough_ids = staff_borough_ids(user=user, with_grants=True)
    if borough_ids is None:
        return Recording.objects.all()
    if borough_ids:
        return Recording.objects.filter(borough_id__in=borough_ids)
    officer = getattr(user, "officer", None) if user.is_authenticated else None
    if user_has_role(user, Role.OFFICER) and officer is not None:
        return Recording.objects.filter(officer=officer)
    return Recording.objects.none()


def granted_borough_ids(*, user) -> list[int]:
    """Other boroughs the user may see now through an unexpired, unrevoked grant."""
    return list(_current_grants(user=user).values_list("borough_id", flat=True))


def _current_grants(*, user) -> QuerySet[BoroughAccessGrant]:
    now = timezone.now()
    return BoroughAccessGrant.objects.filter(
        user=user, revoked_at__isnull=True, starts_at__lte=now, expires_at__gt=now
    )


def recording_get_for(*, user, recording_id) -> Recording:
    """One available recording the user may see, or 404 (the same for missing and not yours)."""
    try:
        pk = uuid.UUID(str(recording_id))
    except ValueError:
        raise Http404 from None
    recording = (
        _recording_scope_for_one(user=user)
        .filter(pk=pk, state=RecordingState.AVAILABLE)
        .select_related("camera", "officer", "borough", "dock")
        .first()
    )
    if recording is None:
        raise Http404
    return recording


def _recording_scope_for_one(*, user) -> QuerySet[Recording]:
    """`recording_list_for`'s scope as one query: the borough of a borough role's officer record and
    its current grants are asked for inside the recording's own query. The player fetches one
    recording per Range request, found by its primary key, so the planner has no borough index to
    walk and subqueries cost nothing, whereas separate queries are round trips. For a borough role
    it is the list's scope exactly: its officer's borough (an officer's borough is never null) and
    its grants; without an officer record, its grants alone."""
    if user_has_role(user, Role.SYSTEM_ADMIN):
        return Recording.objects.all()
    if not user_has_role(user, *BOROUGH_ROLES):  # an officer, anyone else: the list's own rules
        return recording_list_for(user=user)
    return Recording.objects.filter(
        Q(borough_id__in=Officer.objects.filter(user=user).values("borough_id"))
        | Q(borough_id__in=_current_grants(user=user).values("borough_id"))
    )


def clock_suspect_list_for(*, user) -> QuerySet[Recording]:
    """Stored recordings whose camera clock is suspect, for the estate admins of their borough
    (system admins: every borough), soonest deletion first. Grants give no access here:
    correcting a time re-attributes footage, which is the borough's own business."""
    return (
        _clock_scope(user=user)
        .filter(clock_suspect=True)
        .select_related("camera", "officer", "borough")
        .order_by("delete_after", "id")
    )


def clock_correctable_get_for(*, user, recording_id) -> Recording:
    """A recording whose time the admin may correct: clock suspect, or corrected before (so a
    wrong correction can itself be put right). 404 otherwise, the same for missing and not yours."""
    try:
        pk = uuid.UUID(str(recording_id))
    except ValueError:
        raise Http404 from None
    recording = (
        _clock_scope(user=user)
        .filter(Q(clock_suspect=True) | Q(clock_corrected_at__isnull=False), pk=pk)
        .select_related("camera", "officer", "borough", "dock")
        .first()
    )
    if recording is None:
        raise Http404
    return recording


def _clock_scope(*, user) -> QuerySet[Recording]:
    if not user_has_role(user, Role.SYSTEM_ADMIN, Role.BOROUGH_ADMIN):
        return Recording.objects.none()
    return Recording.objects.filter(
        state=RecordingState.AVAILABLE, borough__in=boroughs_for(user=user)
    )


def camera_unfinished_uploads(*, camera) -> QuerySet[IngestUpload]:
    """Uploads of a camera's clips that have started and not finished (nor been given up)."""
    active = IngestUpload.objects.filter(state=IngestUpload.State.ACTIVE)
    return active.filter(recording__camera=camera) | active.filter(metadata__camera=camera.serial)


def camera_footage(*, camera) -> CameraFootage:
    """What the camera lifecycle's rules need to know of a camera's footage."""
    last_clip = Recording.objects.filter(camera=camera).order_by("-started_at").first()
    return CameraFootage(
        unfinished_uploads=camera_unfinished_uploads(camera=camera).count(),
        last_clip_started_at=last_clip.started_at if last_clip else None,
    )
