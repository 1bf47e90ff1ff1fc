"""The retention sweep: footage not retained is erased once past `delete_after`; held footage never.

Guarantees:
- Only recordings that are available, unheld and past `delete_after` are claimed. The hold check is
  repeated after the row is locked, and holds are only ever placed with that row locked
  (`retention.services.hold_place`), so a hold and the sweep are serialised on the row: a hold
  placed first is seen and the recording skipped; a hold placed after the claim is refused with a
  clear "being deleted" answer. A held recording is never deleted.
- Candidates come from a partial index of available, unheld rows on `delete_after`, in batches:
  the cost grows with what expires, not with what is stored or retained.
- Claims use `FOR UPDATE SKIP LOCKED` (PostgreSQL), so any number of workers, or two schedulers
  firing at once, share the work and never take the same recording.
- A claim is committed before any storage call (no network inside a transaction). Objects are
  deleted first, then the data key is destroyed and the row marked deleted with one certificate,
  in one transaction. A recording is marked deleted only when every one of its objects was
  deleted; a storage error leaves it claimed-but-not-deleted for the next run.
- Idempotent and resumable: a run that crashes anywhere leaves claimed rows whose lease runs out;
  the next run finishes them. Deleting an object twice is harmless, and the certificate is unique
  per recording, so each recording is deleted exactly once with exactly one certificate.
- A blast-radius guard stops the run and alerts, deleting nothing, when a run would remove more
  than a configured share of the stored recordings, or when storage is unreachable or looks empty.
- Memory is bounded by one batch.

In a versioned bucket (Object Lock needs one) a delete leaves the bytes as a non-current version
until the bucket's lifecycle rule expires them; they are unreadable at once all the same, since
the data key that could decrypt them is destroyed here (crypto-shredding).
"""

from __future__ import annotations

import hashlib
import json
import logging
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta

from django.conf import settings
from django.core.mail import mail_admins
from django.db import connection, transaction
from django.db.models import Q, Sum
from django.utils import timezone

from evidence.models import Recording, RecordingState
from evidence.services import audit_record, audit_record_many
from evidence.storage import StorageUnavailable, blob_store
from retention.models import DeletionCertificate, Hold, SweepRun
from retention.selectors import default_policy

log = logging.getLogger(__name__)

ACTOR = "system:retention-sweep"
CLAIM_LEASE = timedelta(minutes=30)
MAX_ERRORS_KEPT = 100


class SweepGuardTripped(Exception):
    """The blast-radius guard stopped the run: nothing was deleted."""


def expired_unheld(now: datetime):
    """Recordings the policy says must go now (through the partial index rec_expiry_unheld)."""
    return Recording.objects.filter(
        state=RecordingState.AVAILABLE, held=False, delete_after__lte=now
    )


def _unfinished(now: datetime):
    """Recordings claimed by a run that did not finish them (crashed, or storage failed)."""
    return Recording.objects.filter(state=RecordingState.DELETING).filter(
        Q(sweep_claim__isnull=True) | Q(sweep_claimed_at__lt=now - CLAIM_LEASE)
    )


def _lock(queryset, limit: int) -> list[uuid.UUID]:
    skip = connection.features.has_select_for_update_skip_locked
    locked = queryset.select_for_update(skip_locked=skip).order_by().values_list("pk", flat=True)
    return list(locked[:limit])


def _claim_batch(*, token: uuid.UUID, now: datetime, batch_size: int) -> list[uuid.UUID]:
    """Claim up to `batch_size` recordings for this run (one short transaction)."""
    with transaction.atomic():
        ids = _lock(_unfinished(now), batch_size)
        fresh = _lock(expired_unheld(now), batch_size - len(ids)) if len(ids) < batch_size else []
        if fresh:
            # Rows are locked now: a hold committed before the lock is visible to this query, and
            # none can be placed until we commit (hold_place locks the row first).
            held = set(
                Hold.objects.filter(recording_id__in=fresh, active=True).values_list(
                    "recording_id", flat=True
                )
            )
            fresh = [pk for pk in fresh if pk not in held]
        ids += fresh
        if ids:
            Recording.objects.filter(pk__in=ids).update(
                state=RecordingState.DELETING, sweep_claim=token, sweep_claimed_at=now
            )
    return ids


def _object_keys(recording: Recording) -> list[str]:
    return [k for k in (recording.storage_key, recording.poster_key) if k]


