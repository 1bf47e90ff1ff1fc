"""The retention sweep on the real PostgreSQL and S3, with a controllable clock."""

import hashlib
import json
import threading
from datetime import UTC, datetime, timedelta

import pytest
from django.core.management import call_command
from django.db import connection
from django.utils import timezone

from blobstore import blob_store
from bwv.celery import app
from custody.models import AuditEvent
from evidence.filmstrip import recording_filmstrip_make
from evidence.models import Recording, RecordingState
from retention.models import DeletionCertificate, SweepRun
from retention.services import hold_lift
from retention.sweep import expired_unheld, sweep_expired_recordings
from review.models import FlagKind
from review.services import FlagError, recording_flag
from tests import factories as f

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _no_review_window(settings):
    """These tests make expired footage by uploading clips whose retention has already run out (the
    process clock cannot move: S3 signs requests with it). The minimum review window would keep
    such late arrivals for a week; it has its own tests (tests/evidence/test_clock_suspect.py)."""
    settings.BWV_MIN_REVIEW_DAYS = 0


def _sweep(**kwargs):
    kwargs.setdefault("override_reason", "")
    return sweep_expired_recordings(**kwargs)


def _exists(recording) -> bool:
    return blob_store().size(recording.storage_key) is not None


def _recording(start: datetime):
    return f.ingested_recording(start=start)


# The sweep's clock is its `now` argument: moving the process clock instead would make S3 refuse
# the requests (their signatures carry the time).


def test_day_30_at_23_59_is_kept_and_day_31_is_gone_after_the_sweep():
    start = datetime(2026, 10, 2, 9, 0, tzinfo=UTC)  # a Friday in BST
    keep_me = _recording(start)
    day_30_23_59 = datetime(2026, 11, 1, 23, 59, tzinfo=UTC)  # GMT by then: London 23:59
    assert day_30_23_59 - start < timedelta(days=31)
    _sweep(now=day_30_23_59, override_reason="test: tiny estate")
    keep_me.refresh_from_db()
    assert keep_me.state == RecordingState.AVAILABLE and _exists(keep_me)
    run = _sweep(now=datetime(2026, 11, 2, 9, 1, tzinfo=UTC), override_reason="test: tiny estate")
    keep_me.refresh_from_db()
    assert keep_me.state == RecordingState.DELETED
    assert keep_me.wrapped_key is None
    assert not _exists(keep_me) and blob_store().size(keep_me.poster_key) is None
    assert run.status == SweepRun.Status.COMPLETED


def test_the_sweep_deletes_the_filmstrip_with_the_recording():
    recording = _recording(timezone.now() - timedelta(days=35))
    assert recording_filmstrip_make(recording_id=recording.pk) == "made"
    recording.refresh_from_db()
    assert blob_store().size(recording.filmstrip_key)
    _sweep(override_reason="test")
    recording.refresh_from_db()
    assert recording.state == RecordingState.DELETED
    assert blob_store().size(recording.filmstrip_key) is None
    assert list(blob_store().iter_keys(f"recordings/{recording.pk}/")) == []
    certificate = DeletionCertificate.objects.get(recording=recording)
    assert recording.filmstrip_key in certificate.statement["objects_deleted"]


def test_across_the_change_from_bst_to_gmt_deletion_is_31_days_of_real_time():
    # 1 October 2026 12:00 BST is 11:00 UTC; the clocks go back on 25 October.
    start = datetime(2026, 10, 1, 11, 0, tzinfo=UTC)
    recording = _recording(start)
    assert recording.delete_after == datetime(2026, 11, 1, 11, 0, tzinfo=UTC)  # 11:00 GMT
    _sweep(now=datetime(2026, 11, 1, 10, 59, tzinfo=UTC), override_reason="test")
    recording.refresh_from_db()
    assert recording.state == RecordingState.AVAILABLE
    _sweep(now=datetime(2026, 11, 1, 11, 0, tzinfo=UTC), override_reason="test")
    recording.refresh_from_db()
    assert recording.state == RecordingState.DELETED


def test_the_sweep_is_scheduled_nightly_on_london_time():
    entry = app.conf.beat_schedule["retention-sweep"]
    assert entry["task"] == "retention.tasks.sweep_expired_recordings_task"
    assert app.conf.timezone == "Europe/London"
    schedule = entry["schedule"]
    assert schedule.hour == {2} and schedule.minute == {30}


