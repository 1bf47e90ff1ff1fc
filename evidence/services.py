"""Writes of the evidence app (the footage store): consultations, bookmarks, access grants and
time corrections. Every change goes through here and is audited through the chain of custody."""

from __future__ import annotations

import hashlib
import math
from datetime import datetime, timedelta

from django.db import transaction
from django.utils import timezone

from common.roles import Role, user_has_role
from custody.models import AuditEvent
from custody.services import audit_record, audit_record_many
from devices.selectors import boroughs_for, camera_registered_at, officer_holding_camera
from evidence.clock import EARLIEST_PLAUSIBLE, deletion_date
from evidence.incidents import recording_retag_incidents
from evidence.models import Bookmark, BoroughAccessGrant, Recording, RecordingState


class ConsultationError(Exception):
    """Footage cannot be opened without saying why."""


class GrantError(Exception):
    """A grant of another borough's footage that cannot be given as asked."""


class BookmarkError(Exception):
    """A bookmark that cannot be placed as asked."""


class StillError(Exception):
    """A still of a frame that cannot be made as asked."""


def recording_still_take(
    *, recording: Recording, actor, at_seconds: float, purpose: str
) -> tuple[bytes, AuditEvent]:
    """A PNG of the frame shown at `at_seconds`, for a witness statement. The frame is decoded
    before the audit; the event records its time and the picture's SHA-256, so a printed still
    can be matched to the footage and to the person who took it."""
    from evidence.probe import ProbeError, frame_png  # start-up cost: PyAV loads on first use

    duration = float(recording.duration_seconds or 0)
    if not math.isfinite(at_seconds) or at_seconds < 0 or (duration and at_seconds > duration):
        raise StillError("the still's time must be within the recording")
    try:
        png, frame_time = frame_png(recording, at_seconds)
    except ProbeError as exc:
        raise StillError(f"no still could be made: {exc}") from None
    with transaction.atomic():
        event = audit_record(
            actor=actor,
            action="recording.still_taken",
            obj=recording,
            justification=(purpose or "").strip()[:500],
            detail={
                "at_seconds": round(at_seconds, 3),
                "frame_seconds": round(frame_time, 3),
                "sha256": hashlib.sha256(png).hexdigest(),
                "bytes": len(png),
            },
        )
    return png, event


def _consultation_purpose(purpose: str) -> str:
    purpose = (purpose or "").strip()
    if len(purpose) < 4:
        raise ConsultationError(
            "say why you are viewing this footage: a crime reference or a short reason"
        )
    return purpose[:500]


def recording_consult(*, recording: Recording, actor, purpose: str) -> AuditEvent:
    """Record that a person opened footage, and why (DPA 2018 s.62 "consultation")."""
    return audit_record(
        actor=actor,
        action="recording.viewed",
        obj=recording,
        justification=_consultation_purpose(purpose),
    )


def recordings_consult(*, recordings: list[Recording], actor, purpose: str) -> list[AuditEvent]:
    """Record that a person opened several recordings at once for one purpose (the incident view):
    each is its own consultation, appended together, so either all are recorded or none is."""
    justification = _consultation_purpose(purpose)
    return audit_record_many(
        actor=actor,
        action="recording.viewed",
        entries=[{"obj": r, "justification": justification} for r in recordings],
    )


class ClockCorrectionError(Exception):
    """A start time that cannot be set, with a message for the admin who gave it."""


