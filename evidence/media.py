"""Reading a recording's plaintext: any byte range, decrypting only the segments it covers.

The same reads serve any object sealed in a recording's layout (a requester's identity evidence):
what they need of it is `SealedObject`."""

from __future__ import annotations

import io
import uuid
from collections.abc import Iterator
from typing import Protocol

from blobstore import blob_store
from evidence.crypto import SegmentCipher, TamperedError, open_blob, unwrap_data_key
from evidence.models import Recording


class SealedObject(Protocol):
    """A stored object sealed in segments under its own wrapped data key."""

    id: uuid.UUID
    storage_key: str
    size_bytes: int
    segment_size: int
    kek_id: str
    wrapped_key: bytes | None


def recording_cipher(recording: SealedObject) -> SegmentCipher:
    key = unwrap_data_key(recording.wrapped_key, kek_id=recording.kek_id, object_id=recording.id)
    return SegmentCipher(key=key, object_id=recording.id, segment_size=recording.segment_size)


def plaintext_range(
    recording: SealedObject, start: int, end: int, *, cipher: SegmentCipher | None = None
) -> Iterator[bytes]:
    """Yield the plaintext bytes [start, end) of a recording.

    Raises `crypto.TamperedError` as soon as a segment fails authentication: altered bytes are
    never returned. Memory use is one segment, whatever the range.
    """
    length = recording.size_bytes
    start, end = max(0, start), min(end, length)
    if start >= end:
        return
    cipher = cipher or recording_cipher(recording)
    seg = cipher.segment_size
    sealed = cipher.sealed_size
    first, last = start // seg, (end - 1) // seg
    final_index = cipher.segment_count(length) - 1
    span_start, span_end = cipher.sealed_span(first, last, length)
    buf = bytearray()
    index = first
    # Chunks of exactly one sealed segment: a segment is opened (and its plaintext sent) as soon as
    # its last byte is in, without waiting for the bytes of the next one to fill a larger read.
    chunks = blob_store().read_range(recording.storage_key, span_start, span_end, chunk_size=sealed)
    for chunk in chunks:
        buf += chunk
        while index <= last:
            need = sealed if index < final_index else (length - index * seg) + (sealed - seg)
            if len(buf) < need:
                break
            plain = cipher.open(index, bytes(buf[:need]), last=index == final_index)
            del buf[:need]
            lo = start - index * seg if index == first else 0
            hi = end - index * seg if index == last else len(plain)
            yield plain[lo:hi]
            index += 1
    if index <= last:
        # The object is shorter than the recording says: truncated storage, never silent.
        raise TamperedError(f"recording {recording.id} is truncated at segment {index}")


def recording_poster(recording: Recording) -> bytes:
    """The recording's poster frame (JPEG), decrypted."""
    return _open_small(recording, recording.poster_key, purpose="poster")


def recording_filmstrip(recording: Recording) -> bytes:
    """The recording's filmstrip sprite (JPEG, evidence/filmstrip.py), decrypted."""
    return _open_small(recording, recording.filmstrip_key, purpose="filmstrip")


def _open_small(recording: Recording, storage_key: str, *, purpose: str) -> bytes:
    key = unwrap_data_key(recording.wrapped_key, kek_id=recording.kek_id, object_id=recording.id)
    return open_blob(
        key, object_id=recording.id, purpose=purpose, sealed=blob_store().get(storage_key)
    )


class PlaintextReader(io.RawIOBase):
    """A seekable read-only file over a recording's plaintext (for PyAV), one segment cached."""

    def __init__(self, recording: Recording, *, cipher: SegmentCipher | None = None):
        self.recording = recording
        self.cipher = cipher or recording_cipher(recording)
        self.pos = 0
        self._cache_index = -1
        self._cache = b""

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self.pos

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self.pos, io.SEEK_END: self.recording.size_bytes}
        self.pos = max(0, base[whence] + offset)
        return self.pos

    def readinto(self, b) -> int:
        if self.pos >= self.recording.size_bytes:
            return 0
        seg = self.cipher.segment_size
        index = self.pos // seg
        if index != self._cache_index:
            start = index * seg
            self._cache = b"".join(
                plaintext_range(self.recording, start, start + seg, cipher=self.cipher)
            )
            self._cache_index = index
        lo = self.pos - index * seg
        n = min(len(b), len(self._cache) - lo)
        b[:n] = self._cache[lo : lo + n]
        self.pos += n
        return n
