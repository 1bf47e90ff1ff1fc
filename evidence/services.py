"""Writes of the evidence app. Every change of footage state goes through here and is audited."""

from __future__ import annotations

import hashlib
import re
import secrets
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from devices.models import Borough, Dock
from evidence.audit import audit_append
from evidence.clock import EARLIEST_PLAUSIBLE, deletion_date
from evidence.models import (
    AuditEvent,
    Bookmark,
    BoroughAccessGrant,
    Case,
    EvidenceFlag,
    Export,
    FlagKind,
    Recording,
    RecordingState,
    ShareLink,
)


def _actor_fields(actor: Any) -> tuple[int | None, str]:
    if actor is None:
        return None, "system"
    if isinstance(actor, Dock):
        return None, f"dock:{actor.key_id}"
    if isinstance(actor, str):
        return None, actor
    return actor.pk, actor.get_username()


def _object_fields(obj: Any, object_type: str, object_id: str, borough: Borough | None):
    if obj is not None:
        object_type = object_type or obj._meta.label_lower
        object_id = object_id or str(obj.pk)
        if borough is None:
            borough = getattr(obj, "borough", None)
    if not object_type:
        raise ValueError("an audit event needs an object")
    return object_type, str(object_id), (borough.code if borough is not None else "")


def audit_record(
    *,
    actor: Any,
    action: str,
    obj: Any = None,
    object_type: str = "",
    object_id: str = "",
    borough: Borough | None = None,
    justification: str = "",
    recipient: str = "",
    detail: dict | None = None,
) -> AuditEvent:
    """Append one event to the audit log's hash chain. The only way events are written.

    `actor` is a user, a dock, a label such as "system:sweep", or None for the system itself.
    """
    if not action:
        raise ValueError("an audit event needs an action")
    actor_id, label = _actor_fields(actor)
    object_type, object_id, code = _object_fields(obj, object_type, object_id, borough)
    entry = {
        "actor": label, "actor_id": actor_id, "action": action, "object_type": object_type,
        "object_id": object_id, "borough": code, "justification": justification,
        "recipient": recipient, "detail": detail or {},
    }  # fmt: skip
    return audit_append([entry])[0]


def audit_record_many(*, actor: Any, action: str, entries: list[dict]) -> list[AuditEvent]:
    """Append many events of one action by one actor (the sweep's erasures) in one statement.

    Each entry gives `obj` and optionally `justification`, `recipient` and `detail`.
    """
    actor_id, label = _actor_fields(actor)
    rows = []
    for e in entries:
        object_type, object_id, code = _object_fields(e["obj"], "", "", None)
        rows.append({
            "actor": label, "actor_id": actor_id, "action": action, "object_type": object_type,
            "object_id": object_id, "borough": code, "justification": e.get("justification", ""),
            "recipient": e.get("recipient", ""), "detail": e.get("detail", {}),
        })  # fmt: skip
    return audit_append(rows)


class FlagError(Exception):
    """A flag that cannot be placed or lifted, with a message for the person who asked."""


def crime_reference_validate(value: str) -> str:
    """Normalise and check a crime reference in the force's format (settings.BWV_CRIME_REF_PATTERN)."""
    value = (value or "").strip().upper()
    if not re.fullmatch(settings.BWV_CRIME_REF_PATTERN, value):
        raise FlagError(
            f"{value or 'an empty value'} is not a crime reference in the form "
            f"{settings.BWV_CRIME_REF_EXAMPLE}"
        )
    return value


