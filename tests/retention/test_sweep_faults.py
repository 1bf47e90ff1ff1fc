"""The sweep under faults, on the real PostgreSQL and S3: storage failing mid-run, a run whose worker
was killed, and the checks that must not be fooled by claimed rows (reconciliation, the guard)."""

import uuid
from datetime import timedelta

import pytest
from django.core import mail
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connections
from django.utils import timezone

from blobstore import StorageUnavailable, blob_store
from custody.models import AuditEvent
from evidence.models import Recording, RecordingState
from retention.models import DeletionCertificate, Hold, HoldSource, SweepRun
from retention.reconcile import reconcile
from retention.services import RecordingGone, hold_lift, hold_place
from retention.sweep import sweep_expired_recordings
from tests import factories as f

pytestmark = pytest.mark.django_db

OPS = "ops@example.org"


@pytest.fixture(autouse=True)
def _alerts_and_quick_retries(settings):
    settings.ADMINS = [("Operations", OPS)]
    settings.BWV_SWEEP_STORAGE_RETRY_SECONDS = 0


def _stored(n: int, *, days_old: int = 40, **fields) -> list:
    """Recording rows whose media and poster objects really are in the bucket."""
    cam = f.camera()
    store = blob_store()
    rows = []
    for i in range(n):
        rid = uuid.uuid4()
        row = f.recording_row(
            id=rid,
            cam=cam,
            started=timezone.now() - timedelta(days=days_old, minutes=i),
            storage_key=f"recordings/{rid}/media",
            poster_key=f"recordings/{rid}/poster",
            wrapped_key=b"wrapped",
            **fields,
        )
        store.put(row.storage_key, b"sealed media")
        store.put(row.poster_key, b"sealed poster")
        rows.append(row)
    return rows


def _exists(recording) -> bool:
    return blob_store().size(recording.storage_key) is not None


def _fail_from_call(monkeypatch, n: int) -> list:
    """Make the store's DeleteObjects raise from its n-th call on; returns the calls' keys.

    A real S3 server cannot be made to fail on demand at the second batch of a run, so this one
    method is patched (fault injection); every call before that goes to the real server."""
    store = blob_store()
    real = store.delete_many
    calls: list = []

    def delete_many(keys):
        calls.append(list(keys))
        if len(calls) >= n:
            raise StorageUnavailable("S3 delete_objects: ServiceUnavailable")
        return real(keys)

    monkeypatch.setattr(store, "delete_many", delete_many)
    return calls


def test_storage_failing_mid_sweep_stops_the_run_gives_back_its_claims_and_alerts(monkeypatch):
    recordings = _stored(9)
    calls = _fail_from_call(monkeypatch, 2)
    with pytest.raises(CommandError, match="media store failed"):  # manage.py exits 1
        call_command("sweep_retention", "--batch-size", "3", "--override-guard", "test")
    run = SweepRun.objects.get()
    assert run.status == SweepRun.Status.STORAGE_FAILED and run.finished_at is not None
    # Batch 1 deleted; batch 2 tried three times in all (the bounded retry), then the run stopped:
    # batch 3 was claimed beside batch 2's deletion, never sent to storage, and nothing after it.
    assert [len(keys) for keys in calls] == [6, 6, 6, 6]
    assert run.deleted == 3 and run.released == 6 and run.failed == 3
    states = dict(
        Recording.objects.filter(pk__in=[r.pk for r in recordings]).values_list("pk", "state")
    )
    assert list(states.values()).count(RecordingState.DELETED) == 3
    assert list(states.values()).count(RecordingState.AVAILABLE) == 6, "claims given back"
    released = [r for r in recordings if states[r.pk] == RecordingState.AVAILABLE]
    assert all(_exists(r) for r in released)

    # A hold can be placed at once on every recording given back: nothing waits for a lease.
    sergeant = f.user("custody_sergeant")
    holds = [
        hold_place(recording=r, source=HoldSource.LEGAL, actor=sergeant, reason="court order")
        for r in released
    ]
    assert all(h.active for h in holds)

    # The admins are told: a mail and an audit event, saying what happened.
    assert len(mail.outbox) == 1 and mail.outbox[0].to == [OPS]
    assert (
        "media store failed" in mail.outbox[0].subject and "6 recording(s)" in mail.outbox[0].body
    )
    event = AuditEvent.objects.get(action="sweep.storage_failed")
    assert event.object_id == str(run.pk) and "6 are available again" in event.justification

    # Storage is back and the holds are lifted: the next run finishes, each deletion once.
    monkeypatch.undo()
    for hold in holds:
        hold_lift(hold=hold, actor=sergeant, reason="order discharged")
    call_command("sweep_retention", "--batch-size", "3", "--override-guard", "test")
    second = SweepRun.objects.exclude(pk=run.pk).get()
    assert second.status == SweepRun.Status.COMPLETED and second.deleted == 6
    for recording in recordings:
        recording.refresh_from_db()
        assert recording.state == RecordingState.DELETED and not _exists(recording)
        assert DeletionCertificate.objects.filter(recording=recording).count() == 1
        erased = AuditEvent.objects.filter(action="recording.erased", object_id=str(recording.pk))
        assert erased.count() == 1


