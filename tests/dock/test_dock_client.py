"""The dock client against a live server: killed at random points, it resumes and wipes only at the end."""

import hashlib
import json
import os
import random
import signal
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path

import pytest
from django.utils import timezone

from evidence.media import plaintext_range
from evidence.models import IngestUpload, Recording, RecordingState
from tests import factories as f
from tests.webserver import Gunicorn, TcpRelay, database_url

ROOT = Path(__file__).resolve().parents[2]
MiB = 1024 * 1024


def _command(server: str, camera: str, folder: Path) -> list[str]:
    return [
        sys.executable,
        "-m",
        "bwv_dock",
        "--server",
        server,
        "--camera",
        camera,
        "--chunk-mib",
        "1",
        "--retry-delay",
        "0.3",
        "--no-progress",
        str(folder),
    ]


def _write_clip(folder: Path, name: str, data: bytes) -> Path:
    start = timezone.now().replace(microsecond=0) - timedelta(hours=3)
    clip = folder / name
    clip.write_bytes(data)
    clip.with_suffix(".json").write_text(
        json.dumps({"start": start.isoformat(), "end": (start + timedelta(seconds=10)).isoformat()})
    )
    return clip


def _committed_offset() -> int:
    upload = IngestUpload.objects.order_by("-created_at").first()
    return upload.offset if upload else 0