@transaction.atomic
def recording_flag(
    *, recording: Recording, kind: str, actor, reason: str, crime_reference: str = ""
) -> EvidenceFlag:
    """Flag a recording as evidence (with a crime reference) or for a policing purpose.

    The flag places a hold through the retention service, which locks the recording: if the sweep
    has already deleted it, the flag is refused with a clear message and nothing is written.
    """
    from retention.models import HoldSource
    from retention.services import RecordingGone, hold_place

    if kind not in FlagKind.values:
        raise FlagError(f"unknown flag kind {kind!r}")
    if not reason.strip():
        raise FlagError("a flag needs a reason")
    if kind == FlagKind.EVIDENCE or crime_reference:  # evidence needs one; any given must be valid
        crime_reference = crime_reference_validate(crime_reference)
    flag = EvidenceFlag.objects.create(
        recording=recording, kind=kind, crime_reference=crime_reference, reason=reason,
        flagged_by=actor, flagged_at=timezone.now(),
    )  # fmt: skip
    source = HoldSource.EVIDENCE if kind == FlagKind.EVIDENCE else HoldSource.POLICING_PURPOSE
    try:
        hold_place(recording=recording, source=source, actor=actor, reason=reason,
                   source_ref=f"flag:{flag.pk}")  # fmt: skip
    except RecordingGone as exc:
        raise FlagError(f"cannot flag: {exc}") from exc
    audit_record(
        actor=actor, action="recording.flagged", obj=recording, justification=reason,
        detail={"flag": flag.pk, "kind": kind, "crime_reference": crime_reference},
    )  # fmt: skip
    return flag


def recording_consult(*, recording: Recording, actor, purpose: str) -> AuditEvent:
    """Record that a person opened footage, and why (DPA 2018 s.62 "consultation")."""
    purpose = (purpose or "").strip()
    if len(purpose) < 4:
        raise FlagError("say why you are viewing this footage: a crime reference or a short reason")
    return audit_record(actor=actor, action="recording.viewed", obj=recording,
                        justification=purpose[:500])  # fmt: skip


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
    from common.roles import Role, user_has_role
    from devices.selectors import boroughs_for, camera_registered_at, officer_holding_camera

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
    return locked


@transaction.atomic
def recording_unflag(*, flag: EvidenceFlag, actor, reason: str) -> EvidenceFlag:
    """Lift a flag (with a reason) and the hold it placed; the flag itself stays on record."""
    from retention.models import Hold
    from retention.services import hold_lift

    if not reason.strip():
        raise FlagError("lifting a flag needs a reason")
    updated = EvidenceFlag.objects.filter(pk=flag.pk, lifted_at__isnull=True).update(
        lifted_at=timezone.now(), lifted_by=actor, lift_reason=reason
    )
    flag.refresh_from_db()
    if not updated:
        return flag
    for hold in Hold.objects.filter(recording_id=flag.recording_id, source_ref=f"flag:{flag.pk}",
                                    active=True):  # fmt: skip
        hold_lift(hold=hold, actor=actor, reason=reason)
    audit_record(actor=actor, action="recording.unflagged", obj=flag.recording, justification=reason,
                 detail={"flag": flag.pk, "kind": flag.kind,
                         "crime_reference": flag.crime_reference})  # fmt: skip
    return flag


@transaction.atomic
def case_create(*, crime_reference: str, title: str, borough, actor) -> Case:
    crime_reference = crime_reference_validate(crime_reference)
    if not title.strip():
        raise FlagError("a case needs a title")
    case = Case.objects.create(crime_reference=crime_reference, title=title.strip()[:200],
                               borough=borough, created_by=actor)  # fmt: skip
    audit_record(actor=actor, action="case.created", obj=case,
                 detail={"crime_reference": crime_reference})  # fmt: skip
    return case


def _case_hold_ref(case: Case) -> str:
    return f"case:{case.pk}"


def _case_locked(case: Case) -> Case:
    """The case row, locked: adding, removing and closing are serialised on it, so a recording
    added while the case closes is either on it before (and its hold lifted) or refused after."""
    return Case.objects.select_for_update().get(pk=case.pk)


