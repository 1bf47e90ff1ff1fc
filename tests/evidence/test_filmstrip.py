"""The filmstrip: made after ingest from the real clip, sealed like the poster, made once, never
left behind by a recording deleted while it was being made."""

import json

import av
import numpy as np
import pytest
import redis
from django.conf import settings
from django.core.management import call_command

from blobstore import blob_store
from bwv.celery import app
from custody.models import AuditEvent
from evidence import filmstrip as filmstrip_module
from evidence.filmstrip import filmstrip_key, recording_filmstrip_make
from evidence.ingest import FILMSTRIP_TASK
from evidence.media import recording_cipher, recording_filmstrip
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
    assert recording_filmstrip_make(recording_id=recording.pk) == "made"
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
    assert recording_filmstrip_make(recording_id=done.pk) == "made"
    done.refresh_from_db()
    before = blob_store().get(done.filmstrip_key)
    call_command("make_missing_filmstrips", "--now")
    old.refresh_from_db()
    assert old.filmstrip["count"] == 5 and blob_store().size(old.filmstrip_key)
    assert blob_store().get(done.filmstrip_key) == before
    assert _made(done).count() == 1 and _made(old).count() == 1


def _queued_for(recording_id) -> list[str]:
    """The tasks waiting in the real broker's default queue for this recording."""
    messages = redis.Redis.from_url(settings.REDIS_URL).lrange("celery", 0, -1)
    headers = [json.loads(m)["headers"] for m in messages]
    return [h["task"] for h in headers if str(recording_id) in h.get("argsrepr", "")]


def test_ingest_queues_the_filmstrip_once_the_recording_is_stored(
    nine_second_clip, django_capture_on_commit_callbacks
):
    app.loader.import_default_modules()
    assert FILMSTRIP_TASK in app.tasks  # queued by name: the name must be the task's
    with django_capture_on_commit_callbacks(execute=True):
        recording = f.ingested_recording(data=nine_second_clip)
    assert _queued_for(recording.pk) == [FILMSTRIP_TASK]


def test_the_clip_is_read_one_sealed_segment_at_a_time_never_whole(big_clip, monkeypatch):
    recording = f.ingested_recording(data=big_clip)
    store = blob_store()  # the process's one store, which the filmstrip reads through
    sealed = recording_cipher(recording).sealed_size
    spans, whole = [], []
    read_range, get = store.read_range, store.get

    # A spy, not a fake: each call goes on to the real S3 server, and is only noted.
    def noting_range(key, start, end, **kwargs):
        spans.append((key, end - start))
        return read_range(key, start, end, **kwargs)

    def noting_get(key):
        whole.append(key)
        return get(key)

    monkeypatch.setattr(store, "read_range", noting_range)
    monkeypatch.setattr(store, "get", noting_get)
    assert recording_filmstrip_make(recording_id=recording.pk) == "made"
    assert recording.storage_key not in whole
    assert spans and all(key == recording.storage_key for key, _ in spans)
    assert max(size for _, size in spans) <= sealed < recording.size_bytes / 2
