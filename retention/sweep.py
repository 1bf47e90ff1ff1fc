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
  deleted.
- Storage failing stops the run: a batch whose objects storage still will not delete after a
  bounded retry (BWV_SWEEP_STORAGE_ATTEMPTS) is the last. The next batch is claimed while one is
  being deleted but sent to storage only once that one succeeded, so when the run stops, the
  recordings it claimed and could not finish are given back at once: back to available (a hold
  can be placed on them straight away) when this run was the first to claim them, or left to be
  finished by the next run, unclaimed, when an earlier run had claimed them (their objects may
  already be gone). The run ends "storage failed", the admins are alerted (mail and an audit
  event) and `manage.py sweep_retention` exits non-zero. Should storage have deleted a given-back
  recording's objects without saying so (a reply lost), `reconcile_storage` names it, and the
  next run, unless a hold came first, completes its deletion.
- Idempotent and resumable: a run that crashes anywhere leaves claimed rows that the next run
  finishes. Deleting an object twice is harmless, and the certificate is unique per recording, so
  each recording is deleted exactly once with exactly one certificate.
- A run proves it is alive while it works: on PostgreSQL it holds an advisory lock, named by its
  claim token, on its own database session, from before its record exists until it is finished;
  elsewhere it writes a heartbeat. A run whose process died (killed, its session gone) is closed
  as abandoned by the next run, which takes over its claims at once (they no longer wait for the
  claim lease, CLAIM_LEASE, which remains the backstop).
- A blast-radius guard stops the run and alerts, deleting nothing, when a run would remove more
  than a configured share of the stored recordings, or when storage is unreachable or looks empty.
  Claimed (deleting) rows count as stored, as they count as candidates.
- Memory is bounded by two batches.

In a versioned bucket (Object Lock needs one) a delete leaves the bytes as a non-current version
until the bucket's lifecycle rule expires them; they are unreadable at once all the same, since
the data key that could decrypt them is destroyed here (crypto-shredding).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import ClassVar

from django.conf import settings
from django.core.mail import mail_admins
from django.db import IntegrityError, connection, transaction
from django.db.models import Exists, OuterRef, Q, Sum
from django.utils import timezone

from blobstore import StorageUnavailable, blob_store
from custody.services import audit_record, audit_record_many
from devices.models import Borough
from evidence.models import Recording, RecordingState
from retention.models import DeletionCertificate, Hold, SweepRun
from retention.selectors import default_policy

log = logging.getLogger(__name__)

ACTOR = "system:retention-sweep"
CLAIM_LEASE = timedelta(minutes=30)
MAX_ERRORS_KEPT = 100


def expired_unheld(now: datetime):
    """Recordings the policy says must go now (through the partial index rec_expiry_unheld)."""
    return Recording.objects.filter(
        state=RecordingState.AVAILABLE, held=False, delete_after__lte=now
    )


def _unfinished(now: datetime):
    """Recordings claimed by a run that did not finish them (it crashed, was abandoned, or its
    storage failed after their objects were sent for deletion)."""
    return Recording.objects.filter(state=RecordingState.DELETING).filter(
        Q(sweep_claim__isnull=True) | Q(sweep_claimed_at__lt=now - CLAIM_LEASE)
    )


def under_live_claim(now: datetime):
    """Recordings a running sweep has claimed and may be deleting right now."""
    return Recording.objects.filter(
        state=RecordingState.DELETING,
        sweep_claim__isnull=False,
        sweep_claimed_at__gte=now - CLAIM_LEASE,
    )


def _lock(queryset, limit: int) -> list[uuid.UUID]:
    skip = connection.features.has_select_for_update_skip_locked
    locked = queryset.select_for_update(skip_locked=skip).order_by().values_list("pk", flat=True)
    return list(locked[:limit])


@dataclass(frozen=True, slots=True)
class _Claimed:
    """What the sweep needs of a claimed recording, read as plain values: a batch is a thousand
    rows, and building a thousand recordings with their cameras, officers and boroughs as model
    instances cost more than any other step of the sweep. It is an audited object (the audit log's
    protocol: `audit_type`, `pk`, `borough`)."""

    audit_type: ClassVar[str] = Recording._meta.label_lower
    pk: uuid.UUID
    borough: Borough
    camera_serial: str
    officer_collar_number: str | None
    started_at: datetime
    ended_at: datetime
    sha256: str
    size_bytes: int
    delete_after: datetime
    storage_key: str
    poster_key: str
    filmstrip_key: str


