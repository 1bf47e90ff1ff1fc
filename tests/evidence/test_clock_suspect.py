"""Wrong camera clocks and late docking: no clip is erased before anyone could look at it.

On the real PostgreSQL and S3: clips go through the tus API into the store, and the retention sweep
runs against them with its clock moved forward (the process clock cannot move: S3 signs with it).
"""

from datetime import UTC, datetime, timedelta

import pytest
from django.db import connection
from django.utils import timezone
from rest_framework.test import APIClient

from blobstore import blob_store
from common.roles import Role
from custody.models import AuditEvent
from devices.services import camera_issue, camera_return
from evidence.models import ClockSuspect, Recording, RecordingState
from evidence.services import ClockCorrectionError, recording_correct_time
from retention.sweep import sweep_expired_recordings
from review.models import FlagKind
from review.services import recording_flag
from tests import factories as f

pytestmark = pytest.mark.django_db
FLAT_BATTERY = datetime(1970, 1, 1, 0, 0, 5, tzinfo=UTC)


@pytest.fixture
def cam(db):
    """A camera in service for 90 days, so clips of the last month are within its life."""
    camera, _officer = f.issued_camera(at=timezone.now() - timedelta(days=90))
    return camera


def _ingest(tus, cam, data: bytes, *, started: datetime, seconds: float = 2, **extra) -> Recording:
    """Upload a clip through the tus API, as a dock does; returns the recording it became."""
    created = tus.create(
        len(data), f.clip_metadata(cam, data, started=started, seconds=seconds, **extra)
    )
    assert created.status_code == 201, created.content
    url = created["Location"]
    done = tus.patch(url, 0, data)
    assert done.status_code == 204, done.content
    state = tus.get(url).json()
    assert state["state"] == "complete", state
    return Recording.objects.select_related("officer").get(pk=state["recording"])


def _sweep(now: datetime):
    return sweep_expired_recordings(now=now, override_reason="test: a tiny estate")


def _stored(recording: Recording) -> bool:
    recording.refresh_from_db()
    return (
        recording.state == RecordingState.AVAILABLE
        and blob_store().size(recording.storage_key) is not None
    )


# -- Suspect clocks at ingest -----------------------------------------------------------------------


def test_a_clip_from_1970_is_kept_from_its_arrival_attributed_to_the_holder_and_survives_sweeps(
    tus, small_clip
):
    cam, holder = f.issued_camera(at=timezone.now() - timedelta(days=30))
    recording = _ingest(tus, cam, small_clip, started=FLAT_BATTERY)

    assert recording.clock_suspect
    assert recording.clock_suspect_reason == ClockSuspect.BEFORE_2000
    assert recording.started_at == FLAT_BATTERY  # what the camera said is kept, not invented
    assert recording.officer == holder  # nobody held it in 1970; the holder at ingest did
    assert recording.delete_after >= recording.available_at + timedelta(days=31)
    event = AuditEvent.objects.get(action="recording.ingested", object_id=str(recording.pk))
    assert event.detail["clock_suspect"] == ClockSuspect.BEFORE_2000

    for days in (1, 8, 30):
        _sweep(timezone.now() + timedelta(days=days))
        assert _stored(recording), f"erased {days} days after it arrived"
    _sweep(recording.available_at + timedelta(days=31, minutes=1))
    recording.refresh_from_db()
    assert recording.state == RecordingState.DELETED


def test_a_start_two_days_ahead_of_the_server_is_accepted_as_suspect(tus, cam, small_clip):
    recording = _ingest(tus, cam, small_clip, started=timezone.now() + timedelta(days=2))
    assert recording.clock_suspect and recording.clock_suspect_reason == ClockSuspect.AHEAD
    assert recording.delete_after >= recording.available_at + timedelta(days=31)
    assert recording.officer is not None


def test_a_start_within_the_allowed_skew_is_trusted(tus, cam, small_clip):
    started = timezone.now().replace(microsecond=0) + timedelta(hours=12)
    recording = _ingest(tus, cam, small_clip, started=started)
    assert not recording.clock_suspect and recording.clock_suspect_reason == ""
    assert recording.delete_after == started + timedelta(days=31)