def test_a_missed_night_is_caught_up_by_the_next_run():
    base = datetime(2026, 9, 1, 8, 0, tzinfo=UTC)
    _recording(base - timedelta(days=30, hours=12))  # expires on night 1
    _recording(base - timedelta(days=29, hours=12))  # expires on night 2
    # No sweep on night 1 (the worker was down); the night-2 run takes both.
    run = _sweep(now=base + timedelta(days=1, hours=18), override_reason="test")
    assert run.deleted == 2
    assert set(Recording.objects.values_list("state", flat=True)) == {RecordingState.DELETED}


def test_held_footage_is_never_deleted_and_goes_at_the_next_sweep_once_released():
    start = timezone.now() - timedelta(days=40)
    recording = _recording(start)
    sergeant = f.user("custody_sergeant")
    flag = recording_flag(
        recording=recording,
        kind=FlagKind.EVIDENCE,
        actor=sergeant,
        crime_reference="5201234/26",
        reason="assault",
    )
    recording.refresh_from_db()
    assert recording.held
    assert not expired_unheld(timezone.now()).filter(pk=recording.pk).exists()
    _sweep(override_reason="test")
    recording.refresh_from_db()
    assert recording.state == RecordingState.AVAILABLE and _exists(recording)
    hold_lift(hold=recording.holds.get(), actor=sergeant, reason="no further action")
    recording.refresh_from_db()
    assert not recording.held and flag.recording_id == recording.pk
    _sweep(override_reason="test")
    recording.refresh_from_db()
    assert recording.state == RecordingState.DELETED


def test_each_deletion_has_exactly_one_certificate_and_one_audit_event():
    recording = _recording(timezone.now() - timedelta(days=35))
    run = _sweep(override_reason="test")
    certificate = DeletionCertificate.objects.get(recording=recording)
    assert certificate.sweep_run == run
    assert certificate.sha256 == recording.sha256
    canonical = json.dumps(certificate.statement, sort_keys=True, separators=(",", ":")).encode()
    assert certificate.digest == hashlib.sha256(canonical).hexdigest()
    assert certificate.statement["objects_deleted"] == [recording.storage_key, recording.poster_key]
    assert "31 days" in certificate.policy
    events = AuditEvent.objects.filter(action="recording.erased", object_id=str(recording.pk))
    assert events.count() == 1
    assert events.get().actor_label == "system:retention-sweep"
    # A second run finds nothing more to do.
    again = _sweep(override_reason="test")
    assert again.deleted == 0 and DeletionCertificate.objects.count() == 1


def test_the_certificate_and_the_audit_event_name_the_recording_its_camera_officer_and_borough():
    recording = _recording(timezone.now() - timedelta(days=35))
    assert recording.officer is not None
    run = _sweep(override_reason="test")
    certificate = DeletionCertificate.objects.get(recording=recording)
    statement = certificate.statement
    assert statement["recording"] == str(recording.pk)
    assert statement["camera"] == recording.camera.serial
    assert statement["officer"] == recording.officer.collar_number
    assert statement["borough"] == recording.borough.code
    assert statement["started_at"] == recording.started_at.isoformat()
    assert statement["ended_at"] == recording.ended_at.isoformat()
    assert statement["delete_after"] == recording.delete_after.isoformat()
    assert (
        statement["sha256"] == recording.sha256 and statement["size_bytes"] == recording.size_bytes
    )
    assert statement["sweep_run"] == run.pk and statement["data_key_destroyed"] is True
    event = AuditEvent.objects.get(action="recording.erased", object_id=str(recording.pk))
    assert event.object_type == "evidence.recording"
    assert event.borough_code == recording.borough.code
    assert event.data["detail"] == {"certificate": certificate.digest, "sweep_run": run.pk}
    assert f"expired {recording.delete_after:%Y-%m-%d %H:%M} UTC" in event.data["justification"]


def test_a_flag_on_a_deleted_recording_gets_a_clear_answer():
    recording = _recording(timezone.now() - timedelta(days=35))
    _sweep(override_reason="test")
    with pytest.raises(FlagError, match="was deleted on"):
        recording_flag(
            recording=recording,
            kind=FlagKind.POLICING_PURPOSE,
            actor=f.user("custody_sergeant"),
            reason="too late",
        )


def test_objects_storage_will_not_delete_stop_the_run_and_the_recording_is_given_back(
    monkeypatch, settings
):
    settings.BWV_SWEEP_STORAGE_RETRY_SECONDS = 0
    recording = _recording(timezone.now() - timedelta(days=35))
    store = blob_store()
    # A fault S3 cannot produce on demand: DeleteObjects reporting a per-key error every time.
    monkeypatch.setattr(store, "delete_many", lambda keys: list(keys))
    run = _sweep(override_reason="test")
    recording.refresh_from_db()
    assert run.status == SweepRun.Status.STORAGE_FAILED and run.failed == 1 and run.released == 1
    assert recording.state == RecordingState.AVAILABLE and recording.wrapped_key is not None
    assert _exists(recording) and not DeletionCertificate.objects.exists()
    monkeypatch.undo()
    run = _sweep(override_reason="test")  # at once: no lease to wait for
    recording.refresh_from_db()
    assert run.deleted == 1 and recording.state == RecordingState.DELETED
    assert DeletionCertificate.objects.filter(recording=recording).count() == 1