_CLAIMED_COLUMNS = (
    "pk",
    "borough_id",
    "camera__serial",
    "officer__collar_number",
    "started_at",
    "ended_at",
    "sha256",
    "size_bytes",
    "delete_after",
    "storage_key",
    "poster_key",
    "filmstrip_key",
)


@dataclass
class _Batch:
    recordings: list[_Claimed]
    # Taken over from an earlier run that did not finish them: their objects may be gone already.
    resumed: set[uuid.UUID] = field(default_factory=set)
    deleting: Future | None = None

    @property
    def ids(self) -> list[uuid.UUID]:
        return [r.pk for r in self.recordings]


def _claim_batch(*, token: uuid.UUID, now: datetime, batch_size: int) -> _Batch | None:
    """Claim up to `batch_size` recordings for this run (one short transaction)."""
    with transaction.atomic():
        resumed = _lock(_unfinished(now), batch_size)
        fresh = (
            _lock(expired_unheld(now), batch_size - len(resumed))
            if len(resumed) < batch_size
            else []
        )
        if fresh:
            # Rows are locked now: a hold committed before the lock is visible to this query, and
            # none can be placed until we commit (hold_place locks the row first).
            held = set(
                Hold.objects.filter(recording_id__in=fresh, active=True).values_list(
                    "recording_id", flat=True
                )
            )
            fresh = [pk for pk in fresh if pk not in held]
        ids = resumed + fresh
        if ids:
            Recording.objects.filter(pk__in=ids).update(
                state=RecordingState.DELETING, sweep_claim=token, sweep_claimed_at=now
            )
    if not ids:
        return None
    return _Batch(_load(ids, token), set(resumed))


def _object_keys(recording: _Claimed) -> list[str]:
    return [k for k in (recording.storage_key, recording.poster_key, recording.filmstrip_key) if k]