@transaction.atomic
def case_add_recording(*, case: Case, recording: Recording, actor) -> None:
    """Put a recording on an open case. Being on the case holds it: the hold (source "case") is
    placed through the retention service in this transaction, so the recording is never on a case
    unheld; footage the sweep has already claimed or deleted is refused with a clear message."""
    from retention.models import HoldSource
    from retention.services import RecordingGone, hold_place

    if recording.borough_id != case.borough_id:
        raise FlagError("a case holds recordings of its own borough only")
    case = _case_locked(case)
    if not case.is_open:
        raise FlagError(f"case {case.crime_reference} is closed: it takes no new recordings")
    try:
        # Idempotent: a recording already on the case keeps its one hold.
        hold_place(
            recording=recording,
            source=HoldSource.CASE,
            actor=actor,
            reason=f"on case {case.crime_reference}: {case.title}",
            source_ref=_case_hold_ref(case),
        )
    except RecordingGone as exc:
        raise FlagError(f"cannot add to the case: {exc}") from exc
    if case.recordings.filter(pk=recording.pk).exists():
        return
    case.recordings.add(recording)
    audit_record(
        actor=actor,
        action="case.recording_added",
        obj=recording,
        detail={"case": case.pk, "crime_reference": case.crime_reference},
    )


def _case_holds_lift(*, case: Case, actor, reason: str, recording: Recording | None = None) -> int:
    from retention.models import Hold, HoldSource
    from retention.services import hold_lift

    holds = Hold.objects.filter(
        source=HoldSource.CASE, source_ref=_case_hold_ref(case), active=True
    )
    if recording is not None:
        holds = holds.filter(recording=recording)
    lifted = 0
    for hold in holds.order_by("recording_id"):  # one lock order for every writer
        hold_lift(hold=hold, actor=actor, reason=reason)
        lifted += 1
    return lifted


@transaction.atomic
def case_remove_recording(*, case: Case, recording: Recording, actor, reason: str) -> None:
    """Take a recording off a case (with a reason) and lift the hold the case placed; a hold from
    another case, a flag or a request stays."""
    if not reason.strip():
        raise FlagError("removing a recording from a case needs a reason")
    case = _case_locked(case)
    if not case.recordings.filter(pk=recording.pk).exists():
        return
    case.recordings.remove(recording)
    _case_holds_lift(
        case=case,
        actor=actor,
        reason=f"removed from case {case.crime_reference}: {reason}",
        recording=recording,
    )
    audit_record(
        actor=actor,
        action="case.recording_removed",
        obj=recording,
        justification=reason,
        detail={"case": case.pk, "crime_reference": case.crime_reference},
    )


@transaction.atomic
def case_close(*, case: Case, actor, reason: str) -> Case:
    """Close a case (with a reason): it takes no new recordings, and every hold it placed is
    lifted with that reason, so its footage goes back to its retention policy unless something
    else holds it. The recordings stay listed on the case, for the record."""
    reason = (reason or "").strip()
    if not reason:
        raise FlagError("closing a case needs a reason")
    case = _case_locked(case)
    if not case.is_open:
        raise FlagError(
            f"case {case.crime_reference} was already closed on {case.closed_at:%d %b %Y}"
        )
    case.closed_at = timezone.now()
    case.closed_by = actor if getattr(actor, "is_authenticated", False) else None
    case.close_reason = reason
    case.save(update_fields=["closed_at", "closed_by", "close_reason"])
    lifted = _case_holds_lift(
        case=case, actor=actor, reason=f"case {case.crime_reference} closed: {reason}"
    )
    audit_record(
        actor=actor,
        action="case.closed",
        obj=case,
        justification=reason,
        detail={"crime_reference": case.crime_reference, "holds_lifted": lifted},
    )
    return case


MAX_GRANT = timedelta(days=7)


@transaction.atomic
def borough_grant_create(*, user, borough, actor, reason: str, hours: int) -> BoroughAccessGrant:
    """Give `user` time-limited access to another borough's footage (system admins only)."""
    from common.roles import Role, user_has_role

    if not user_has_role(actor, Role.SYSTEM_ADMIN):
        raise FlagError("only a system admin can grant access to another borough")
    if not reason.strip():
        raise FlagError("a grant needs a reason")
    duration = timedelta(hours=hours)
    if not timedelta(0) < duration <= MAX_GRANT:
        raise FlagError("a grant lasts between 1 hour and 7 days")
    now = timezone.now()
    grant = BoroughAccessGrant.objects.create(user=user, borough=borough, reason=reason, granted_by=actor,
                                              starts_at=now, expires_at=now + duration)  # fmt: skip
    audit_record(
        actor=actor, action="access.granted", obj=grant, borough=borough, justification=reason,
        recipient=user.get_username(), detail={"expires_at": grant.expires_at.isoformat()},
    )  # fmt: skip
    return grant