def test_a_crash_after_the_objects_are_gone_is_finished_by_the_next_run(monkeypatch):
    recording = _recording(timezone.now() - timedelta(days=35))

    def crash(*args, **kwargs):
        raise RuntimeError("worker killed")

    monkeypatch.setattr(DeletionCertificate.objects, "bulk_create", crash)
    with pytest.raises(RuntimeError):
        _sweep(override_reason="test")
    monkeypatch.undo()
    recording.refresh_from_db()
    # Storage already deleted, database rolled back: claimed, not marked deleted, no certificate.
    assert recording.state == RecordingState.DELETING and not _exists(recording)
    assert SweepRun.objects.get().status == SweepRun.Status.FAILED
    run = _sweep(now=timezone.now() + timedelta(hours=1), override_reason="test")
    recording.refresh_from_db()
    assert run.deleted == 1 and recording.state == RecordingState.DELETED
    assert DeletionCertificate.objects.filter(recording=recording).count() == 1


def test_the_guard_stops_a_run_that_would_delete_too_much(settings):
    settings.BWV_SWEEP_GUARD_MIN = 1
    settings.BWV_SWEEP_MAX_SHARE = 0.5
    old = [_recording(timezone.now() - timedelta(days=40)) for _ in range(3)]
    _recording(timezone.now() - timedelta(days=1))
    run = sweep_expired_recordings()
    assert run.status == SweepRun.Status.GUARD_STOPPED
    assert "would delete 3 of 4" in run.message
    assert all(Recording.objects.get(pk=r.pk).state == RecordingState.AVAILABLE for r in old)
    assert AuditEvent.objects.filter(action="sweep.guard_stopped").count() == 1
    run = sweep_expired_recordings(
        override_reason="backlog after a week-long outage", triggered_by="ops"
    )
    assert run.deleted == 3
    assert AuditEvent.objects.get(action="sweep.guard_overridden").justification.startswith(
        "backlog"
    )


def test_the_guard_stops_when_storage_looks_empty(settings):
    recordings = [_recording(timezone.now() - timedelta(days=d)) for d in (40, 2, 3, 4)]
    blob_store().delete_many([r.storage_key for r in recordings])  # the bucket lost everything
    run = sweep_expired_recordings()
    assert run.status == SweepRun.Status.GUARD_STOPPED
    assert "storage looks empty" in run.message
    assert not Recording.objects.filter(state=RecordingState.DELETED).exists()


def test_a_dry_run_deletes_nothing():
    recording = _recording(timezone.now() - timedelta(days=35))
    run = _sweep(dry_run=True)
    assert run.status == SweepRun.Status.DRY_RUN and run.candidates == 1
    recording.refresh_from_db()
    assert recording.state == RecordingState.AVAILABLE and _exists(recording)


def test_the_management_command_runs_the_sweep(capsys):
    _recording(timezone.now() - timedelta(days=35))
    call_command("sweep_retention", "--override-guard", "test")
    assert "deleted 1" in capsys.readouterr().out


def test_candidates_are_found_through_the_partial_index():
    _recording(timezone.now() - timedelta(days=35))
    # The claim query as the sweep runs it (no ordering: it takes any expired rows).
    sql, params = expired_unheld(timezone.now()).order_by().values("pk").query.sql_with_params()
    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL enable_seqscan = off")
        cursor.execute("EXPLAIN " + sql, params)
        plan = "\n".join(row[0] for row in cursor.fetchall())
    assert "rec_expiry_unheld" in plan


@pytest.mark.django_db(transaction=True)
def test_two_sweeps_at_once_delete_each_recording_exactly_once():
    recordings = [_recording(timezone.now() - timedelta(days=35)) for _ in range(12)]
    errors = []

    def run():
        try:
            sweep_expired_recordings(batch_size=2, override_reason="test", triggered_by="beat")
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=run) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert Recording.objects.filter(state=RecordingState.DELETED).count() == len(recordings)
    assert DeletionCertificate.objects.count() == len(recordings)
    assert AuditEvent.objects.filter(action="recording.erased").count() == len(recordings)
    assert sum(SweepRun.objects.values_list("deleted", flat=True)) == len(recordings)
