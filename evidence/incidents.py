"""Dispatch incidents and the tags they put on footage: a recording whose officer was at an
incident while it ran (arrival to clear, widened by BWV_INCIDENT_TAG_MARGIN_MINUTES) is tagged
with it.

Guarantees:
- a recording is tagged whichever arrives first, the clip or the incident: ingest tags a new clip
  with the incidents its officer was at (`recording_tag_incidents`, in the transaction that makes it
  available), and an incident tags the clips already stored (`incident_record`). The two never
  miss each other: both take a lock per officer (a PostgreSQL transaction-level advisory lock)
  before they look, so the second one to look sees what the first wrote;
- a clip whose camera clock is suspect, or that nobody is attributed to, is not tagged: its time or
  its officer cannot be trusted. Once its time is corrected it is tagged from the corrected time;
- an incident that changes (times, officers) is re-tagged: tags it no longer justifies are removed,
  new ones made; every tag and untag is an audit event on the recording;
- the search walks indexes: the recordings' (officer, start) index over a bounded range per
  attendance (a recording is at most 24 hours long), and the attendances' (officer, window end).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from custody.services import audit_record, audit_record_many
from devices.models import Borough, Officer
from evidence.models import (
    Incident,
    IncidentAttendance,
    IncidentTag,
    Recording,
    RecordingState,
)

# The longest recording ingest accepts (evidence.ingest.MAX_RECORDING): a recording that overlaps a
# window started at most this long before the window does.
LONGEST_RECORDING = timedelta(hours=24)
# An attendance not yet cleared runs on: its window ends at the end of time.
OPEN_END = datetime(9999, 1, 1, tzinfo=UTC)
# The advisory lock class of the tagging (two-key form: its key space is apart from ingest's
# one-key upload claims).
_LOCK_CLASS = 0x42575449  # "BWTI"
_CHUNK = 500


def tag_margin() -> timedelta:
    return timedelta(minutes=settings.BWV_INCIDENT_TAG_MARGIN_MINUTES)


@dataclass(frozen=True)
class Attendance:
    officer: Officer
    arrived_at: datetime
    cleared_at: datetime | None


def attendance_window(arrived_at: datetime, cleared_at: datetime | None) -> dict[str, datetime]:
    margin = tag_margin()
    start = arrived_at - margin
    return {
        "window_start": start,
        "window_end": cleared_at + margin if cleared_at else OPEN_END,
        "scan_from": start - LONGEST_RECORDING,
    }


def _lock_officers(officer_ids: Iterable[int]) -> None:
    """Serialise tagging per officer until the transaction ends (see the guarantees). SQLite runs
    one writer at a time already."""
    if connection.vendor != "postgresql":
        return
    keys = sorted({officer_id % (2**31) for officer_id in officer_ids})
    if not keys:
        return
    # One round trip for a batch's hundreds of officers; the locks are taken in ascending order
    # (the ordered subquery is scanned in order), as one by one, so two taggers cannot deadlock.
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(pg_advisory_xact_lock(%s, k)) "
            "FROM (SELECT k FROM unnest(%s::integer[]) AS u(k) ORDER BY k) AS o",
            [_LOCK_CLASS, keys],
        )


@dataclass(frozen=True)
class _RecordingRef:
    """What the audit log needs of a recording, without loading it."""

    pk: object
    borough: object
    audit_type: str = "evidence.recording"


@dataclass(frozen=True)
class _BoroughRef:
    code: str


# The tags an incident's attendances justify: recordings of the attending officer that overlap
# the attendance's window, found through rec_officer_started over [scan_from, window_end).
_MATCH_SQL = """
SELECT DISTINCT r.id, a.incident_id, b.code, i.reference
FROM evidence_incidentattendance a
JOIN evidence_incident i ON i.id = a.incident_id
JOIN evidence_recording r ON r.officer_id = a.officer_id
    AND r.started_at >= a.scan_from AND r.started_at < a.window_end
    AND r.ended_at > a.window_start
