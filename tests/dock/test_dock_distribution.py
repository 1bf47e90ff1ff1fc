"""The dock client is its own small distribution: installed alone into an empty virtual
environment (tuspy, requests and tqdm; no Django, OpenCV or PyAV), it uploads a real clip to a
live server, which verifies it, and the clip leaves the camera."""

import os
import subprocess
import venv
from datetime import UTC, datetime
from pathlib import Path

import pytest

from evidence.models import Recording, RecordingState
from evidence.sample_media import make_clip
from tests import factories as f

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def dock_venv(tmp_path_factory) -> Path:
    home = tmp_path_factory.mktemp("dock-venv")
    venv.create(home, with_pip=True, clear=True)
    python = home / "bin" / "python"
    install = subprocess.run(
        [python, "-m", "pip", "install", "--quiet", "--disable-pip-version-check", ROOT / "dock"],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert install.returncode == 0, install.stderr
    return home


def test_it_installs_with_its_three_dependencies_and_nothing_of_the_server(dock_venv):
    listed = subprocess.run(
        [dock_venv / "bin" / "python", "-m", "pip", "list", "--format=freeze"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.lower()
    names = {line.split("==")[0] for line in listed.split()}
    assert {"bwv-dock", "tuspy", "requests", "tqdm"} <= names
    assert not names & {"django", "av", "opencv-python-headless", "numpy", "bwv"}, names


@pytest.mark.django_db(transaction=True)
def test_the_installed_client_uploads_a_real_clip_and_removes_it_once_verified(
    dock_venv, live_server, tmp_path
):
    cam, officer = f.issued_camera()
    _dock, key = f.dock()
    folder = tmp_path / "camera"
    folder.mkdir()
    created = datetime.now(UTC).replace(microsecond=0)
    clip = folder / "CLIP0042.MP4"
    data = make_clip(clip, seconds=2, created=created)
    run = subprocess.run(
        [
            dock_venv / "bin" / "bwv-dock",
            "--server",
            live_server.url,
            "--camera",
            cam.serial,
            "--no-progress",
            str(folder),
        ],
        # Nothing of this project on the path: only what the virtual environment holds.
        env={"PATH": os.environ["PATH"], "HOME": str(tmp_path), "BWV_DOCK_KEY": key},
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert run.returncode == 0, run.stderr
    assert not clip.exists()
    recording = Recording.objects.get(camera=cam)
    assert recording.state == RecordingState.AVAILABLE and recording.size_bytes == len(data)
    # The clip's own time, read from its MP4 header without any media library.
    assert recording.started_at == created and not recording.clock_suspect
    assert recording.officer == officer
