"""Reads of the review desk: the recording search, cases, exports and the audit reports' scope.

Each takes the user and builds on the footage store's scoped reads (`evidence.selectors`): out of
scope is the same as missing (404), so a response never reveals that a record exists.
"""

from __future__ import annotations

import base64
import json
import math
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.contrib.auth import get_user_model
from django.db.models import Count, Exists, Q, QuerySet
from django.http import Http404
from django.utils.dateparse import parse_datetime

from common.roles import Role, user_has_role
from custody.models import AuditEvent, Export
from devices.selectors import user_borough
from evidence.ingest import MAX_RECORDING
from evidence.models import Incident, Recording, RecordingState
from evidence.selectors import recording_list_for, staff_borough_ids
from review.filters import RecordingFilter, active_flags
from review.models import CandidateState, Case, CaseCandidate, EvidenceFlag


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


def recording_search(*, user, params, limit: int = 50) -> tuple[RecordingFilter, Page | None]:
    """The user's available recordings that match the query parameters (`RecordingFilter`, the
    same for the page and the API), one page from `params["cursor"]`. The page is None when a
    parameter is wrong: the filter's form says which."""
    filters = RecordingFilter(
        params, queryset=recording_list_for(user=user).filter(state=RecordingState.AVAILABLE)
    )
    if not filters.is_valid():
        return filters, None
    page = recording_page(
        filters.qs,
        cursor=params.get("cursor") or "",
        limit=limit,
        oldest_first=filters.oldest_first_chosen,
    )
    return filters, page


def recording_page(
    queryset: QuerySet[Recording], *, cursor: str = "", limit: int = 50, oldest_first: bool = False
) -> Page:
    """One page of recordings, newest first (or oldest), keyset-paginated.

    The keyset (started_at, id) makes page 10,000 cost what page 1 costs, using the index
    rec_borough_started.
    """
    qs = queryset
    position = _decode_cursor(cursor) if cursor else None
    if position is not None:
        started, pk = position
        # (started_at, id) past the cursor. The redundant bound on started_at alone lets the
        # database start the index scan at the cursor instead of filtering from the top.
        if oldest_first:
            qs = qs.filter(Q(started_at__gte=started), Q(started_at__gt=started) | Q(id__gt=pk))
        else:
            qs = qs.filter(Q(started_at__lte=started), Q(started_at__lt=started) | Q(id__lt=pk))
    order = ["started_at", "id"] if oldest_first else ["-started_at", "-id"]
    rows = list(qs.select_related("camera", "officer", "borough").order_by(*order)[: limit + 1])
    more = len(rows) > limit
    rows = rows[:limit]
    _mark_flagged(rows)
    return Page(rows, _encode_cursor(rows[-1]) if more and rows else None)


def _mark_flagged(rows: list[Recording]) -> None:
    """Mark each row flagged or not by a standing flag, asked for these rows alone: as an
    annotation of the rows' query, PostgreSQL hashes every standing flag of the force before it
    returns a row, which at ten million recordings costs more than the page itself."""
    flagged = set(
        EvidenceFlag.objects.filter(
            recording_id__in=[r.pk for r in rows], lifted_at__isnull=True
        ).values_list("recording_id", flat=True)
    )
    for row in rows:
        row.flagged = row.pk in flagged


def case_list_for(*, user) -> QuerySet[Case]:
    """Cases of the boroughs the user works in (system admins: all), and the cases the user is
    the officer in the case of; other officers see none."""
    borough_ids = staff_borough_ids(user=user, with_grants=False)
    if borough_ids is None:
        return Case.objects.all()
    officer = getattr(user, "officer", None) if user.is_authenticated else None
    if officer is not None:
        return Case.objects.filter(Q(borough_id__in=borough_ids) | Q(officer_in_case=officer))
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
    borough_ids = staff_borough_ids(user=user, with_grants=False)
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
    if not str(subject_id).isdigit():
        raise Http404
    subject = get_user_model().objects.filter(pk=int(subject_id)).first()
    if subject is None:
        raise Http404
    if user_has_role(user, Role.SYSTEM_ADMIN):
        return subject
    borough = user_borough(subject)
    if borough is None or borough.pk not in (staff_borough_ids(user=user, with_grants=False) or []):
        raise Http404
    return subject