def _certificate(recording: Recording, *, run: SweepRun, policy: str, at: datetime, keys) -> dict:
    return {
        "type": "bwv.deletion-certificate.v1",
        "recording": str(recording.pk),
        "camera": recording.camera.serial,
        "officer": recording.officer.collar_number if recording.officer else None,
        "borough": recording.borough.code,
        "started_at": recording.started_at.isoformat(),
        "ended_at": recording.ended_at.isoformat(),
        "sha256": recording.sha256,
        "size_bytes": recording.size_bytes,
        "delete_after": recording.delete_after.isoformat(),
        "policy": policy,
        "deleted_at": at.isoformat(),
        "objects_deleted": keys,
        "data_key_destroyed": True,
        "sweep_run": run.pk,
    }


def _canonical(statement: dict) -> bytes:
    return json.dumps(statement, sort_keys=True, separators=(",", ":")).encode()


def _load(ids: list[uuid.UUID], token: uuid.UUID) -> list[Recording]:
    return list(
        Recording.objects.filter(pk__in=ids, sweep_claim=token).select_related(
            "camera", "officer", "borough"
        )
    )


def _delete_objects(recordings: list[Recording]) -> tuple[set[str], str]:
    """Delete the batch's objects (storage only, no database: it runs beside the next claim)."""
    keys = [key for r in recordings for key in _object_keys(r)]
    try:
        return set(blob_store().delete_many(keys)), ""
    except StorageUnavailable as exc:
        return set(keys), f"storage: {exc}"


def _record_batch(*, run: SweepRun, token: uuid.UUID, recordings: list[Recording],
                  failed: set[str], policy: str) -> None:  # fmt: skip
    """Mark deleted what storage deleted: key destroyed, row deleted, certificate, audit."""
    done = [r for r in recordings if not failed.intersection(_object_keys(r))]
    stuck = [r for r in recordings if failed.intersection(_object_keys(r))]
    at = timezone.now()
    freed = 0
    with transaction.atomic():
        # Only rows still claimed by this run: a run that lost its lease to another changes nothing.
        mine = set(
            Recording.objects.select_for_update()
            .filter(pk__in=[r.pk for r in done], state=RecordingState.DELETING, sweep_claim=token)
            .values_list("pk", flat=True)
        )
        done = [r for r in done if r.pk in mine]
        freed = sum(r.size_bytes for r in done)
        Recording.objects.filter(pk__in=mine).update(
            state=RecordingState.DELETED,
            deleted_at=at,
            wrapped_key=None,  # crypto-shredding: no copy of the footage can be decrypted now
            sweep_claim=None,
        )
        certificates = []
        for r in done:
            statement = _certificate(r, run=run, policy=policy, at=at, keys=_object_keys(r))
            certificates.append(
                DeletionCertificate(
                    recording=r,
                    sweep_run=run,
                    deleted_at=at,
                    sha256=r.sha256,
                    size_bytes=r.size_bytes,
                    policy=policy,
                    delete_after=r.delete_after,
                    objects_deleted=_object_keys(r),
                    statement=statement,
                    digest=hashlib.sha256(_canonical(statement)).hexdigest(),
                )  # fmt: skip
            )
        DeletionCertificate.objects.bulk_create(certificates)
        audit_record_many(
            actor=ACTOR,
            action="recording.erased",
            entries=[
                {
                    "obj": r,
                    "justification": f"retention policy: {policy}; "
                    f"expired {r.delete_after:%Y-%m-%d %H:%M} UTC",
                    "detail": {"certificate": cert.digest, "sweep_run": run.pk},
                }
                for r, cert in zip(done, certificates, strict=True)
            ],
        )
        # Storage refused the others: they stay claimed (not deleted) until the lease runs out,
        # so this run does not spin on them and the next run retries them.
        SweepRun.objects.filter(pk=run.pk).update(
            deleted=run.deleted + len(done),
            failed=run.failed + len(stuck),
            bytes_freed=run.bytes_freed + freed,
        )
    run.deleted += len(done)
    run.failed += len(stuck)
    run.bytes_freed += freed
    for r in stuck:
        _note_error(run, f"{r.pk}: storage did not delete {sorted(failed & set(_object_keys(r)))}")


def _note_error(run: SweepRun, message: str) -> None:
    log.warning("retention sweep %s: %s", run.pk, message)
    if len(run.errors) < MAX_ERRORS_KEPT:
        run.errors.append(message)
        SweepRun.objects.filter(pk=run.pk).update(errors=run.errors)


