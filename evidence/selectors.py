"""Reads of the evidence app. Every read of footage goes through a selector that takes the user.

Scope: a system admin sees every borough; a custody sergeant, borough admin or disclosure officer
sees their borough; an officer sees their own recordings; anyone else nothing. Out of scope is the
same as missing (404), so a response never reveals that a recording exists.
"""

from __future__ import annotations

import base64
import json
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db.models import Exists, OuterRef, Q, QuerySet
from django.http import Http404
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from common.roles import Role, user_has_role
from devices.selectors import boroughs_for
from evidence.models import (
    AuditEvent,
    BoroughAccessGrant,
    Case,
    EvidenceFlag,
    Export,
    Recording,
    RecordingState,
)

BOROUGH_ROLES = (Role.CUSTODY_SERGEANT, Role.BOROUGH_ADMIN, Role.DISCLOSURE_OFFICER)


def _staff_borough_ids(*, user, with_grants: bool) -> list[int] | None:
    """None for a system admin (every borough); the borough ids of a borough role (plus granted
    ones); [] for anyone else. Plain ids, not a subquery, so the planner walks the borough index."""
    if not user.is_authenticated:
        return []
    if user_has_role(user, Role.SYSTEM_ADMIN):
        return None
    if not user_has_role(user, *BOROUGH_ROLES):
        return []
    ids = list(boroughs_for(user=user).values_list("pk", flat=True))
    return ids + granted_borough_ids(user=user) if with_grants else ids


def recording_list_for(*, user) -> QuerySet[Recording]:
    """Recordings the user may see (any state); filter further for what a page shows."""
    borough_ids = _staff_borough_ids(user=user, with_grants=True)
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
    now = timezone.now()
    return list(
        BoroughAccessGrant.objects.filter(
            user=user, revoked_at__isnull=True, starts_at__lte=now, expires_at__gt=now
        ).values_list("borough_id", flat=True)
    )


def recording_get_for(*, user, recording_id) -> Recording:
    """One available recording the user may see, or 404 (the same for missing and not yours)."""
    try:
        pk = uuid.UUID(str(recording_id))
    except ValueError:
        raise Http404 from None
    recording = (
        recording_list_for(user=user)
        .filter(pk=pk, state=RecordingState.AVAILABLE)
        .select_related("camera", "officer", "borough", "dock")
        .first()
    )
    if recording is None:
        raise Http404
    return recording


@dataclass(frozen=True)
class SearchFilters:
    officer: str = ""
    camera: str = ""
    started_from: datetime | None = None
    started_to: datetime | None = None
    flagged: bool | None = None
    crime_reference: str = ""
    case: int | None = None
    deleting_within_days: int | None = None
    oldest_first: bool = False


@dataclass(frozen=True)
class Page:
    recordings: list[Recording]
    next_cursor: str | None


def _encode_cursor(recording: Recording) -> str:
    raw = json.dumps([recording.started_at.isoformat(), str(recording.pk)]).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _decode_cursor(cursor: str) -> tuple[datetime, uuid.UUID] | None:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        started, pk = json.loads(raw)
        when = parse_datetime(started)
        return (when, uuid.UUID(pk)) if when else None
    except (ValueError, TypeError):
        return None