def _certificate(recording: _Claimed, *, run: SweepRun, policy: str, at: datetime, keys) -> dict:
    return {
        "type": "bwv.deletion-certificate.v1",
        "recording": str(recording.pk),
        "camera": recording.camera_serial,
        "officer": recording.officer_collar_number,
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


def _load(ids: list[uuid.UUID], token: uuid.UUID) -> list[_Claimed]:
    rows = list(
        Recording.objects.filter(pk__in=ids, sweep_claim=token).values_list(*_CLAIMED_COLUMNS)
    )
    boroughs = Borough.objects.in_bulk({row[1] for row in rows})  # a few dozen at most
    return [
        _Claimed(row[0], boroughs[row[1]], *row[2:])  # the order of _CLAIMED_COLUMNS
        for row in rows
    ]


def _delete_objects(recordings: list[_Claimed]) -> tuple[set[str], str]:
    """Delete the batch's objects, retrying what failed a bounded number of times (storage only,
    no database: it runs beside the next claim and the previous batch's record). Returns the keys
    storage still would not delete, and why."""
    pending = [key for r in recordings for key in _object_keys(r)]
    attempts = max(1, settings.BWV_SWEEP_STORAGE_ATTEMPTS)
    error = ""
    for attempt in range(attempts):
        if attempt:
            time.sleep(settings.BWV_SWEEP_STORAGE_RETRY_SECONDS * 2 ** (attempt - 1))
        try:
            failed = blob_store().delete_many(pending)
            error = f"it did not delete {len(failed)} of {len(pending)} objects" if failed else ""
        except StorageUnavailable as exc:
            failed, error = pending, str(exc)
        if not failed:
            return set(), ""
        log.warning("retention sweep: attempt %s of %s: %s", attempt + 1, attempts, error)
        pending = list(failed)
    return set(pending), error


def _release(*, token: uuid.UUID, ids: list[uuid.UUID], resumed: set[uuid.UUID]) -> tuple[int, int]:
    """Give back claims this run could not finish. Returns (made available again, left unclaimed
    for the next run).

    A recording this run was the first to claim goes back to available, so a hold can be placed
    on it at once. One taken over from an earlier run stays deleting, unclaimed, for the next run
    to finish without waiting: its objects may already be gone. So does one whose clip was
    uploaded again while it was claimed: the new copy is the available one (one per camera and
    hash).
    """
    with transaction.atomic():
        mine = Recording.objects.filter(
            pk__in=ids, state=RecordingState.DELETING, sweep_claim=token
        )
        reupload = Recording.objects.filter(
            camera=OuterRef("camera"), sha256=OuterRef("sha256"), state=RecordingState.AVAILABLE
        )
        fresh = [pk for pk in ids if pk not in resumed]
        left = mine.filter(Q(pk__in=resumed) | Exists(reupload)).update(sweep_claim=None)
        try:
            with transaction.atomic():
                available = mine.filter(pk__in=fresh).update(
                    state=RecordingState.AVAILABLE, sweep_claim=None, sweep_claimed_at=None
                )
        except IntegrityError:  # a copy became available meanwhile: leave this one for the next run
            available = 0
            left += mine.filter(pk__in=fresh).update(sweep_claim=None)
    return available, left


def _record_batch(
    *, run: SweepRun, token: uuid.UUID, recordings: list[_Claimed], failed: set[str], policy: str
) -> None:
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
                    recording_id=r.pk,
                    sweep_run=run,
                    deleted_at=at,
                    sha256=r.sha256,
                    size_bytes=r.size_bytes,
                    policy=policy,
                    delete_after=r.delete_after,
                    objects_deleted=_object_keys(r),
                    statement=statement,
                    digest=hashlib.sha256(_canonical(statement)).hexdigest(),
                )
            )
        DeletionCertificate.objects.bulk_create(certificates)
        # Storage refused the others: the run stops after this batch and gives them back.
        SweepRun.objects.filter(pk=run.pk).update(
            deleted=run.deleted + len(done),
            failed=run.failed + len(stuck),
            bytes_freed=run.bytes_freed + freed,
            heartbeat_at=timezone.now(),
        )
        # Last: the audit log's head stays locked from the append to the commit, and other
        # sweep processes (and every other writer of the log) wait for it.
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
    # Candidates include claimed (deleting) rows, so the stored rows they are a share of do too.
    stored = Recording.objects.filter(
        state__in=[RecordingState.AVAILABLE, RecordingState.DELETING]
    ).count()
    share = settings.BWV_SWEEP_MAX_SHARE
    if candidates > settings.BWV_SWEEP_GUARD_MIN and candidates > share * stored:
        return (
            f"this run would delete {candidates} of {stored} stored recordings, more than "
            f"the {share:.0%} allowed in one run"
        )
    # A store that lost everything (wrong bucket, wiped volume) must not be "cleaned" further.
    sample = list(
        Recording.objects.filter(state=RecordingState.AVAILABLE)
        .order_by("-started_at")
        .values_list("storage_key", flat=True)[:10]
    )
    if len(sample) >= 3 and all(store.size(key) is None for key in sample):
        return f"storage looks empty: none of the {len(sample)} newest recordings' objects exist"
    return None


def _alert(run: SweepRun, *, action: str, subject: str, message: str) -> None:
    """Tell the admins: an audit event and a mail (after any transaction: it is network I/O)."""
    log.error("retention sweep %s stopped: %s", run.pk, message)
    audit_record(
        actor=ACTOR,
        action=action,
        obj=run,
        justification=message,
        detail={"status": run.status, "deleted": run.deleted, "released": run.released},
    )
    mail_admins(
        subject,
        f"Retention sweep {run.pk}, started {run.started_at:%Y-%m-%d %H:%M} UTC:\n\n{message}\n",
        fail_silently=True,
    )


# -- Liveness: a run that died is told from one still working -------------------------------------

_LIVENESS_NAMESPACE = 0x42575352  # the first key of the sweep's advisory locks (ASCII "BWSR")


def _liveness_key(token: uuid.UUID) -> int:
    return int.from_bytes(token.bytes[:4], "big", signed=True)


def _on_postgresql() -> bool:
    return connection.vendor == "postgresql"


