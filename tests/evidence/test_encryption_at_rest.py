"""Encryption at rest, checked on the objects actually stored in the real S3 bucket."""

import random

import pytest
from django.test import override_settings

from blobstore import blob_store
from evidence.crypto import OVERHEAD, KeyDestroyed, TamperedError
from evidence.media import plaintext_range
from evidence.models import Recording
from tests import factories as f

pytestmark = pytest.mark.django_db
MiB = 1024 * 1024


@pytest.fixture
def recording(big_clip):
    return f.ingested_recording(data=big_clip)


def _read_all(recording) -> bytes:
    return b"".join(plaintext_range(recording, 0, recording.size_bytes))


def _rewrite(recording, transform) -> None:
    store = blob_store()
    store.put(recording.storage_key, transform(store.get(recording.storage_key)))


def test_the_stored_object_holds_no_plaintext_of_the_clip(recording, big_clip):
    stored = blob_store().get(recording.storage_key)
    segments = -(-len(big_clip) // MiB)
    assert len(stored) == len(big_clip) + segments * OVERHEAD
    rng = random.Random(7)
    for _ in range(200):
        start = rng.randrange(0, len(big_clip) - 32)
        assert big_clip[start : start + 32] not in stored
    # Not even the MP4 header, the most recognisable bytes of a clip.
    assert b"ftyp" not in stored[:4096]
    poster = blob_store().get(recording.poster_key)
    assert b"JFIF" not in poster and b"\xff\xd8\xff" not in poster[:16]


def test_any_byte_range_reads_back_exactly(recording, big_clip):
    rng = random.Random(11)
    ranges = [(0, 1), (MiB - 1, MiB + 1), (len(big_clip) - 5, len(big_clip)), (0, len(big_clip))]
    ranges += [sorted(rng.sample(range(len(big_clip) + 1), 2)) for _ in range(20)]
    for start, end in ranges:
        assert b"".join(plaintext_range(recording, start, end)) == big_clip[start:end]


def test_one_flipped_byte_fails_loudly_and_returns_nothing_altered(recording):
    position = 3 * MiB + 1234

    def flip(data: bytes) -> bytes:
        return data[:position] + bytes([data[position] ^ 0x01]) + data[position + 1 :]

    _rewrite(recording, flip)
    segment = position // (MiB + OVERHEAD)
    with pytest.raises(TamperedError, match=f"segment {segment}"):
        _read_all(recording)
    # Segments before the damaged one still read; the damaged one never yields a byte.
    assert len(b"".join(plaintext_range(recording, 0, segment * MiB))) == segment * MiB
    with pytest.raises(TamperedError):
        b"".join(plaintext_range(recording, segment * MiB, segment * MiB + 10))


def test_swapped_segments_fail(recording):
    size = MiB + OVERHEAD

    def swap(data: bytes) -> bytes:
        a, b = data[0:size], data[size : 2 * size]
        return b + a + data[2 * size :]

    _rewrite(recording, swap)
    with pytest.raises(TamperedError):
        b"".join(plaintext_range(recording, 0, 10))


def test_a_cut_off_tail_fails_even_on_a_segment_boundary(recording):
    size = MiB + OVERHEAD
    # Drop the last segment entirely: the new last one was not sealed as "last".
    full_segments = recording.size_bytes // MiB
    _rewrite(recording, lambda data: data[: full_segments * size])
    with pytest.raises(TamperedError):
        _read_all(recording)


def test_segments_moved_to_another_recording_fail(big_clip):
    first = f.ingested_recording(data=big_clip)
    second = f.ingested_recording(data=big_clip[:-1000] + b"\x00" * 1000)
    store = blob_store()
    store.put(second.storage_key, store.get(first.storage_key))
    with pytest.raises(TamperedError):
        b"".join(plaintext_range(second, 0, 10))


def test_recordings_still_read_after_the_key_encryption_key_rotates(recording, big_clip, settings):
    old_current = settings.BWV_KEK_CURRENT
    rotated = {"fresh": b"\x07" * 32, **settings.BWV_KEKS}
    with override_settings(BWV_KEKS=rotated, BWV_KEK_CURRENT="fresh"):
        assert _read_all(Recording.objects.get(pk=recording.pk)) == big_clip
        newer = f.ingested_recording()
        assert newer.kek_id == "fresh"
    assert recording.kek_id == old_current


def test_a_destroyed_data_key_makes_the_footage_unreadable(recording):
    Recording.objects.filter(pk=recording.pk).update(wrapped_key=None)
    recording.refresh_from_db()
    with pytest.raises(KeyDestroyed):
        _read_all(recording)


def test_a_wrapped_key_copied_to_another_recording_does_not_unwrap(big_clip):
    first = f.ingested_recording(data=big_clip)
    second = f.ingested_recording()
    Recording.objects.filter(pk=second.pk).update(wrapped_key=first.wrapped_key)
    second.refresh_from_db()
    with pytest.raises(TamperedError, match="does not unwrap"):
        _read_all(second)