def incident_list_for(*, user) -> QuerySet[Incident]:
    """Dispatch incidents the user may look at: those of the boroughs whose footage they see
    (system admins: all), and for an officer the incidents they attended."""
    borough_ids = staff_borough_ids(user=user, with_grants=True)
    if borough_ids is None:
        return Incident.objects.all()
    if borough_ids:
        return Incident.objects.filter(borough_id__in=borough_ids)
    officer = getattr(user, "officer", None) if user.is_authenticated else None
    if officer is not None and user_has_role(user, Role.OFFICER):
        return Incident.objects.filter(attendances__officer=officer).distinct()
    return Incident.objects.none()


def incident_get_for(*, user, incident_id) -> Incident:
    incident = (
        incident_list_for(user=user).filter(pk=incident_id).select_related("borough").first()
        if str(incident_id).isdigit() and int(incident_id) < 2**63
        else None
    )
    if incident is None:
        raise Http404
    return incident


def incident_recordings_for(*, user, incident: Incident) -> QuerySet[Recording]:
    """The incident's tagged footage that the user may see, in the order it was recorded."""
    return (
        recording_list_for(user=user)
        .filter(state=RecordingState.AVAILABLE, incident_tags__incident=incident)
        .select_related("camera", "officer")
        .annotate(flagged=Exists(active_flags()))
        .order_by("started_at", "id")
    )


EARTH_RADIUS_METRES = 6_371_000


def metres_apart(a: tuple[float, float], b: tuple[float, float]) -> float:
    """The great-circle distance between two (latitude, longitude) points (haversine)."""
    lat1, lon1, lat2, lon2 = map(math.radians, (*a, *b))
    h = (
        math.sin((lat2 - lat1) / 2) ** 2
        + math.cos(lat1) * math.cos(lat2) * math.sin((lon2 - lon1) / 2) ** 2
    )
    return 2 * EARTH_RADIUS_METRES * math.asin(min(1.0, math.sqrt(h)))


def recording_overlaps_for(*, user, recording: Recording, within_metres: float) -> list[Recording]:
    """The footage to play beside `recording`: itself and every available recording the user may
    see of the same borough whose time overlaps it, in the order it was recorded. Where both clips
    carry GPS, only those within `within_metres`; a clip without a position is kept, since the
    place cannot rule it out. A clip whose camera clock is suspect is left out (its time says
    nothing), as incident tagging leaves it out, unless it is `recording` itself."""
    overlapping = Q(
        borough_id=recording.borough_id,
        clock_suspect=False,
        # The lower bound lets rec_borough_started walk only a day of the borough's footage: no
        # clip is longer (ingest refuses one), so none starting earlier reaches the start.
        started_at__gt=recording.started_at - MAX_RECORDING,
        started_at__lt=recording.ended_at,
        ended_at__gt=recording.started_at,
    )
    here = None
    if recording.gps_lat is not None and recording.gps_lon is not None:
        here = (recording.gps_lat, recording.gps_lon)
        # A box around the point, in the query; the exact distance is checked below.
        dlat = math.degrees(within_metres / EARTH_RADIUS_METRES)
        dlon = dlat / max(math.cos(math.radians(recording.gps_lat)), 1e-6)
        overlapping &= (
            Q(gps_lat__isnull=True)
            | Q(gps_lon__isnull=True)
            | Q(
                gps_lat__range=(here[0] - dlat, here[0] + dlat),
                gps_lon__range=(here[1] - dlon, here[1] + dlon),
            )
        )
    found = (
        recording_list_for(user=user)
        .filter(overlapping | Q(pk=recording.pk), state=RecordingState.AVAILABLE)
        .select_related("camera", "officer", "borough")
        .order_by("started_at", "id")
    )
    return [
        r
        for r in found
        if r.pk == recording.pk
        or here is None
        or r.gps_lat is None
        or r.gps_lon is None
        or metres_apart(here, (r.gps_lat, r.gps_lon)) <= within_metres
    ]