@transaction.atomic
def borough_grant_revoke(*, grant: BoroughAccessGrant, actor, reason: str) -> None:
    BoroughAccessGrant.objects.filter(pk=grant.pk, revoked_at__isnull=True).update(
        revoked_at=timezone.now()
    )
    audit_record(actor=actor, action="access.revoked", obj=grant, borough=grant.borough,
                 justification=reason, recipient=grant.user.get_username())  # fmt: skip


@transaction.atomic
def bookmark_add(*, recording: Recording, actor, at_seconds: float, note: str) -> Bookmark:
    note = (note or "").strip()
    if not note:
        raise FlagError("a bookmark needs a note")
    if at_seconds < 0 or (
        recording.duration_seconds and at_seconds > recording.duration_seconds + 1
    ):
        raise FlagError("the bookmark is outside the recording")
    bookmark = Bookmark.objects.create(recording=recording, at_seconds=at_seconds, note=note[:500],
                                       created_by=actor)  # fmt: skip
    audit_record(actor=actor, action="recording.bookmarked", obj=recording,
                 detail={"bookmark": bookmark.pk, "at_seconds": at_seconds})  # fmt: skip
    return bookmark


class ExportError(Exception):
    """An export or share that cannot be made, with a message for the person who asked."""


MAX_EXPORT_RECORDINGS = 500


@transaction.atomic
def export_create(
    *, actor, recordings: list[Recording], recipient: str, purpose: str, case: Case | None = None
) -> Export:
    """Record a court/CPS export of these recordings for a recipient. Audits one disclosure
    decision per recording ("recording.exported", with the recipient and purpose); each download
    of the bundle is audited again when it happens."""
    recipient, purpose = recipient.strip(), purpose.strip()
    if not recipient:
        raise ExportError("say who the export is for (e.g. CPS London North, lawyer's name)")
    if not purpose:
        raise ExportError("say why the footage is being exported (e.g. the charging file)")
    if len(recipient) > 200:
        raise ExportError("the recipient is longer than 200 characters")
    if not recordings:
        raise ExportError("choose at least one recording")
    if len(recordings) > MAX_EXPORT_RECORDINGS:
        raise ExportError(f"an export holds at most {MAX_EXPORT_RECORDINGS} recordings")
    ids = [r.pk for r in recordings]
    # Lock the rows: a recording deleted by the sweep meanwhile cannot be exported.
    live = list(
        Recording.objects.select_for_update()
        .filter(pk__in=ids, state=RecordingState.AVAILABLE)
        .order_by("pk")
    )
    if len(live) != len(set(ids)):
        raise ExportError("a chosen recording is no longer available (deleted by retention?)")
    boroughs = {r.borough_id for r in live}
    if case is not None:
        boroughs.add(case.borough_id)
    if len(boroughs) != 1:
        raise ExportError("an export holds recordings of one borough; make one per borough")
    export = Export.objects.create(
        borough_id=boroughs.pop(), case=case, recipient=recipient, purpose=purpose,
        created_by=actor, created_at=timezone.now(),
    )  # fmt: skip
    export.recordings.set(live)
    audit_record_many(actor=actor, action="recording.exported", entries=[
        {"obj": r, "recipient": recipient, "justification": purpose,
         "detail": {"export": str(export.id), "case": case.pk if case else None}}
        for r in live
    ])  # fmt: skip
    return export