def recording_search(*, user, filters: SearchFilters, cursor: str = "", limit: int = 50) -> Page:
    """Search the user's recordings, newest first (or oldest), keyset-paginated.

    The keyset (started_at, id) makes page 10,000 cost what page 1 costs, using the index
    rec_borough_started.
    """
    qs = recording_list_for(user=user).filter(state=RecordingState.AVAILABLE)
    f = filters
    if f.officer:
        term = f.officer.strip()
        qs = qs.filter(
            Q(officer__collar_number__iexact=term)
            | Q(officer__last_name__istartswith=term)
            | Q(officer__first_name__istartswith=term)
        )
    if f.camera:
        qs = qs.filter(camera__serial__iexact=f.camera.strip())
    if f.started_from:
        qs = qs.filter(started_at__gte=f.started_from)
    if f.started_to:
        qs = qs.filter(started_at__lt=f.started_to)
    active_flags = EvidenceFlag.objects.filter(recording=OuterRef("pk"), lifted_at__isnull=True)
    if f.flagged is not None:
        qs = qs.filter(Exists(active_flags)) if f.flagged else qs.exclude(Exists(active_flags))
    if f.crime_reference:
        refs = EvidenceFlag.objects.filter(
            recording=OuterRef("pk"), crime_reference=f.crime_reference.strip().upper()
        )
        qs = qs.filter(Exists(refs))
    if f.case is not None:
        qs = qs.filter(cases__id=f.case)
    if f.deleting_within_days is not None:
        horizon = timezone.now() + timedelta(days=f.deleting_within_days)
        qs = qs.filter(held=False, delete_after__lte=horizon)
    position = _decode_cursor(cursor) if cursor else None
    if position is not None:
        started, pk = position
        # (started_at, id) past the cursor. The redundant bound on started_at alone lets the
        # database start the index scan at the cursor instead of filtering from the top.
        if f.oldest_first:
            qs = qs.filter(Q(started_at__gte=started),
                           Q(started_at__gt=started) | Q(id__gt=pk))  # fmt: skip
        else:
            qs = qs.filter(Q(started_at__lte=started),
                           Q(started_at__lt=started) | Q(id__lt=pk))  # fmt: skip
    order = ["started_at", "id"] if f.oldest_first else ["-started_at", "-id"]
    rows = list(
        qs.annotate(flagged=Exists(active_flags))
        .select_related("camera", "officer", "borough")
        .order_by(*order)[: limit + 1]
    )
    more = len(rows) > limit
    rows = rows[:limit]
    return Page(rows, _encode_cursor(rows[-1]) if more and rows else None)


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


def case_list_for(*, user) -> QuerySet[Case]:
    """Cases of the boroughs the user works in (system admins: all); officers see none."""
    borough_ids = _staff_borough_ids(user=user, with_grants=False)
    if borough_ids is None:
        return Case.objects.all()
    return Case.objects.filter(borough_id__in=borough_ids)


def case_get_for(*, user, case_id) -> Case:
    case = (
        case_list_for(user=user).filter(pk=case_id).select_related("borough", "created_by").first()
    )
    if case is None:
        raise Http404
    return case


def export_list_for(*, user) -> QuerySet[Export]:
    """Exports of the boroughs the user works in, for those who may export (system admins: all)."""
    if not user.is_authenticated or not (
        user.has_perm("evidence.export_recording") or user_has_role(user, Role.SYSTEM_ADMIN)
    ):
        return Export.objects.none()
    borough_ids = _staff_borough_ids(user=user, with_grants=False)
    if borough_ids is None:
        return Export.objects.all()
    return Export.objects.filter(borough_id__in=borough_ids)


def export_get_for(*, user, export_id) -> Export:
    try:
        pk = uuid.UUID(str(export_id))
    except ValueError:
        raise Http404 from None
    export = (
        export_list_for(user=user)
        .filter(pk=pk)
        .select_related("borough", "case", "created_by")
        .first()
    )
    if export is None:
        raise Http404
    return export


def audit_events_for_recording(*, recording: Recording) -> QuerySet[AuditEvent]:
    return AuditEvent.objects.filter(object_type="evidence.recording", object_id=str(recording.pk))


def audit_events_for_case(*, case: Case) -> QuerySet[AuditEvent]:
    """The case's own events and those of the recordings on it (added, viewed, exported...)."""
    recording_ids = [str(pk) for pk in case.recordings.values_list("pk", flat=True)]
    return AuditEvent.objects.filter(
        Q(object_type="evidence.case", object_id=str(case.pk))
        | Q(object_type="evidence.recording", object_id__in=recording_ids)
    )


def audit_user_get_for(*, user, subject_id):
    """A user whose actions the viewer may audit: system admins anyone; borough roles the people
    of their own borough. 404 otherwise (the same for missing and not yours)."""
    from django.contrib.auth import get_user_model

    from devices.selectors import user_borough

    if not str(subject_id).isdigit():
        raise Http404
    subject = get_user_model().objects.filter(pk=int(subject_id)).first()
    if subject is None:
        raise Http404
    if user_has_role(user, Role.SYSTEM_ADMIN):
        return subject
    borough = user_borough(subject)
    if borough is None or borough.pk not in (
        _staff_borough_ids(user=user, with_grants=False) or []
    ):
        raise Http404
    return subject