def test_a_start_before_the_camera_was_registered_is_suspect(tus, small_clip):
    cam = f.camera()  # registered just now
    holder = f.officer()
    camera_issue(camera=cam, officer=holder, actor=f.user(Role.BOROUGH_ADMIN))
    recording = _ingest(tus, cam, small_clip, started=timezone.now() - timedelta(days=10))
    assert recording.clock_suspect
    assert recording.clock_suspect_reason == ClockSuspect.BEFORE_REGISTRATION
    assert recording.officer == holder
    assert recording.delete_after >= recording.available_at + timedelta(days=31)


def test_a_clip_timed_from_its_file_is_suspect_however_plausible_the_time(tus, cam, small_clip):
    started = timezone.now() - timedelta(hours=3)
    recording = _ingest(tus, cam, small_clip, started=started, time_source="file")
    assert recording.clock_suspect_reason == ClockSuspect.FILE_TIME
    assert recording.delete_after >= recording.available_at + timedelta(days=31)


def test_an_unknown_time_source_is_refused_and_nothing_is_kept(tus, cam, small_clip):
    response = tus.create(len(small_clip), f.clip_metadata(cam, small_clip, time_source="sundial"))
    assert response.status_code == 400
    assert "'time_source' must be 'camera' or 'file'" in response.json()["detail"]
    assert not Recording.objects.exists()


# -- The minimum review window ----------------------------------------------------------------------


def test_a_clip_docked_late_is_kept_seven_days_after_it_arrives(tus, cam, small_clip):
    started = timezone.now().replace(microsecond=0) - timedelta(days=30)
    recording = _ingest(tus, cam, small_clip, started=started)
    assert not recording.clock_suspect
    # Its 31 days end tomorrow; nobody could have reviewed it by then.
    assert recording.delete_after == recording.available_at + timedelta(days=7)
    assert recording.review_window_extended

    _sweep(started + timedelta(days=31, hours=1))
    _sweep(recording.available_at + timedelta(days=6, hours=23))
    assert _stored(recording)
    _sweep(recording.available_at + timedelta(days=7, minutes=1))
    recording.refresh_from_db()
    assert recording.state == RecordingState.DELETED


def test_a_clip_docked_in_time_keeps_its_31_days_from_the_start(tus, cam, small_clip):
    started = timezone.now().replace(microsecond=0) - timedelta(days=3)
    recording = _ingest(tus, cam, small_clip, started=started)
    assert recording.delete_after == started + timedelta(days=31)
    assert not recording.review_window_extended


def test_a_review_window_of_zero_switches_it_off(tus, cam, small_clip, settings):
    settings.BWV_MIN_REVIEW_DAYS = 0
    started = timezone.now().replace(microsecond=0) - timedelta(days=30)
    recording = _ingest(tus, cam, small_clip, started=started)
    assert recording.delete_after == started + timedelta(days=31)
    assert not recording.review_window_extended


def test_a_longer_review_window_extends_even_a_suspect_clip(tus, cam, small_clip, settings):
    settings.BWV_MIN_REVIEW_DAYS = 45
    recording = _ingest(tus, cam, small_clip, started=FLAT_BATTERY)
    assert recording.delete_after == recording.available_at + timedelta(days=45)
    assert recording.clock_suspect and recording.review_window_extended


# -- Correcting the time ----------------------------------------------------------------------------


@pytest.fixture
def handed_over(db):
    """A camera held by A for 50 days, then by B for the last 10."""
    now = timezone.now()
    cam = f.camera()
    first, second = f.officer(), f.officer()
    admin = f.user(Role.BOROUGH_ADMIN)
    camera_issue(camera=cam, officer=first, actor=admin, at=now - timedelta(days=60))
    camera_return(camera=cam, actor=admin, at=now - timedelta(days=10))
    camera_issue(camera=cam, officer=second, actor=admin, at=now - timedelta(days=10))
    return cam, first, second, admin


