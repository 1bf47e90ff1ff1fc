"""Writes of the retention app: the one place holds are placed and lifted, each audited."""

from __future__ import annotations

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from custody.services import audit_record
from evidence.models import Recording, RecordingState
from retention.models import Hold, HoldSource
from retention.tasks import object_legal_hold_sync_task


class RecordingGone(Exception):
    """The recording was already deleted: it cannot be held."""


@transaction.atomic
def hold_place(
    *, recording: Recording, source: str, actor, reason: str, source_ref: str = ""
) -> Hold:
    """Place a hold; a second hold for the same cause returns the first. Refuses deleted footage.

    The recording row is locked first, so a sweep deleting it at the same moment either waits for
    this hold (and then skips the recording) or has already deleted it (and we say so).
    """
    locked = Recording.objects.select_for_update().get(pk=recording.pk)
    if locked.state == RecordingState.DELETED:
        raise RecordingGone(f"recording {recording.pk} was deleted on {locked.deleted_at:%Y-%m-%d}")
    if locked.state == RecordingState.DELETING:
        raise RecordingGone(
            f"recording {recording.pk} expired on {locked.delete_after:%Y-%m-%d} and is being "
            "deleted by the retention sweep"
        )
    existing = Hold.objects.filter(
        recording=locked, source=source, source_ref=source_ref, active=True
    ).first()
    if existing:
        return existing
    if not locked.held:
        Recording.objects.filter(pk=locked.pk).update(held=True)
    try:
        with transaction.atomic():
            hold = Hold.objects.create(
                recording=locked,
                source=source,
                source_ref=source_ref,
                reason=reason,
                placed_by=actor if getattr(actor, "is_authenticated", False) else None,
                placed_at=timezone.now(),
            )
    except IntegrityError:
        return Hold.objects.get(recording=locked, source=source, source_ref=source_ref, active=True)
    audit_record(
        actor=actor,
        action="hold.placed",
        obj=locked,
        justification=reason,
        detail={"hold": hold.pk, "source": source, "source_ref": source_ref},
    )
    _mirror_to_object_lock(hold)
    return hold


@transaction.atomic
def hold_lift(*, hold: Hold, actor, reason: str) -> Hold:
    if not reason.strip():
        raise ValueError("lifting a hold needs a reason")
    # Same lock order as hold_place and the sweep: the recording row first.
    Recording.objects.select_for_update().get(pk=hold.recording_id)
    updated = Hold.objects.filter(pk=hold.pk, active=True).update(
        active=False,
        lifted_at=timezone.now(),
        lifted_by=actor if getattr(actor, "is_authenticated", False) else None,
        lift_reason=reason,
    )
    hold.refresh_from_db()
    still_held = Hold.objects.filter(recording_id=hold.recording_id, active=True).exists()
    Recording.objects.filter(pk=hold.recording_id).update(held=still_held)
    if updated:
        audit_record(
            actor=actor,
            action="hold.lifted",
            obj=hold.recording,
            justification=reason,
            detail={"hold": hold.pk, "source": hold.source, "source_ref": hold.source_ref},
        )
        _mirror_to_object_lock(hold)
    return hold


@transaction.atomic
def holds_lift(
    *, source_ref: str, actor, reason: str, source: str = "", recording: Recording | None = None
) -> int:
    """Lift every active hold placed for one cause (a flag, a case, a request), or only its hold on
    `recording`, each with the reason and audited; returns how many were lifted."""
    holds = Hold.objects.filter(source_ref=source_ref, active=True)
    if source:
        holds = holds.filter(source=source)
    if recording is not None:
        holds = holds.filter(recording=recording)
    lifted = 0
    for hold in holds.order_by("recording_id"):  # one lock order for every writer
        hold_lift(hold=hold, actor=actor, reason=reason)
        lifted += 1
    return lifted


def _mirror_to_object_lock(hold: Hold) -> None:
    """Evidence holds are mirrored as S3 legal holds, after commit (no S3 call in a transaction)."""
    if settings.S3_OBJECT_LOCK and hold.source == HoldSource.EVIDENCE:
        recording_id = str(hold.recording_id)
        transaction.on_commit(lambda: object_legal_hold_sync_task.delay(recording_id))