@contextlib.contextmanager
def _alive_while_running(token: uuid.UUID) -> Iterator[None]:
    """Hold this run's advisory lock on our database session for as long as the run works. The
    session ends with the process, so the lock is free the moment the process dies, however it
    dies (no timeout to wait for). Session locks need a session of our own: not a pooler in
    transaction mode."""
    if not _on_postgresql():
        yield
        return
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT pg_advisory_lock(%s, %s)", [_LIVENESS_NAMESPACE, _liveness_key(token)]
        )
    try:
        yield
    finally:
        with contextlib.suppress(Exception), connection.cursor() as cursor:
            cursor.execute(
                "SELECT pg_advisory_unlock(%s, %s)", [_LIVENESS_NAMESPACE, _liveness_key(token)]
            )


@contextlib.contextmanager
def _if_dead(run: SweepRun, now: datetime) -> Iterator[bool]:
    """Yields True when the run's process is gone, and then keeps it from coming back as alive
    until the block ends (its lock held by us). On PostgreSQL the run's advisory lock says so;
    elsewhere a heartbeat older than the claim lease."""
    if run.claim_token is None or not _on_postgresql():
        yield (run.heartbeat_at or run.started_at) < now - CLAIM_LEASE
        return
    key = [_LIVENESS_NAMESPACE, _liveness_key(run.claim_token)]
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_try_advisory_lock(%s, %s)", key)
        dead = cursor.fetchone()[0]
    try:
        yield dead
    finally:
        if dead:
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_advisory_unlock(%s, %s)", key)


def _close_abandoned(*, current: SweepRun, now: datetime) -> int:
    """Close as abandoned every other run still marked running whose process is gone, and take
    over its claims: they become unfinished deletions this run finishes at once."""
    closed = 0
    for other in SweepRun.objects.filter(status=SweepRun.Status.RUNNING).exclude(pk=current.pk):
        with _if_dead(other, now) as dead:
            if not dead:
                continue
            taken_over = 0
            with transaction.atomic():
                # Still running by its record? It may have finished since we read it.
                closing = SweepRun.objects.filter(pk=other.pk, status=SweepRun.Status.RUNNING)
                message = (
                    f"Its worker stopped mid-run. Run {current.pk} closed it and took over the "
                    "recordings it had claimed."
                )
                if not closing.update(
                    status=SweepRun.Status.ABANDONED, finished_at=timezone.now(), message=message
                ):
                    continue
                if other.claim_token is not None:
                    taken_over = Recording.objects.filter(
                        state=RecordingState.DELETING, sweep_claim=other.claim_token
                    ).update(sweep_claim=None)
                audit_record(
                    actor=ACTOR,
                    action="sweep.abandoned",
                    obj=other,
                    justification="the run's worker stopped before it finished",
                    detail={"closed_by_run": current.pk, "claims_taken_over": taken_over},
                )
            log.warning(
                "retention sweep %s: run %s was abandoned; %s claims taken over",
                current.pk,
                other.pk,
                taken_over,
            )
            closed += 1
    return closed


# -- The run ----------------------------------------------------------------------------------------


def sweep_expired_recordings(
    *,
    now: datetime | None = None,
    batch_size: int | None = None,
    dry_run: bool = False,
    triggered_by: str = "schedule",
    override_reason: str = "",
) -> SweepRun:
    """Erase every expired, unheld recording. See the module's guarantees.

    `now` is the sweep's clock (expiry and claim leases); tests move it instead of the process
    clock, which S3 request signing must keep true.
    """
    now = now or timezone.now()
    batch_size = batch_size or settings.BWV_SWEEP_BATCH_SIZE
    token = uuid.uuid4()
    with _alive_while_running(token):
        run = SweepRun.objects.create(
            started_at=timezone.now(),
            triggered_by=triggered_by,
            dry_run=dry_run,
            claim_token=token,
            heartbeat_at=timezone.now(),
        )
        try:
            return _run(
                run,
                token=token,
                now=now,
                batch_size=batch_size,
                dry_run=dry_run,
                triggered_by=triggered_by,
                override_reason=override_reason,
            )
        except Exception as exc:
            with contextlib.suppress(Exception):
                # Whatever it had claimed is left, unclaimed, for the next run to finish.
                Recording.objects.filter(state=RecordingState.DELETING, sweep_claim=token).update(
                    sweep_claim=None
                )
            _finish(run, SweepRun.Status.FAILED, f"{type(exc).__name__}: {exc}")
            raise