def test_rows_taken_over_from_an_unfinished_run_are_not_made_available_when_storage_fails(
    monkeypatch,
):
    # Claimed by a run that died after sending them to storage: their objects may be gone.
    recordings = _stored(2, state=RecordingState.DELETING, sweep_claim=None)
    _fail_from_call(monkeypatch, 1)
    run = sweep_expired_recordings(override_reason="test")
    assert run.status == SweepRun.Status.STORAGE_FAILED and run.released == 2
    for recording in recordings:
        recording.refresh_from_db()
        assert recording.state == RecordingState.DELETING and recording.sweep_claim is None
        with pytest.raises(RecordingGone, match="being deleted"):
            hold_place(recording=recording, source=HoldSource.LEGAL, actor=None, reason="late")
    monkeypatch.undo()
    assert sweep_expired_recordings(override_reason="test").deleted == 2


def test_a_killed_runs_record_is_closed_as_abandoned_and_its_claims_are_finished_at_once():
    # What a worker killed mid-run leaves: its record "running", rows claimed under a lease that
    # has 30 minutes to go, and no process (so no session holding the run's lock).
    token = uuid.uuid4()
    started = timezone.now() - timedelta(minutes=2)
    dead = SweepRun.objects.create(started_at=started, claim_token=token, heartbeat_at=started)
    claimed = _stored(
        3, state=RecordingState.DELETING, sweep_claim=token, sweep_claimed_at=timezone.now()
    )
    waiting = _stored(2)
    run = sweep_expired_recordings(override_reason="test")
    dead.refresh_from_db()
    assert dead.status == SweepRun.Status.ABANDONED and dead.finished_at is not None
    assert f"Run {run.pk} closed it" in dead.message
    event = AuditEvent.objects.get(action="sweep.abandoned")
    assert event.object_id == str(dead.pk) and event.detail["claims_taken_over"] == 3
    assert run.status == SweepRun.Status.COMPLETED and run.deleted == 5
    for recording in claimed + waiting:
        recording.refresh_from_db()
        assert recording.state == RecordingState.DELETED
        assert DeletionCertificate.objects.filter(recording=recording).count() == 1


def test_a_run_still_working_elsewhere_is_left_alone():
    token = uuid.uuid4()
    live = SweepRun.objects.create(started_at=timezone.now(), claim_token=token)
    claimed = _stored(
        2, state=RecordingState.DELETING, sweep_claim=token, sweep_claimed_at=timezone.now()
    )
    # Its worker: another database session holding the run's lock, as a working run does.
    from retention import sweep

    other = connections.create_connection("default")
    try:
        with other.cursor() as cursor:
            cursor.execute(
                "SELECT pg_advisory_lock(%s, %s)",
                [sweep._LIVENESS_NAMESPACE, sweep._liveness_key(token)],
            )
        run = sweep_expired_recordings(override_reason="test")
    finally:
        other.close()
    live.refresh_from_db()
    assert live.status == SweepRun.Status.RUNNING and run.deleted == 0
    assert not AuditEvent.objects.filter(action="sweep.abandoned").exists()
    for recording in claimed:
        recording.refresh_from_db()
        assert recording.state == RecordingState.DELETING and recording.sweep_claim == token


def test_reconciliation_does_not_report_rows_under_a_live_claim_as_missing():
    prefix = f"recordings/{uuid.uuid4().hex[:8]}"
    now = timezone.now()
    ids = [uuid.UUID(f"{prefix[11:]}-0000-4000-8000-{i:012x}") for i in range(3)]
    live, stale, available = (
        f.recording_row(id=rid, storage_key=f"recordings/{rid}/media", **fields)
        for rid, fields in zip(
            ids,
            [
                {
                    "state": RecordingState.DELETING,
                    "sweep_claim": uuid.uuid4(),
                    "sweep_claimed_at": now,
                },
                {
                    "state": RecordingState.DELETING,
                    "sweep_claim": uuid.uuid4(),
                    "sweep_claimed_at": now - timedelta(hours=2),
                },
                {"state": RecordingState.AVAILABLE},
            ],
            strict=True,
        )
    )
    # None of the three has its object: the live claim's sweep is deleting it right now.
    findings = {x.recording: x for x in reconcile(prefix=prefix)}
    assert set(findings) == {str(stale.pk), str(available.pk)}
    assert "left unfinished by a sweep" in findings[str(stale.pk)].detail
    assert findings[str(available.pk)].kind == "missing_object"
    assert str(live.pk) not in findings


def test_the_guard_counts_claimed_rows_as_stored_as_it_counts_them_as_candidates(settings):
    settings.BWV_SWEEP_GUARD_MIN = 1
    settings.BWV_SWEEP_MAX_SHARE = 0.5
    _stored(2, days_old=1)  # kept: not yet due
    unfinished = _stored(2, state=RecordingState.DELETING, sweep_claim=None)
    # Two deletions to finish out of four stored recordings: half, which the guard allows.
    run = sweep_expired_recordings()
    assert run.status == SweepRun.Status.COMPLETED, run.message
    assert run.deleted == 2
    for recording in unfinished:
        recording.refresh_from_db()
        assert recording.state == RecordingState.DELETED


def test_holds_placed_on_given_back_recordings_keep_them_from_the_next_run(monkeypatch):
    recordings = _stored(4)
    _fail_from_call(monkeypatch, 1)
    sweep_expired_recordings(batch_size=2, override_reason="test")
    monkeypatch.undo()
    keep = recordings[0]
    keep.refresh_from_db()
    hold_place(recording=keep, source=HoldSource.LEGAL, actor=None, reason="court order")
    run = sweep_expired_recordings(batch_size=2, override_reason="test")
    assert run.deleted == 3
    keep.refresh_from_db()
    assert keep.state == RecordingState.AVAILABLE and _exists(keep)
    assert Hold.objects.get(recording=keep).active