def _guard(*, candidates: int) -> str | None:
    """Why this run must not delete anything, or None when it may."""
    store = blob_store()
    try:
        store.check()
    except StorageUnavailable as exc:
        return f"storage is unreachable: {exc}"
    stored = Recording.objects.filter(state=RecordingState.AVAILABLE).count()
    share = settings.BWV_SWEEP_MAX_SHARE
    if candidates > settings.BWV_SWEEP_GUARD_MIN and candidates > share * stored:
        return (f"this run would delete {candidates} of {stored} stored recordings, more than "
                f"the {share:.0%} allowed in one run")  # fmt: skip
    # A store that lost everything (wrong bucket, wiped volume) must not be "cleaned" further.
    sample = list(
        Recording.objects.filter(state=RecordingState.AVAILABLE)
        .order_by("-started_at")
        .values_list("storage_key", flat=True)[:10]
    )
    if len(sample) >= 3 and all(store.size(key) is None for key in sample):
        return f"storage looks empty: none of the {len(sample)} newest recordings' objects exist"
    return None


def _alert(run: SweepRun, message: str) -> None:
    log.error("retention sweep %s stopped: %s", run.pk, message)
    audit_record(actor=ACTOR, action="sweep.guard_stopped", obj=run, justification=message)
    mail_admins("Retention sweep stopped by its guard", message, fail_silently=True)


def sweep_expired_recordings(
    *,
    now: datetime | None = None,
    batch_size: int = 500,
    dry_run: bool = False,
    triggered_by: str = "schedule",
    override_reason: str = "",
) -> SweepRun:
    """Erase every expired, unheld recording. See the module's guarantees.

    `now` is the sweep's clock (expiry and claim leases); tests move it instead of the process
    clock, which S3 request signing must keep true.
    """
    now = now or timezone.now()
    run = SweepRun.objects.create(started_at=timezone.now(), triggered_by=triggered_by,
                                  dry_run=dry_run)  # fmt: skip
    try:
        candidates = expired_unheld(now).count() + _unfinished(now).count()
        SweepRun.objects.filter(pk=run.pk).update(candidates=candidates)
        run.candidates = candidates
        if dry_run:
            size = expired_unheld(now).aggregate(total=Sum("size_bytes"))["total"] or 0
            return _finish(run, SweepRun.Status.DRY_RUN,
                           f"would delete {candidates} recordings, {size} bytes")  # fmt: skip
        reason = _guard(candidates=candidates) if candidates else None
        if reason and not override_reason:
            _alert(run, reason)
            return _finish(run, SweepRun.Status.GUARD_STOPPED, reason)
        if reason:
            audit_record(actor=triggered_by, action="sweep.guard_overridden", obj=run,
                         justification=override_reason, detail={"guard": reason})  # fmt: skip
        policy = str(default_policy() or f"default ({settings.BWV_RETENTION_DAYS} days)")
        token = uuid.uuid4()
        # Two stages in step: while one batch's rows are written, the next batch's objects are
        # being deleted. The storage stage touches no database, and at most two batches are held.
        with ThreadPoolExecutor(max_workers=1) as storage:
            previous = None
            while True:
                ids = _claim_batch(token=token, now=now, batch_size=batch_size)
                current = None
                if ids:
                    recordings = _load(ids, token)
                    current = (recordings, storage.submit(_delete_objects, recordings))
                if previous is not None:
                    recordings, deleting = previous
                    failed, error = deleting.result()
                    if error:
                        _note_error(run, error)
                    _record_batch(run=run, token=token, recordings=recordings, failed=failed,
                                  policy=policy)  # fmt: skip
                if current is None:
                    break
                previous = current
        status = SweepRun.Status.COMPLETED_WITH_ERRORS if run.failed else SweepRun.Status.COMPLETED
        return _finish(run, status, "")
    except Exception as exc:
        _finish(run, SweepRun.Status.FAILED, f"{type(exc).__name__}: {exc}")
        raise


def _finish(run: SweepRun, status: str, message: str) -> SweepRun:
    SweepRun.objects.filter(pk=run.pk).update(status=status, message=message,
                                               finished_at=timezone.now())  # fmt: skip
    run.refresh_from_db()
    log.info("retention sweep %s: %s (%s deleted, %s failed) %s", run.pk, status, run.deleted,
             run.failed, message)  # fmt: skip
    return run