@transaction.atomic
def recording_correct_time(
    *, recording: Recording, started_at: datetime, actor, reason: str
) -> Recording:
    """Correct the start of a recording whose camera clock was wrong (a borough admin of its
    borough or a system admin). Start and end move by the same amount; the clip is attributed to
    whoever held the camera at the corrected start and its deletion date is counted from it, but
    never earlier than the review window after arrival, nor earlier than before for held footage.
    The suspect mark is cleared; the event keeps the old and new times and the reason."""
    reason = (reason or "").strip()
    if not reason:
        raise ClockCorrectionError("say how the correct time is known")
    if timezone.is_naive(started_at):
        raise ValueError("started_at must be an aware datetime")
    # The recording row first, as holds and the sweep lock it: a sweep deleting it waits or wins.
    locked = (
        Recording.objects.select_for_update(of=("self",))
        .select_related("camera", "officer")
        .get(pk=recording.pk)
    )
    may = user_has_role(actor, Role.SYSTEM_ADMIN) or (
        user_has_role(actor, Role.BOROUGH_ADMIN)
        and boroughs_for(user=actor).filter(pk=locked.borough_id).exists()
    )
    if not may:
        raise ClockCorrectionError("only an admin of the recording's borough can correct its time")
    if locked.state != RecordingState.AVAILABLE:
        raise ClockCorrectionError("the recording is no longer stored")
    if not (locked.clock_suspect or locked.clock_corrected_at):
        raise ClockCorrectionError(
            "only a recording whose camera clock is suspect can be corrected"
        )
    shift = started_at - locked.started_at
    ended_at = locked.ended_at + shift
    local = timezone.localtime
    if started_at < EARLIEST_PLAUSIBLE:
        raise ClockCorrectionError("the corrected start is before 2000")
    registered = camera_registered_at(camera=locked.camera)
    if started_at < registered:
        raise ClockCorrectionError(
            f"camera {locked.camera.serial} was registered on {local(registered):%d %b %Y %H:%M}: "
            "the recording cannot start before then"
        )
    if ended_at > locked.available_at:
        raise ClockCorrectionError(
            f"the recording reached the server at {local(locked.available_at):%d %b %Y %H:%M:%S}, "
            f"so it must have ended by then; from this start it would end at "
            f"{local(ended_at):%d %b %Y %H:%M:%S}"
        )
    officer = officer_holding_camera(camera=locked.camera, at=started_at)
    delete_after, by_window = deletion_date(
        started_at=started_at, arrived_at=locked.available_at, suspect=False
    )
    if locked.held and delete_after < locked.delete_after:
        # Held footage keeps the longer date, so lifting the hold later cannot expose it sooner.
        delete_after, by_window = locked.delete_after, locked.review_window_extended
    before = {
        "started_at": locked.started_at.isoformat(),
        "ended_at": locked.ended_at.isoformat(),
        "officer": locked.officer.collar_number if locked.officer else None,
        "delete_after": locked.delete_after.isoformat(),
        "clock_suspect": locked.clock_suspect_reason if locked.clock_suspect else None,
    }
    Recording.objects.filter(pk=locked.pk).update(
        started_at=started_at,
        ended_at=ended_at,
        officer=officer,
        delete_after=delete_after,
        review_window_extended=by_window,
        clock_suspect=False,
        clock_corrected_at=timezone.now(),
    )
    locked.refresh_from_db()
    after = {
        "started_at": locked.started_at.isoformat(),
        "ended_at": locked.ended_at.isoformat(),
        "officer": officer.collar_number if officer else None,
        "delete_after": delete_after.isoformat(),
        "review_window_extended": by_window,
    }
    audit_record(
        actor=actor,
        action="recording.time_corrected",
        obj=locked,
        justification=reason,
        detail={"before": before, "after": after, "shift_seconds": shift.total_seconds()},
    )
    # Its incidents follow its corrected time and officer. After commit, in a transaction of its
    # own: the tagging takes the officers' locks, which must never wait while this one holds the
    # recording's row (an incident being tagged may be waiting for that row).
    transaction.on_commit(
        lambda: recording_retag_incidents(
            recording=locked, actor=actor, reason=f"time corrected: {reason}"
        )
    )
    return locked


MAX_GRANT = timedelta(days=7)


@transaction.atomic
def borough_grant_create(*, user, borough, actor, reason: str, hours: int) -> BoroughAccessGrant:
    """Give `user` time-limited access to another borough's footage (system admins only)."""
    if not user_has_role(actor, Role.SYSTEM_ADMIN):
        raise GrantError("only a system admin can grant access to another borough")
    if not reason.strip():
        raise GrantError("a grant needs a reason")
    duration = timedelta(hours=hours)
    if not timedelta(0) < duration <= MAX_GRANT:
        raise GrantError("a grant lasts between 1 hour and 7 days")
    now = timezone.now()
    grant = BoroughAccessGrant.objects.create(
        user=user,
        borough=borough,
        reason=reason,
        granted_by=actor,
        starts_at=now,
        expires_at=now + duration,
    )
    audit_record(
        actor=actor,
        action="access.granted",
        obj=grant,
        borough=borough,
        justification=reason,
        recipient=user.get_username(),
        detail={"expires_at": grant.expires_at.isoformat()},
    )
    return grant


@transaction.atomic
def borough_grant_revoke(*, grant: BoroughAccessGrant, actor, reason: str) -> None:
    BoroughAccessGrant.objects.filter(pk=grant.pk, revoked_at__isnull=True).update(
        revoked_at=timezone.now()
    )
    audit_record(
        actor=actor,
        action="access.revoked",
        obj=grant,
        borough=grant.borough,
        justification=reason,
        recipient=grant.user.get_username(),
    )


@transaction.atomic
def bookmark_add(*, recording: Recording, actor, at_seconds: float, note: str) -> Bookmark:
    note = (note or "").strip()
    if not note:
        raise BookmarkError("a bookmark needs a note")
    if at_seconds < 0 or (
        recording.duration_seconds and at_seconds > recording.duration_seconds + 1
    ):
        raise BookmarkError("the bookmark is outside the recording")
    bookmark = Bookmark.objects.create(
        recording=recording, at_seconds=at_seconds, note=note[:500], created_by=actor
    )
    audit_record(
        actor=actor,
        action="recording.bookmarked",
        obj=recording,
        detail={"bookmark": bookmark.pk, "at_seconds": at_seconds},
    )
    return bookmark