def export_disclose(*, export: Export, actor, via: str, recipient: str = "", detail=None) -> None:
    """Audit one delivery of a bundle (a download or a share-link access): one event per
    recording, with the recipient."""
    recordings = list(export.recordings.select_related("borough"))
    audit_record_many(actor=actor, action="recording.disclosed", entries=[
        {"obj": r, "recipient": recipient or export.recipient, "justification": export.purpose,
         "detail": {"export": str(export.id), "via": via, **(detail or {})}}
        for r in recordings
    ])  # fmt: skip


def _share_token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


@transaction.atomic
def share_create(
    *, export: Export, actor, recipient_email: str, days: int
) -> tuple[ShareLink, str]:
    """An expiring link to the export for a prosecutor; returns the link and its secret, which is
    shown once and never stored."""
    from django.core.exceptions import ValidationError
    from django.core.validators import validate_email

    recipient_email = recipient_email.strip()
    try:
        validate_email(recipient_email)
    except ValidationError:
        raise ExportError("give the prosecutor's e-mail address") from None
    if not 1 <= days <= settings.BWV_SHARE_MAX_DAYS:
        raise ExportError(f"a link lasts between 1 and {settings.BWV_SHARE_MAX_DAYS} days")
    token = secrets.token_urlsafe(32)
    now = timezone.now()
    link = ShareLink.objects.create(
        export=export, token_hash=_share_token_hash(token), recipient_email=recipient_email,
        created_by=actor, created_at=now, expires_at=now + timedelta(days=days),
    )  # fmt: skip
    audit_record_many(actor=actor, action="recording.shared", entries=[
        {"obj": r, "recipient": recipient_email, "justification": export.purpose,
         "detail": {"export": str(export.id), "share": str(link.id),
                    "expires_at": link.expires_at.isoformat()}}
        for r in export.recordings.select_related("borough")
    ])  # fmt: skip
    return link, token


@transaction.atomic
def share_revoke(*, link: ShareLink, actor, reason: str) -> ShareLink:
    if not reason.strip():
        raise ExportError("say why the link is being revoked")
    link = ShareLink.objects.select_for_update().get(pk=link.pk)
    if link.revoked_at is not None:
        return link
    link.revoked_at, link.revoked_by, link.revoke_reason = timezone.now(), actor, reason.strip()
    link.save(update_fields=["revoked_at", "revoked_by", "revoke_reason"])
    audit_record(actor=actor, action="export.share_revoked", obj=link.export,
                 justification=reason.strip(), recipient=link.recipient_email,
                 detail={"share": str(link.id)})  # fmt: skip
    return link


class ShareUnavailable(Exception):
    """A share link that has expired or been revoked (the link itself was genuine)."""


def share_access(*, token: str, ip: str, download: bool) -> ShareLink:
    """Resolve a share link's secret. Unknown secrets are Http404; expired or revoked links raise
    ShareUnavailable and are audited as refused. A download is audited per recording."""
    link, refused = _share_access(token=token, ip=ip, download=download)
    if refused:
        raise ShareUnavailable(refused)  # after the commit: the refusal stays in the audit log
    return link


@transaction.atomic
def _share_access(*, token: str, ip: str, download: bool) -> tuple[ShareLink, str]:
    from django.http import Http404

    link = (
        ShareLink.objects.select_for_update(of=("self",))
        .select_related("export", "export__case", "export__created_by")
        .filter(token_hash=_share_token_hash(token))
        .first()
    )
    if link is None:
        raise Http404
    now = timezone.now()
    if not link.usable(now):
        audit_record(actor=f"share:{link.id}", action="export.share_refused", obj=link.export,
                     recipient=link.recipient_email,
                     detail={"share": str(link.id), "ip": ip,
                             "why": "revoked" if link.revoked_at else "expired"})  # fmt: skip
        return link, "revoked" if link.revoked_at else "expired"
    if download:
        link.access_count += 1
        link.last_access_at = now
        link.save(update_fields=["access_count", "last_access_at"])
        export_disclose(export=link.export, actor=f"share:{link.id}", via="share link",
                        recipient=link.recipient_email, detail={"share": str(link.id), "ip": ip})  # fmt: skip
    return link, ""
