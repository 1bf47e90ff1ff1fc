"""Writes of the evidence app. Every change of footage state goes through here and is audited."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from devices.models import Borough, Dock
from evidence.audit import audit_append
from evidence.models import (
    AuditEvent,
    Bookmark,
    BoroughAccessGrant,
    Case,
    EvidenceFlag,
    FlagKind,
    Recording,
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


@transaction.atomic
def case_add_recording(*, case: Case, recording: Recording, actor) -> None:
    if recording.borough_id != case.borough_id:
        raise FlagError("a case holds recordings of its own borough only")
    if case.recordings.filter(pk=recording.pk).exists():
        return
    case.recordings.add(recording)
    audit_record(actor=actor, action="case.recording_added", obj=recording,
                 detail={"case": case.pk, "crime_reference": case.crime_reference})  # fmt: skip


@transaction.atomic
def case_remove_recording(*, case: Case, recording: Recording, actor, reason: str) -> None:
    if not reason.strip():
        raise FlagError("removing a recording from a case needs a reason")
    if not case.recordings.filter(pk=recording.pk).exists():
        return
    case.recordings.remove(recording)
    audit_record(actor=actor, action="case.recording_removed", obj=recording, justification=reason,
                 detail={"case": case.pk, "crime_reference": case.crime_reference})  # fmt: skip


MAX_GRANT = timedelta(days=7)


@transaction.atomic
def borough_grant_create(*, user, borough, actor, reason: str, hours: int) -> BoroughAccessGrant:
    """Give `user` time-limited access to another borough's footage (system admins only)."""
    from bwv.roles import Role, user_has_role

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