JOIN devices_borough b ON b.id = r.borough_id
WHERE a.incident_id IN ({ids}) AND r.state = %s AND r.clock_suspect = %s
"""


def _matches(incident_ids: list[int]) -> list[tuple]:
    rows = []
    for n in range(0, len(incident_ids), _CHUNK):
        chunk = incident_ids[n : n + _CHUNK]
        sql = _MATCH_SQL.format(ids=", ".join(["%s"] * len(chunk)))
        with connection.cursor() as cursor:
            cursor.execute(sql, [*chunk, RecordingState.AVAILABLE, False])
            # SQLite hands a UUID back as 32 hex digits: one form, so keys and audit ids match.
            rows += [(uuid.UUID(str(r[0])), *r[1:]) for r in cursor.fetchall()]
    return rows


# On PostgreSQL the tags an incident's attendances justify are made in the statement that finds
# them, and only those that were not there already come back to be audited: no row travels to
# Python and back, and a tag that existed is neither made nor audited twice.
_INSERT_SQL = f"""
WITH m AS ({_MATCH_SQL.replace("{ids}", "SELECT unnest(%s::bigint[])")}),
made AS (
    INSERT INTO evidence_incidenttag (recording_id, incident_id, tagged_at)
    SELECT id, incident_id, %s FROM m
    ON CONFLICT (recording_id, incident_id) DO NOTHING
    RETURNING recording_id, incident_id
)
SELECT made.recording_id, made.incident_id, m.code, m.reference
FROM made JOIN m ON m.id = made.recording_id AND m.incident_id = made.incident_id
ORDER BY made.incident_id, made.recording_id
"""  # noqa: S608 - only placeholders are formatted in


def _tags_make(incident_ids: list[int], *, actor, now: datetime) -> int:
    """Make the tags the incidents justify that are not there yet, and audit each one made."""
    if connection.vendor != "postgresql":
        existing = set(
            IncidentTag.objects.filter(incident_id__in=incident_ids).values_list(
                "recording_id", "incident_id"
            )
        )
        rows = [r for r in _matches(incident_ids) if (r[0], r[1]) not in existing]
        return _tags_add(rows, actor=actor, now=now)
    rows = []
    for n in range(0, len(incident_ids), _CHUNK):
        with connection.cursor() as cursor:
            cursor.execute(
                _INSERT_SQL,
                [incident_ids[n : n + _CHUNK], RecordingState.AVAILABLE, False, now],
            )
            rows += cursor.fetchall()
    _tags_audit(rows, actor=actor)
    return len(rows)


def _tags_add(rows: list[tuple], *, actor, now: datetime) -> int:
    """Make the tags (recording, incident, borough code, reference) and audit each."""
    if not rows:
        return 0
    IncidentTag.objects.bulk_create(
        [IncidentTag(recording_id=r[0], incident_id=r[1], tagged_at=now) for r in rows],
        ignore_conflicts=True,
        batch_size=2000,
    )
    _tags_audit(rows, actor=actor)
    return len(rows)


def _tags_audit(rows: list[tuple], *, actor) -> None:
    if not rows:
        return
    audit_record_many(
        actor=actor,
        action="recording.incident_tagged",
        entries=[
            {
                "obj": _RecordingRef(pk=r[0], borough=_BoroughRef(r[2])),
                "detail": {"incident": r[1], "reference": r[3]},
            }
            for r in rows
        ],
    )


def _tags_remove(tags: list[IncidentTag], *, actor, reason: str) -> int:
    if not tags:
        return 0
    IncidentTag.objects.filter(pk__in=[t.pk for t in tags]).delete()
    audit_record_many(
        actor=actor,
        action="recording.incident_untagged",
        entries=[
            {
                "obj": _RecordingRef(pk=t.recording_id, borough=t.recording.borough),
                "justification": reason,
                "detail": {"incident": t.incident_id, "reference": t.incident.reference},
            }
            for t in tags
        ],
    )
    return len(tags)


@transaction.atomic
def incidents_tag(*, incident_ids: list[int], actor) -> int:
    """Tag the stored recordings that newly arrived incidents justify; returns how many tags.

    For incidents that have no tags yet (a batch as it arrives): it only adds. `incident_retag`
    also removes what an incident no longer justifies."""
    ids = sorted(set(incident_ids))
    _lock_officers(
        IncidentAttendance.objects.filter(incident_id__in=ids).values_list("officer_id", flat=True)
    )
    return _tags_make(ids, actor=actor, now=timezone.now())


@transaction.atomic
def incident_retag(*, incident: Incident, actor) -> tuple[int, int]:
    """Bring an incident's tags in line with its attendances: (added, removed)."""
    _lock_officers(incident.attendances.values_list("officer_id", flat=True))
    wanted = {(str(r[0]), r[1]): r for r in _matches([incident.pk])}
    current = list(incident.tags.select_related("recording__borough", "incident"))
    stale = [t for t in current if (str(t.recording_id), t.incident_id) not in wanted]
    have = {(str(t.recording_id), t.incident_id) for t in current}
    removed = _tags_remove(
        stale, actor=actor, reason=f"incident {incident.reference} changed: its officers or times"
    )
    added = _tags_add(
        [row for key, row in wanted.items() if key not in have], actor=actor, now=timezone.now()
    )
    return added, removed