def test_correcting_the_time_recomputes_attribution_and_retention_and_is_audited(
    tus, small_clip, handed_over
):
    cam, first, second, admin = handed_over
    recording = _ingest(tus, cam, small_clip, started=FLAT_BATTERY)
    assert recording.officer == second
    corrected = (timezone.now() - timedelta(days=20)).replace(microsecond=0)

    recording = recording_correct_time(
        recording=recording,
        started_at=corrected,
        actor=admin,
        reason="custody clock visible at 00:12 in the footage",
    )

    assert recording.started_at == corrected
    assert recording.ended_at == corrected + timedelta(seconds=2)  # moved by the same amount
    assert recording.officer == first  # who held the camera at the corrected start
    assert recording.delete_after == corrected + timedelta(days=31)
    assert not recording.clock_suspect and not recording.review_window_extended
    assert recording.clock_suspect_reason == ClockSuspect.BEFORE_2000  # what was wrong, kept
    assert recording.clock_corrected_at is not None
    event = AuditEvent.objects.get(action="recording.time_corrected", object_id=str(recording.pk))
    assert event.actor_label == admin.get_username()
    assert event.justification == "custody clock visible at 00:12 in the footage"
    detail = event.detail
    assert detail["before"]["started_at"] == FLAT_BATTERY.isoformat()
    assert detail["after"]["started_at"] == corrected.isoformat()
    assert detail["before"]["officer"] == second.collar_number
    assert detail["after"]["officer"] == first.collar_number


def test_a_correction_never_leaves_less_than_the_review_window_after_arrival(
    tus, small_clip, handed_over
):
    cam, _first, _second, admin = handed_over
    recording = _ingest(tus, cam, small_clip, started=FLAT_BATTERY)
    recording = recording_correct_time(
        recording=recording,
        actor=admin,
        reason="officer's notes",
        started_at=timezone.now() - timedelta(days=28),
    )
    assert recording.delete_after == recording.available_at + timedelta(days=7)
    assert recording.review_window_extended


def test_a_correction_never_shortens_the_retention_of_held_footage(tus, small_clip, handed_over):
    cam, _first, _second, admin = handed_over
    recording = _ingest(tus, cam, small_clip, started=FLAT_BATTERY)
    recording_flag(
        recording=recording,
        kind=FlagKind.EVIDENCE,
        actor=f.user(Role.CUSTODY_SERGEANT),
        crime_reference="5201234/26",
        reason="assault",
    )
    recording.refresh_from_db()
    before = recording.delete_after
    recording = recording_correct_time(
        recording=recording,
        actor=admin,
        reason="officer's notes",
        started_at=timezone.now() - timedelta(days=28),
    )
    assert recording.delete_after == before


@pytest.mark.parametrize(
    ("when", "message"),
    [
        ("in 1999", "before 2000"),
        ("before the camera existed", "was registered on"),
        ("ending after it arrived", "must have ended by then"),
    ],
)
def test_an_impossible_corrected_time_is_refused_and_changes_nothing(
    small_clip, handed_over, when, message
):
    cam, _first, _second, admin = handed_over
    recording = f.ingested_recording(cam=cam, data=small_clip, start=FLAT_BATTERY)
    started = {
        "in 1999": datetime(1999, 12, 31, 23, 0, tzinfo=UTC),
        "before the camera existed": timezone.now() - timedelta(days=61),
        "ending after it arrived": recording.available_at - timedelta(seconds=1),
    }[when]
    with pytest.raises(ClockCorrectionError, match=message):
        recording_correct_time(
            recording=recording, started_at=started, actor=admin, reason="a guess"
        )
    _assert_unchanged(recording)


