"""A still of one frame, for a witness statement: the frame asked for, as a PNG, audited; in
scope and after the purpose was given only; bad times refused without an audit event."""

import io

import av
import numpy as np
import pytest

from common.roles import Role
from custody.models import AuditEvent
from evidence.sample_media import make_clip
from tests import factories as f

pytestmark = pytest.mark.django_db

FPS = 25


@pytest.fixture(scope="module")
def clip():
    return make_clip(seconds=3, width=320, height=240, fps=FPS)


@pytest.fixture
def recording(clip):
    cam, _officer = f.issued_camera(borough_code="QA")
    return f.ingested_recording(cam=cam, data=clip)


def _open(client, recording):
    assert (
        client.post(f"/recordings/{recording.pk}/", {"purpose": "5201234/26 statement"}).status_code
        == 302
    )


def _still(client, recording, at):
    return client.post(f"/recordings/{recording.pk}/still", {"at_seconds": at})


def _frame(data: bytes, index: int) -> np.ndarray:
    with av.open(io.BytesIO(data)) as container:
        for i, frame in enumerate(container.decode(video=0)):
            if i == index:
                return frame.to_ndarray(format="rgb24")
    raise AssertionError("no such frame")


def _png(data: bytes) -> np.ndarray:
    with av.open(io.BytesIO(data), format="png_pipe") as container:
        return next(container.decode(video=0)).to_ndarray(format="rgb24")


@pytest.mark.parametrize(
    "role, borough, expected",
    [
        (Role.CUSTODY_SERGEANT, "QA", 200),
        (Role.DISCLOSURE_OFFICER, "QA", 200),
        (Role.CUSTODY_SERGEANT, "EK", 404),  # another borough: as if it did not exist
        (Role.OFFICER, "QA", 404),  # not their own footage
    ],
)
def test_who_may_take_a_still(client, recording, role, borough, expected):
    f.signed_in(client, role, borough)
    if expected == 200:
        # In scope, but the footage stays shut until the purpose is given.
        assert _still(client, recording, "1.0").status_code == 403
        _open(client, recording)
    assert _still(client, recording, "1.0").status_code == expected
    assert AuditEvent.objects.filter(action="recording.still_taken").count() == (
        1 if expected == 200 else 0
    )


def test_anonymous_is_sent_to_sign_in(client, recording):
    response = _still(client, recording, "1.0")
    assert response.status_code == 302 and response["Location"].startswith("/accounts/login/")


def test_the_still_is_the_frame_shown_at_that_time_and_is_audited(client, recording, clip):
    user = f.signed_in(client, Role.CUSTODY_SERGEANT)
    _open(client, recording)
    # At 25 fps frame 37 is shown from 1.48 s to 1.52 s: 1.5 s and 1.519 s are inside it.
    for at in ("1.5", "1.519"):
        response = _still(client, recording, at)
        assert response.status_code == 200 and response["Content-Type"] == "image/png"
        assert response["Content-Disposition"].startswith("attachment;")
        assert np.array_equal(_png(response.content), _frame(clip, 37))
    event = AuditEvent.objects.filter(action="recording.still_taken").latest("seq")
    assert event.actor_user_id == user.pk and event.object_id == str(recording.pk)
    assert event.detail["at_seconds"] == 1.519 and event.detail["frame_seconds"] == 1.48
    assert len(event.detail["sha256"]) == 64
    # The next frame starts at 1.52 s.
    assert np.array_equal(_png(_still(client, recording, "1.52").content), _frame(clip, 38))


@pytest.mark.parametrize("at", ["", "soon", "-1", "nan", "inf", "9999"])
def test_a_time_outside_the_recording_is_refused_and_not_audited(client, recording, at):
    f.signed_in(client, Role.CUSTODY_SERGEANT)
    _open(client, recording)
    response = _still(client, recording, at)
    assert response.status_code == 400
    assert not AuditEvent.objects.filter(action="recording.still_taken").exists()


def test_a_still_is_only_made_by_a_post(client, recording):
    f.signed_in(client, Role.CUSTODY_SERGEANT)
    _open(client, recording)
    assert client.get(f"/recordings/{recording.pk}/still?at_seconds=1").status_code == 405