def _incidents_for(recording: Recording) -> list[tuple[int, str]]:
    """The incidents whose attendance windows the recording overlaps (its officer, its times)."""
    if recording.officer_id is None or recording.clock_suspect:
        return []
    if recording.state != RecordingState.AVAILABLE:
        return []
    return list(
        IncidentAttendance.objects.filter(
            officer_id=recording.officer_id,
            window_end__gt=recording.started_at,
            window_start__lt=recording.ended_at,
        )
        .values_list("incident_id", "incident__reference")
        .distinct()
    )


@transaction.atomic
def recording_tag_incidents(*, recording: Recording, actor) -> int:
    """Tag a recording with the incidents its officer was at while it ran (called by ingest in the
    transaction that makes the recording available); returns how many tags."""
    if recording.officer_id is None:
        return 0
    _lock_officers([recording.officer_id])
    # A recording ingest has just made has no tags yet, and _tags_add skips any already there.
    rows = [
        (recording.pk, incident_id, recording.borough.code, reference)
        for incident_id, reference in _incidents_for(recording)
    ]
    return _tags_add(rows, actor=actor, now=timezone.now())


@transaction.atomic
def recording_retag_incidents(*, recording: Recording, actor, reason: str) -> tuple[int, int]:
    """After a recording's time or officer changed: remove the tags it no longer earns, add the
    new ones. (added, removed)."""
    recording = Recording.objects.select_related("borough").get(pk=recording.pk)
    _lock_officers([recording.officer_id] if recording.officer_id else [])
    wanted = dict(_incidents_for(recording))
    current = list(recording.incident_tags.select_related("incident", "recording__borough"))
    removed = _tags_remove(
        [t for t in current if t.incident_id not in wanted], actor=actor, reason=reason
    )
    have = {t.incident_id for t in current}
    rows = [
        (recording.pk, incident_id, recording.borough.code, reference)
        for incident_id, reference in wanted.items()
        if incident_id not in have
    ]
    return _tags_add(rows, actor=actor, now=timezone.now()), removed


@transaction.atomic
def incident_record(
    *,
    reference: str,
    borough: Borough,
    opened_at: datetime,
    closed_at: datetime | None,
    location: str,
    grade: str,
    attendances: list[Attendance],
    actor,
) -> tuple[Incident, bool, tuple[int, int]]:
    """Create or replace an incident as the dispatch system describes it now, and tag the footage
    it justifies. Returns the incident, whether it is new, and the tags (added, removed)."""
    incident = Incident.objects.select_for_update().filter(reference=reference).first()
    created = incident is None
    fields = {
        "borough": borough,
        "opened_at": opened_at,
        "closed_at": closed_at,
        "location": location,
        "grade": grade,
    }
    if created:
        incident = Incident.objects.create(reference=reference, **fields)
    else:
        for name, value in fields.items():
            setattr(incident, name, value)
        incident.save()
    incident.attendances.all().delete()
    IncidentAttendance.objects.bulk_create(
        [
            IncidentAttendance(
                incident=incident,
                officer=a.officer,
                arrived_at=a.arrived_at,
                cleared_at=a.cleared_at,
                **attendance_window(a.arrived_at, a.cleared_at),
            )
            for a in attendances
        ]
    )
    audit_record(
        actor=actor,
        action="incident.recorded" if created else "incident.updated",
        obj=incident,
        detail={
            "reference": reference,
            "opened_at": opened_at.isoformat(),
            "closed_at": closed_at.isoformat() if closed_at else None,
            "officers": sorted({a.officer.collar_number for a in attendances}),
        },
    )
    tags = incident_retag(incident=incident, actor=actor)
    return incident, created, tags
