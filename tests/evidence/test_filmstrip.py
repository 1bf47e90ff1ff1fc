"""The filmstrip: made after ingest from the real clip, sealed like the poster, made once, never
left behind by a recording deleted while it was being made."""

import av
import numpy as np
import pytest
from django.core.management import call_command

from blobstore import blob_store
from custody.models import AuditEvent
from evidence import filmstrip as filmstrip_module
from evidence.filmstrip import filmstrip_key, recording_filmstrip_make
from evidence.media import recording_filmstrip
from evidence.models import Recording, RecordingState
from evidence.sample_media import make_clip
from evidence.tasks import recording_filmstrip_make_task
from tests import factories as f

pytestmark = pytest.mark.django_db


@pytest.fixture(scope="module")
def nine_second_clip() -> bytes:
    return make_clip(seconds=9)


@pytest.fixture
def recording(nine_second_clip):
    return f.ingested_recording(data=nine_second_clip)


def _tiles(jpeg: bytes, layout: dict) -> list[np.ndarray]:
    frame = next(iter(av.CodecContext.create("mjpeg", "r").decode(av.Packet(jpeg))))
    picture = frame.to_ndarray(format="rgb24")
    w, h, columns = layout["width"], layout["height"], layout["columns"]
    assert picture.shape[1] == columns * w
    assert picture.shape[0] == -(-layout["count"] // columns) * h
    return [
        picture[
            (i // columns) * h : (i // columns + 1) * h, (i % columns) * w : (i % columns + 1) * w
        ]
        for i in range(layout["count"])
    ]


def _made(recording):
    return AuditEvent.objects.filter(action="recording.filmstrip_made", object_id=str(recording.pk))


def test_the_task_makes_a_sealed_filmstrip_of_a_frame_every_two_seconds(recording):
    assert recording.filmstrip_key == ""  # ingest leaves it to the task
    assert recording_filmstrip_make_task(str(recording.pk)) == "made"
    recording.refresh_from_db()
    assert recording.filmstrip_key == filmstrip_key(recording.pk)
    layout = recording.filmstrip
    # A 9-second clip: frames at 0, 2, 4, 6 and 8 seconds, 160 pixels wide, 4:3 like the clip.
    assert layout == {"interval": 2.0, "count": 5, "columns": 5, "width": 160, "height": 120}
    sealed = blob_store().get(recording.filmstrip_key)
    assert b"\xff\xd8\xff" not in sealed[:32] and b"JFIF" not in sealed  # encrypted at rest
    tiles = _tiles(recording_filmstrip(recording), layout)
    # The test pattern moves with time: each frame differs from the next, none is blank.
    for earlier, later in zip(tiles, tiles[1:], strict=False):
        assert np.abs(earlier.astype(int) - later.astype(int)).mean() > 5
    assert all(tile.std() > 10 for tile in tiles)
    event = _made(recording).get()
    assert event.actor_label == "system:filmstrip" and event.detail["count"] == 5


def test_running_the_task_again_leaves_the_filmstrip_as_it_is(recording):
    recording_filmstrip_make(recording_id=recording.pk)
    recording.refresh_from_db()
    first = blob_store().get(recording.filmstrip_key)
    assert recording_filmstrip_make_task(str(recording.pk)) == "exists"
    assert blob_store().get(recording.filmstrip_key) == first
    assert _made(recording).count() == 1


def test_a_recording_already_deleted_gets_no_filmstrip(recording):
    Recording.objects.filter(pk=recording.pk).update(state=RecordingState.DELETED)
    assert recording_filmstrip_make(recording_id=recording.pk) == "gone"
    assert blob_store().size(filmstrip_key(recording.pk)) is None
    assert not _made(recording).exists()


def test_a_recording_the_sweep_claims_while_its_filmstrip_is_made_keeps_no_object(
    recording, monkeypatch
):
    real = filmstrip_module.filmstrip_make

    def claimed_meanwhile(rec, **kwargs):
        made = real(rec, **kwargs)
        # Fault injection: the sweep claims the recording in the moment between the frames
        # being read and the filmstrip being stored, which no real run can be made to hit.
        Recording.objects.filter(pk=rec.pk).update(state=RecordingState.DELETING)
        return made

    monkeypatch.setattr(filmstrip_module, "filmstrip_make", claimed_meanwhile)
    assert recording_filmstrip_make(recording_id=recording.pk) == "gone"
    recording.refresh_from_db()
    assert recording.filmstrip_key == ""
    assert blob_store().size(filmstrip_key(recording.pk)) is None
    assert not _made(recording).exists()


def test_the_command_makes_the_missing_filmstrips_and_leaves_the_others(nine_second_clip):
    old = f.ingested_recording(data=nine_second_clip)
    done = f.ingested_recording()
    recording_filmstrip_make(recording_id=done.pk)
    done.refresh_from_db()
    before = blob_store().get(done.filmstrip_key)
    call_command("make_missing_filmstrips", "--now")
    old.refresh_from_db()
    assert old.filmstrip["count"] == 5 and blob_store().size(old.filmstrip_key)
    assert blob_store().get(done.filmstrip_key) == before
    assert _made(done).count() == 1 and _made(old).count() == 1