@pytest.mark.parametrize(
    ("who", "reason"),
    [("sergeant", "the footage"), ("other borough", "the footage"), ("admin", "  ")],
)
def test_only_the_boroughs_admin_with_a_reason_may_correct(small_clip, handed_over, who, reason):
    cam, _first, _second, admin = handed_over
    recording = f.ingested_recording(cam=cam, data=small_clip, start=FLAT_BATTERY)
    actor = {
        "sergeant": f.user(Role.CUSTODY_SERGEANT),
        "other borough": f.user(Role.BOROUGH_ADMIN, borough_code="EK"),
        "admin": admin,
    }[who]
    with pytest.raises(ClockCorrectionError):
        recording_correct_time(
            recording=recording,
            actor=actor,
            reason=reason,
            started_at=timezone.now() - timedelta(days=2),
        )
    _assert_unchanged(recording)


def test_a_trusted_time_cannot_be_corrected(small_clip, handed_over):
    cam, _first, _second, admin = handed_over
    recording = f.ingested_recording(
        cam=cam, data=small_clip, start=timezone.now() - timedelta(hours=2)
    )
    with pytest.raises(ClockCorrectionError, match="only a recording whose camera clock"):
        recording_correct_time(
            recording=recording,
            actor=admin,
            reason="typo",
            started_at=timezone.now() - timedelta(days=2),
        )
    _assert_unchanged(recording)


def _assert_unchanged(recording: Recording) -> None:
    fresh = Recording.objects.get(pk=recording.pk)
    fields = ("started_at", "ended_at", "officer_id", "delete_after", "clock_suspect")
    assert [getattr(fresh, n) for n in fields] == [getattr(recording, n) for n in fields]
    assert not AuditEvent.objects.filter(action="recording.time_corrected").exists()


# -- Footage stored before the change ---------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_the_migration_protects_footage_already_stored():
    from django.db.migrations.executor import MigrationExecutor

    before, after = (
        ("evidence", "0008_access_request_workflow"),
        ("evidence", "0009_recording_clock_suspect"),
    )
    cam, _holder = f.issued_camera()
    now = timezone.now()
    executor = MigrationExecutor(connection)
    executor.migrate([before])
    try:
        Old = executor.loader.project_state([before]).apps.get_model("evidence", "Recording")

        def row(n: int, started: datetime, arrived: datetime, delete_after: datetime):
            return Old.objects.create(
                camera_id=cam.pk,
                borough_id=cam.borough_id,
                state="available",
                started_at=started,
                ended_at=started + timedelta(seconds=30),
                size_bytes=1,
                sha256=f"{n:064x}",
                storage_key=f"recordings/{n}/media",
                segment_size=1 << 20,
                kek_id="none",
                wrapped_key=b"",
                delete_after=delete_after,
                available_at=arrived,
            ).pk

        flat = row(1, FLAT_BATTERY, now - timedelta(days=1), FLAT_BATTERY + timedelta(days=31))
        late = row(2, now - timedelta(days=30), now - timedelta(hours=1), now + timedelta(days=1))
        usual = row(3, now - timedelta(days=2), now - timedelta(days=2), now + timedelta(days=29))
        executor = MigrationExecutor(connection)
        executor.migrate([after])
    finally:
        executor = MigrationExecutor(connection)
        executor.migrate(executor.loader.graph.leaf_nodes())

    flat, late, usual = (Recording.objects.get(pk=pk) for pk in (flat, late, usual))
    assert flat.clock_suspect and flat.clock_suspect_reason == ClockSuspect.BEFORE_2000
    assert flat.delete_after == now - timedelta(days=1) + timedelta(days=31)
    assert not late.clock_suspect and late.review_window_extended
    assert late.delete_after == now - timedelta(hours=1) + timedelta(days=7)
    assert not usual.clock_suspect and not usual.review_window_extended
    assert usual.delete_after == now + timedelta(days=29)


def test_the_review_api_says_when_a_clock_is_suspect(tus, cam, small_clip):
    recording = _ingest(tus, cam, small_clip, started=FLAT_BATTERY)
    api = APIClient()
    f.sign_in(api, f.user(Role.CUSTODY_SERGEANT))
    data = api.get(f"/api/v1/recordings/{recording.pk}/").json()
    assert data["clock_suspect"] is True
    assert data["clock_suspect_reason"] == ClockSuspect.BEFORE_2000
    assert data["review_window_extended"] is False
