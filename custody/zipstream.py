"""A streaming ZIP writer with one fixed layout, so that a verifier can rebuild every byte of a
bundle's structure and notice a change anywhere.

Members are stored (video does not compress), written in one pass with a data descriptor after the
data (the CRC is known only at the end), names in UTF-8, all with one timestamp. ZIP64 records are
used exactly when a size or an offset needs them, so bundles of any size stream in constant memory
and small ones open in every unzip tool. `tools/verify_bundle.py` holds the mirror image of these
rules; tests prove the two agree.
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime

LIMIT = 0xFFFFFFFF
FLAGS = 0x0808  # bit 3: sizes and CRC in a data descriptor; bit 11: UTF-8 names
EXTERNAL_ATTR = 0o100644 << 16  # a regular file, rw-r--r--


def dos_time(when: datetime) -> tuple[int, int]:
    """(time, date) in MS-DOS form, from the timestamp's own fields (bundles use UTC)."""
    time = (when.hour << 11) | (when.minute << 5) | (when.second // 2)
    date = ((when.year - 1980) << 9) | (when.month << 5) | when.day
    return time, date


@dataclass
class Member:
    name: bytes
    offset: int
    size: int = 0
    crc: int = 0

    @property
    def zip64(self) -> bool:
        return self.size >= LIMIT or self.offset >= LIMIT


def local_header(name: bytes, zip64: bool, time: int, date: int) -> bytes:
    version = 45 if zip64 else 20
    extra = struct.pack("<HHQQ", 1, 16, 0, 0) if zip64 else b""
    sizes = LIMIT if zip64 else 0
    return (
        struct.pack(
            "<IHHHHHIIIHH",
            0x04034B50,
            version,
            FLAGS,
            0,
            time,
            date,
            0,
            sizes,
            sizes,
            len(name),
            len(extra),
        )
        + name
        + extra
    )


def data_descriptor(m: Member) -> bytes:
    if m.zip64:
        return struct.pack("<IIQQ", 0x08074B50, m.crc, m.size, m.size)
    return struct.pack("<IIII", 0x08074B50, m.crc, m.size, m.size)


def central_entry(m: Member, time: int, date: int) -> bytes:
    version = 45 if m.zip64 else 20
    if m.zip64:
        extra = struct.pack("<HHQQQ", 1, 24, m.size, m.size, m.offset)
        size = offset = LIMIT
    else:
        extra, size, offset = b"", m.size, m.offset
    return (
        struct.pack(
            "<IHHHHHHIIIHHHHHII",
            0x02014B50,
            (3 << 8) | version,
            version,
            FLAGS,
            0,
            time,
            date,
            m.crc,
            size,
            size,
            len(m.name),
            len(extra),
            0,
            0,
            0,
            EXTERNAL_ATTR,
            offset,
        )
        + m.name
        + extra
    )


def end_records(count: int, cd_offset: int, cd_size: int) -> bytes:
    out = b""
    zip64 = count >= 0xFFFF or cd_offset >= LIMIT or cd_size >= LIMIT
    if zip64:
        eocd64_offset = cd_offset + cd_size
        out += struct.pack(
            "<IQHHIIQQQQ", 0x06064B50, 44, (3 << 8) | 45, 45, 0, 0, count, count, cd_size, cd_offset
        )
        out += struct.pack("<IIQI", 0x07064B50, 0, eocd64_offset, 1)
        return out + struct.pack("<IHHHHIIH", 0x06054B50, 0, 0, 0xFFFF, 0xFFFF, LIMIT, LIMIT, 0)
    return out + struct.pack("<IHHHHIIH", 0x06054B50, 0, 0, count, count, cd_size, cd_offset, 0)


class ZipStream:
    """Yields a ZIP file's bytes as members are added; memory is one chunk of a member."""

    def __init__(self, when: datetime):
        self.time, self.date = dos_time(when)
        self.members: list[Member] = []
        self.position = 0
        self.names: set[bytes] = set()

    def _out(self, data: bytes) -> bytes:
        self.position += len(data)
        return data

    def member(self, name: str, chunks: Iterable[bytes], *, size: int) -> Iterator[bytes]:
        """A member of exactly `size` bytes (known in advance: it decides the ZIP64 records)."""
        raw = name.encode("utf-8")
        if raw in self.names or name.startswith("/") or ".." in name.split("/"):
            raise ValueError(f"bad or repeated member name {name!r}")
        self.names.add(raw)
        m = Member(raw, self.position, size)
        yield self._out(local_header(raw, m.zip64, self.time, self.date))
        written, crc = 0, 0
        for chunk in chunks:
            if not chunk:
                continue
            written += len(chunk)
            crc = zlib.crc32(chunk, crc)
            yield self._out(chunk)
        if written != size:
            raise ValueError(f"{name}: {written} bytes written, {size} announced")
        m.crc = crc
        self.members.append(m)
        yield self._out(data_descriptor(m))

    def finish(self) -> Iterator[bytes]:
        cd_offset = self.position
        directory = b"".join(central_entry(m, self.time, self.date) for m in self.members)
        yield self._out(directory)
        yield self._out(end_records(len(self.members), cd_offset, len(directory)))