@pytest.mark.django_db(transaction=True)
def test_a_dock_killed_at_random_points_resumes_and_wipes_the_clip_only_at_the_end(
    live_server, tmp_path, big_clip
):
    cam, _officer = f.issued_camera()
    _dock, key = f.dock()
    folder = tmp_path / "camera"
    folder.mkdir()
    clip = _write_clip(folder, "CLIP0001.MP4", big_clip)
    env = {**os.environ, "BWV_DOCK_KEY": key}
    command = _command(live_server.url, cam.serial, folder)

    rng = random.Random(20261124)
    targets = sorted(rng.uniform(0.05, 0.95) * len(big_clip) for _ in range(4))
    seen = []
    for target in targets:
        proc = subprocess.Popen(
            command, env=env, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        deadline = time.monotonic() + 60
        while _committed_offset() < target and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.01)
        assert proc.poll() is None, "the client finished before it could be killed"
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        seen.append(_committed_offset())
        assert clip.exists(), "a clip must stay on the camera until the server verified it"
        assert not Recording.objects.filter(state=RecordingState.AVAILABLE).exists()

    assert seen == sorted(seen) and seen[-1] < len(big_clip)
    done = subprocess.run(command, env=env, cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "resuming at" in done.stderr
    assert not clip.exists() and not clip.with_suffix(".json").exists()

    # One upload resumed throughout (never restarted), one recording, the right bytes.
    assert IngestUpload.objects.count() == 1
    recording = Recording.objects.get()
    assert recording.state == RecordingState.AVAILABLE
    assert recording.sha256 == hashlib.sha256(big_clip).hexdigest()
    assert (
        hashlib.sha256(b"".join(plaintext_range(recording, 0, recording.size_bytes))).hexdigest()
        == recording.sha256
    )


@pytest.mark.django_db(transaction=True)
def test_several_docks_at_once_and_a_rejected_clip_is_kept(live_server, tmp_path, small_clip):
    _dock, key = f.dock()
    env = {**os.environ, "BWV_DOCK_KEY": key}
    procs, folders = [], []
    for i in range(3):
        cam, _ = f.issued_camera()
        folder = tmp_path / f"cam{i}"
        folder.mkdir()
        _write_clip(folder, "A.MP4", small_clip)
        _write_clip(folder, "B.MP4", b"not a video, whatever its name says\n" * 2000)
        folders.append(folder)
        procs.append(
            subprocess.Popen(
                _command(live_server.url, cam.serial, folder),
                env=env,
                cwd=ROOT,
                stderr=subprocess.PIPE,
                text=True,
            )
        )
    results = [(p.wait(timeout=120), p.stderr.read()) for p in procs]
    for (code, log), folder in zip(results, folders, strict=True):
        # A.MP4 is a real clip: verified and wiped. B.MP4 is not a video: rejected and kept.
        assert code == 1, log
        assert not (folder / "A.MP4").exists()
        assert (folder / "B.MP4").exists()
        assert "B.MP4: NOT uploaded, kept on the camera" in log
    assert Recording.objects.filter(state=RecordingState.AVAILABLE).count() == 3


def _wait_for(condition, what: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.02)


def _assert_verified(big_clip: bytes) -> None:
    # One upload resumed throughout (never restarted), one recording, the right bytes.
    assert IngestUpload.objects.count() == 1
    recording = Recording.objects.get()
    assert recording.state == RecordingState.AVAILABLE
    assert (
        hashlib.sha256(b"".join(plaintext_range(recording, 0, recording.size_bytes))).hexdigest()
        == hashlib.sha256(big_clip).hexdigest()
    )


@pytest.mark.django_db(transaction=True)
def test_the_dock_rides_out_a_database_outage_and_a_web_server_restart(tmp_path, big_clip):
    """A real gunicorn reaches the test database through a relay. The database is down when the
    dock starts (503s), drops every connection mid-upload, then the web server is killed with
    SIGKILL and started again: the dock keeps retrying with backoff, resumes the same upload, and
    removes the clip only once the server has verified it."""
    from django.db import connection

    cam, _officer = f.issued_camera()
    _dock, key = f.dock()
    folder = tmp_path / "camera"
    folder.mkdir()
    clip = _write_clip(folder, "CLIP0001.MP4", big_clip)
    relay = TcpRelay(int(connection.settings_dict["PORT"]))
    relay.down()
    server = Gunicorn(
        database_url=database_url(connection.settings_dict, port=relay.port),
        log=tmp_path / "gunicorn.log",
    ).start()
    command = [*_command(server.url, cam.serial, folder), "--retry-minutes", "2"]
    command += ["--retry-max-delay", "1"]
    log = tmp_path / "dock.log"
    with open(log, "w") as out:
        dock = subprocess.Popen(
            command,
            env={**os.environ, "BWV_DOCK_KEY": key},
            cwd=ROOT,
            stdout=subprocess.DEVNULL,
            stderr=out,
        )
    try:
        # The database is down: every request is a 503 and the dock keeps trying.
        _wait_for(
            lambda: server.access_log().count('" 503 ') >= 3, "503s while the database is down"
        )
        assert not IngestUpload.objects.exists()
        relay.up()

        # The database drops every connection while the dock is uploading.
        _wait_for(lambda: _committed_offset() >= 2 * MiB, "the upload to start")
        dock.send_signal(signal.SIGSTOP)
        relay.down()
        relay.up()
        dock.send_signal(signal.SIGCONT)

        # The web server is killed mid-upload and started again.
        blip = _committed_offset()
        _wait_for(lambda: _committed_offset() >= blip + 2 * MiB, "the upload to go on")
        dock.send_signal(signal.SIGSTOP)
        assert _committed_offset() < len(big_clip), "the upload finished before the restart"
        server.kill()
        dock.send_signal(signal.SIGCONT)
        time.sleep(1)  # the dock meets a server that is not there, and waits
        restarted = time.monotonic()
        server.start()
        assert dock.wait(timeout=120) == 0, log.read_text()
        # Well within the two minutes a dead writer used to hold the upload for.
        assert time.monotonic() - restarted < 60
    finally:
        dock.kill()
        server.kill()
        relay.close()

    assert not clip.exists() and not clip.with_suffix(".json").exists()
    assert "retrying" in log.read_text()
    _assert_verified(big_clip)


@pytest.mark.django_db(transaction=True)
def test_a_state_file_of_an_older_version_with_whole_urls_still_resumes(
    live_server, tmp_path, big_clip
):
    """Older clients stored each upload's whole URL. The server is reached at another address now:
    the upload is found from its id and the --server setting, and resumed."""
    import io

    from bwv_dock import STATE_FILE

    from evidence.ingest import upload_append, upload_create

    cam, _officer = f.issued_camera()
    dock, key = f.dock()
    folder = tmp_path / "camera"
    folder.mkdir()
    clip = _write_clip(folder, "CLIP0001.MP4", big_clip)
    sha = hashlib.sha256(big_clip).hexdigest()
    upload = upload_create(dock=dock, length=len(big_clip), metadata=f.clip_metadata(cam, big_clip))
    first = big_clip[: 9 * MiB]
    upload_append(
        upload_id=upload.id, dock=dock, offset=0, body=io.BytesIO(first), content_length=len(first)
    )
    # Nothing listens on port 9 of this machine: the old address is gone.
    old_url = f"http://127.0.0.1:9/api/v1/ingest/{upload.id}"
    (folder / STATE_FILE).write_text(json.dumps({f"{cam.serial}:{sha}": old_url}))

    done = subprocess.run(
        _command(live_server.url, cam.serial, folder),
        env={**os.environ, "BWV_DOCK_KEY": key},
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert f"resuming at {9 * MiB} of {len(big_clip)} bytes" in done.stderr
    assert not clip.exists()
    _assert_verified(big_clip)
    assert json.loads((folder / STATE_FILE).read_text()) == {}


def _bytes_read(command: list[str], env: dict) -> int:
    """Run the dock client and return how many bytes it read (its /proc rchar at the end)."""
    probe = (
        "import sys, bwv_dock\n"
        "code = bwv_dock.main(sys.argv[1:])\n"
        "rchar = next(l for l in open('/proc/self/io') if l.startswith('rchar:'))\n"
        "print(rchar.split()[1], file=sys.stdout)\n"
        "sys.exit(code)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe, *command[3:]],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    return int(done.stdout.split()[-1])


@pytest.mark.django_db(transaction=True)
def test_the_dock_reads_a_clip_once_hashing_it_as_it_sends_it(live_server, tmp_path, big_clip):
    """The clip is not read whole to hash it before it is sent: each byte is read about once
    (the last PATCH's megabyte twice), and the server still verifies the clip's SHA-256."""
    cam, _officer = f.issued_camera()
    _dock, key = f.dock()
    env = {**os.environ, "BWV_DOCK_KEY": key}
    empty = tmp_path / "empty"
    empty.mkdir()
    # What the client reads whatever it sends (its own modules, the server's answers).
    overhead = _bytes_read(_command(live_server.url, cam.serial, empty), env)
    folder = tmp_path / "camera"
    folder.mkdir()
    clip = _write_clip(folder, "CLIP0001.MP4", big_clip)
    read = _bytes_read(_command(live_server.url, cam.serial, folder), env) - overhead
    assert not clip.exists()
    assert len(big_clip) <= read < len(big_clip) + 4 * MiB, read / len(big_clip)
    recording = Recording.objects.get()
    assert recording.state == RecordingState.AVAILABLE
    assert recording.sha256 == hashlib.sha256(big_clip).hexdigest()
    assert IngestUpload.objects.get().declared_sha256 == recording.sha256