def case_decider(*, user, case: Case) -> bool:
    """Whether the user may decide on a case's candidate footage: its officer in the case, or
    someone who may change the cases of its borough (system admins: any)."""
    if not user.is_authenticated:
        return False
    officer = getattr(user, "officer", None)
    if officer is not None and case.officer_in_case_id == officer.pk:
        return True
    if user_has_role(user, Role.SYSTEM_ADMIN):
        return True
    borough_ids = staff_borough_ids(user=user, with_grants=False) or []
    return user.has_perm("review.change_case") and case.borough_id in borough_ids


def case_candidate_get_for(*, user, candidate_id) -> CaseCandidate:
    """A candidate of a case the user may see (or is the officer in), or 404 (the same for missing
    and not yours). Whether they may decide on it is `case_decider`'s to say."""
    candidate = (
        CaseCandidate.objects.filter(pk=candidate_id).select_related("case", "recording").first()
        if str(candidate_id).isdigit() and int(candidate_id) < 2**63
        else None
    )
    if candidate is None or not (
        case_list_for(user=user).filter(pk=candidate.case_id).exists()
        or case_decider(user=user, case=candidate.case)
    ):
        raise Http404
    return candidate


def cases_in_charge_for(*, user) -> QuerySet[Case]:
    """The cases whose candidates and reviews reach the user's work queue: those they are the
    officer in the case of, and the cases they may change in their boroughs."""
    officer = getattr(user, "officer", None) if user.is_authenticated else None
    mine = Q(officer_in_case=officer) if officer is not None else Q(pk__in=[])
    if user_has_role(user, Role.SYSTEM_ADMIN):
        return Case.objects.all()
    if user.is_authenticated and user.has_perm("review.change_case"):
        mine |= Q(borough_id__in=staff_borough_ids(user=user, with_grants=False) or [])
    return Case.objects.filter(mine)


def candidates_waiting_for(*, user) -> QuerySet[CaseCandidate]:
    return (
        CaseCandidate.objects.filter(
            state=CandidateState.OFFERED, case__in=cases_in_charge_for(user=user)
        )
        .select_related("case", "recording__officer", "recording__camera")
        .order_by("case_id", "recording__started_at")
    )


# -- The home page's work queue for those who review footage ----------------------------------


def borough_recordings_for(*, user) -> QuerySet[Recording]:
    """Stored footage of the boroughs the user works in (system admins: all). Grants to other
    boroughs are left out: they are for one inquiry, not for the daily work of the home page."""
    borough_ids = staff_borough_ids(user=user, with_grants=False)
    recordings = Recording.objects.filter(state=RecordingState.AVAILABLE)
    if borough_ids is None:
        return recordings
    return recordings.filter(borough_id__in=borough_ids)


def recent_recordings_for(*, user, limit: int = 10) -> list[Recording]:
    """The latest footage of the user's boroughs, newest first, each marked flagged or not."""
    rows = list(
        borough_recordings_for(user=user)
        .select_related("officer", "borough", "camera")
        .order_by("-started_at", "-id")[:limit]
    )
    _mark_flagged(rows)
    return rows


def deletion_due_for(*, user, now: datetime, days: int = 3, limit: int = 10) -> dict:
    """Footage of the user's boroughs that the sweep will delete within `days` because nothing
    holds it (no flag, case, request or legal hold): how many, and the soonest `limit`."""
    due = borough_recordings_for(user=user).filter(
        held=False, delete_after__gt=now, delete_after__lte=now + timedelta(days=days)
    )
    return {
        "days": days,
        "count": due.count(),
        "recordings": list(
            due.select_related("officer", "borough", "camera").order_by("delete_after", "id")[
                :limit
            ]
        ),
    }


def open_cases_of(*, user, limit: int = 10) -> dict:
    """The open cases the user opened, newest first, with how many recordings each holds."""
    cases = case_list_for(user=user).filter(created_by_id=user.pk, closed_at__isnull=True)
    return {
        "count": cases.count(),
        "cases": list(
            cases.select_related("borough")
            .annotate(recording_count=Count("recordings"))
            .order_by("-created_at", "-id")[:limit]
        ),
    }
