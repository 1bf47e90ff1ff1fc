"""The real dock client with clips whose camera clock was wrong or never set, against a live server.

A flat clock battery makes a camera stamp its clips 1970-01-01, or write no time at all. Both must
be uploaded (a clip that stays on the camera is lost with it), kept from their arrival, attributed
to whoever holds the camera, and survive the sweeps that follow.
"""

import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from django.utils import timezone

from blobstore import blob_store
from evidence.models import ClockSuspect, IngestUpload, Recording, RecordingState
from evidence.sample_media import make_clip
from retention.sweep import sweep_expired_recordings
from tests import factories as f

ROOT = Path(__file__).resolve().parents[2]


def _dock(server: str, camera: str, folder: Path, key: str) -> subprocess.CompletedProcess:
    command = [
        sys.executable,
        "-m",
        "bwv_dock",
        "--server",
        server,
        "--camera",
        camera,
        "--retry-delay",
        "0.3",
        "--no-progress",
        str(folder),
    ]
    env = {**os.environ, "BWV_DOCK_KEY": key}
    return subprocess.run(command, env=env, cwd=ROOT, capture_output=True, text=True, timeout=120)


@pytest.mark.django_db(transaction=True)
def test_clips_from_a_flat_clock_battery_are_uploaded_kept_from_arrival_and_survive_the_sweep(
    live_server, tmp_path
):
    cam, holder = f.issued_camera()
    _dock_obj, key = f.dock()
    folder = tmp_path / "camera"
    folder.mkdir()
    reset = folder / "CLIP0001.MP4"
    make_clip(reset, seconds=2, tone_hz=300, created=datetime(1970, 1, 1, 0, 0, 5, tzinfo=UTC))
    untimed = folder / "CLIP0002.MP4"
    make_clip(untimed, seconds=2, tone_hz=500, created=None)
    written = timezone.now().replace(microsecond=0) - timedelta(hours=2)
    os.utime(untimed, (written.timestamp(), written.timestamp()))

    done = _dock(live_server.url, cam.serial, folder, key)

    assert done.returncode == 0, done.stderr
    assert not reset.exists() and not untimed.exists(), "verified clips leave the camera"
    recordings = {r.original_filename: r for r in Recording.objects.select_related("officer")}
    assert set(recordings) == {"CLIP0001.MP4", "CLIP0002.MP4"}
    assert recordings["CLIP0001.MP4"].clock_suspect_reason == ClockSuspect.BEFORE_2000
    assert recordings["CLIP0002.MP4"].clock_suspect_reason == ClockSuspect.FILE_TIME
    # The file's time is taken as the end of the clip (the camera's last write).
    untimed_recording = recordings["CLIP0002.MP4"]
    assert abs(untimed_recording.ended_at - written) < timedelta(seconds=1)
    assert timedelta(seconds=1) < untimed_recording.ended_at - untimed_recording.started_at
    upload = IngestUpload.objects.get(recording_ref=untimed_recording.pk)
    assert upload.metadata["time_source"] == "file"
    for recording in recordings.values():
        assert recording.clock_suspect and recording.state == RecordingState.AVAILABLE
        assert recording.officer == holder
        assert recording.delete_after >= recording.available_at + timedelta(days=31)

    sweep_expired_recordings(now=timezone.now() + timedelta(days=8), override_reason="test")
    for recording in recordings.values():
        recording.refresh_from_db()
        assert recording.state == RecordingState.AVAILABLE
        assert blob_store().size(recording.storage_key) is not None
