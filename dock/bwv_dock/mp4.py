"""A clip's creation time and duration from its MP4 or QuickTime header (the `mvhd` box), read
with the standard library alone, so the dock client needs no media library.

Cameras write MP4 (ISO base media) or QuickTime files: both keep a movie header, `moov/mvhd`, with
the time the recording was created (seconds since 1904-01-01 UTC) and its length in units of its
time scale. A creation time of 0 means the camera never set its clock: that is reported as no time.
"""

from __future__ import annotations

import struct
from datetime import UTC, datetime, timedelta
from typing import BinaryIO

MAC_EPOCH = datetime(1904, 1, 1, tzinfo=UTC)
MAX_BOXES = 10_000  # a damaged file must not make us walk for ever


class NotMp4(ValueError):
    """The file is not an MP4 or QuickTime file whose header can be read."""


def _boxes(f: BinaryIO, start: int, end: int):
    """(type, payload start, payload end) of each box between `start` and `end`."""
    pos = start
    for _ in range(MAX_BOXES):
        if pos + 8 > end:
            return
        f.seek(pos)
        header = f.read(8)
        if len(header) < 8:
            return
        size, kind = struct.unpack(">I4s", header)
        payload = pos + 8
        if size == 1:
            large = f.read(8)
            if len(large) < 8:
                return
            size = struct.unpack(">Q", large)[0]
            payload = pos + 16
        elif size == 0:
            size = end - pos
        if size < payload - pos or pos + size > end:
            raise NotMp4(f"box {kind!r} at {pos} runs past the end of its container")
        yield kind, payload, pos + size
        pos += size
    raise NotMp4("too many boxes")


def movie_header(f: BinaryIO, file_size: int) -> tuple[datetime | None, float]:
    """(creation time or None, duration in seconds) from the file's `moov/mvhd`."""
    for kind, start, end in _boxes(f, 0, file_size):
        if kind != b"moov":
            continue
        for inner, payload, inner_end in _boxes(f, start, end):
            if inner != b"mvhd":
                continue
            f.seek(payload)
            data = f.read(min(inner_end - payload, 32))
            if len(data) < 20:
                raise NotMp4("the movie header is cut short")
            if data[0] == 1:  # version 1: 64-bit times
                if len(data) < 32:
                    raise NotMp4("the movie header is cut short")
                created, _modified, scale, duration = struct.unpack(">QQIQ", data[4:32])
            else:
                created, _modified, scale, duration = struct.unpack(">IIII", data[4:20])
            seconds = duration / scale if scale else 0.0
            when = MAC_EPOCH + timedelta(seconds=created) if created else None
            return when, seconds
        raise NotMp4("the movie box has no header")
    raise NotMp4("no movie box (moov): not an MP4 or QuickTime file")