def _run(
    run: SweepRun,
    *,
    token: uuid.UUID,
    now: datetime,
    batch_size: int,
    dry_run: bool,
    triggered_by: str,
    override_reason: str,
) -> SweepRun:
    if not dry_run:  # a dry run changes nothing, not even another run's record
        _close_abandoned(current=run, now=now)
    candidates = expired_unheld(now).count() + _unfinished(now).count()
    SweepRun.objects.filter(pk=run.pk).update(candidates=candidates)
    run.candidates = candidates
    if dry_run:
        size = expired_unheld(now).aggregate(total=Sum("size_bytes"))["total"] or 0
        return _finish(
            run, SweepRun.Status.DRY_RUN, f"would delete {candidates} recordings, {size} bytes"
        )
    reason = _guard(candidates=candidates) if candidates else None
    if reason and not override_reason:
        run = _finish(run, SweepRun.Status.GUARD_STOPPED, reason)
        _alert(
            run,
            action="sweep.guard_stopped",
            subject="Retention sweep stopped by its guard",
            message=reason,
        )
        return run
    if reason:
        audit_record(
            actor=triggered_by,
            action="sweep.guard_overridden",
            obj=run,
            justification=override_reason,
            detail={"guard": reason},
        )
    policy = str(default_policy() or f"default ({settings.BWV_RETENTION_DAYS} days)")
    # Two stages in step: while one batch's objects are being deleted the next batch is claimed,
    # and while a batch's rows are written the next batch's objects are being deleted. A batch
    # goes to storage only after the one before it was deleted, so a storage failure leaves at
    # most one batch claimed and never sent: it is given back untouched.
    with ThreadPoolExecutor(max_workers=1) as storage:
        previous: _Batch | None = None
        while True:
            batch = _claim_batch(token=token, now=now, batch_size=batch_size)
            if previous is not None:
                failed, error = previous.deleting.result()
                if failed:
                    _note_error(run, error)
                    _record_batch(
                        run=run,
                        token=token,
                        recordings=previous.recordings,
                        failed=failed,
                        policy=policy,
                    )
                    return _stop_for_storage(
                        run, token=token, error=error, unfinished=[previous, batch]
                    )
            if batch is not None:
                batch.deleting = storage.submit(_delete_objects, batch.recordings)
            if previous is not None:
                _record_batch(
                    run=run,
                    token=token,
                    recordings=previous.recordings,
                    failed=set(),
                    policy=policy,
                )
            if batch is None:
                break
            previous = batch
    return _finish(run, SweepRun.Status.COMPLETED, "")


def _stop_for_storage(
    run: SweepRun, *, token: uuid.UUID, error: str, unfinished: list[_Batch | None]
) -> SweepRun:
    """Storage failed past the retry: give back what this run claimed and did not finish, stop,
    and alert."""
    available = left = 0
    for batch in unfinished:
        if batch is not None:
            a, b = _release(token=token, ids=batch.ids, resumed=batch.resumed)
            available, left = available + a, left + b
    released = available + left
    SweepRun.objects.filter(pk=run.pk).update(released=released)
    run.released = released
    attempts = max(1, settings.BWV_SWEEP_STORAGE_ATTEMPTS)
    message = (
        f"The media store failed after {attempts} attempt(s): {error}. The run stopped at its "
        f"first failed batch, having deleted {run.deleted}. It gave back the {released} "
        f"recording(s) it had claimed and not deleted: {available} are available again (a hold "
        f"can be placed on them now) and {left} are left for the next run to finish. Check the "
        "media store; the next run carries on."
    )
    run = _finish(run, SweepRun.Status.STORAGE_FAILED, message)
    _alert(
        run,
        action="sweep.storage_failed",
        subject="Retention sweep stopped: the media store failed",
        message=message,
    )
    return run


def _finish(run: SweepRun, status: str, message: str) -> SweepRun:
    SweepRun.objects.filter(pk=run.pk).update(
        status=status, message=message, finished_at=timezone.now(), heartbeat_at=timezone.now()
    )
    run.refresh_from_db()
    log.info(
        "retention sweep %s: %s (%s deleted, %s failed, %s released) %s",
        run.pk,
        status,
        run.deleted,
        run.failed,
        run.released,
        message,
    )
    return run
