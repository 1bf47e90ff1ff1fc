"""Ingest: the server side of the tus uploads from docks (the writes; the HTTP layer is `apis.py`).

Guarantees:
- a PATCH streams its body through buffers it allocates once and reuses: the socket is read into
  one segment's buffer, hashed there and sealed straight into the storage part that will be sent,
  so memory per upload is one segment and IN_FLIGHT_PARTS + 1 sealed parts (11 MiB with the
  defaults, 15 MiB for the largest clips, whose parts are larger), whatever the clip's size;
- the whole-file SHA-256 is declared by the dock, at creation (metadata `sha256`) or with the last
  byte (header `Bwv-Clip-Sha256` on the PATCH that completes the upload, so that a dock can hash
  the clip as it sends it instead of reading it twice); a PATCH that would complete an upload with
  no declared hash is refused before anything is read;
- nothing is stored in plaintext: bytes are sealed into segments before they reach storage, and the
  tail that has not yet filled a part is sealed before it is kept in the database;
- the offset only moves forward once the bytes before it are durably stored, so a dock that is cut
  off resumes from the last committed offset and the stored bytes are exactly what it sent;
- with an Upload-Checksum, the PATCH counts only if the body matches it (else nothing moves);
- a recording becomes `available` only after the whole-file SHA-256 matched the declared one (both
  when the dock declared it twice) and
  PyAV could read it as video; a rejected upload leaves no object and no recording behind;
- the same clip from the same camera is one recording, however often it is uploaded or raced; a
  stock tus client that sends a clip the server already has uploads it as usual and ends in
  success, its upload resolving to the existing recording and marked as a duplicate (the project's
  dock client may ask to skip the transfer instead);
- one request at a time writes an upload, and a writer that dies frees it at once. On PostgreSQL the
  claim is a session-level advisory lock taken on the request's own connection and held for the
  whole PATCH: the server drops it the moment that session ends (process killed, connection broken,
  database restarted), so the next PATCH is accepted at once instead of being told to wait. In the
  embedded setup (SQLite, one machine) it is an flock on a file under `var/`, which the kernel drops
  when the process dies. A writer whose session is gone can commit nothing: every commit goes
  through that session and is fenced by the claim's token in the row as well. It checks its session
  before each storage part, so only the parts already in flight (at most IN_FLIGHT_PARTS) can land
  after it lost the claim, and only if the dock has already reconnected to another writer. Such a
  part holds a sealing of the same offset; if it replaced the next writer's part, its ETag no longer
  matches the one recorded, and an S3 that checks ETags (AWS, MinIO) refuses the completion rather
  than store bytes nobody hashed (the upload then has to be started again);
- a start the camera's clock cannot have got right is accepted and marked clock suspect, never
  refused (a refused clip stays on the camera for ever); its deletion date is set when the upload
  completes, counted from then for a suspect clock, and never within the review window of arrival
  (evidence/clock.py);
- a new clip is tagged with the dispatch incidents its officer was at while it ran, in the
  transaction that makes it available (evidence/incidents.py);
- no network I/O happens inside a database transaction.
"""

from __future__ import annotations

import base64
import binascii
import fcntl
import hashlib
import logging
import math
import os
import re
import uuid
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import BinaryIO

from celery import current_app
from django.conf import settings
from django.db import DatabaseError, IntegrityError, connection, transaction
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from blobstore import StorageUnavailable, blob_store
from custody.services import audit_record
from devices.models import Camera, Dock
from devices.selectors import officer_holding_camera
from evidence.clock import TIME_SOURCES, clock_suspect_reason, deletion_date, retention_days
from evidence.crypto import (
    SegmentCipher,
    new_data_key,
    open_blob,
    seal_blob,
    unwrap_data_key,
    wrap_data_key,
)
from evidence.hashstate import ResumableSha256
from evidence.incidents import recording_tag_incidents
from evidence.models import IngestUpload, Recording, RecordingState
from evidence.probe import ProbeError, probe_and_poster

FILMSTRIP_TASK = "evidence.tasks.recording_filmstrip_make_task"

log = logging.getLogger(__name__)

SEGMENT_SIZE = 1 << 20
# Parts of five segments: S3's smallest part (5 MiB), so the buffers an upload holds stay small;
# a clip too large for S3's 10,000 parts at that size gets larger parts (7 MiB at 64 GiB).
MIN_PART_SEGMENTS = 5
MAX_PARTS = 10_000
# One part is sent while the next is filled. More in flight only helps a store far away, at the
# cost of a part's memory each, per upload.
IN_FLIGHT_PARTS = max(1, int(os.environ.get("BWV_INGEST_PARTS_IN_FLIGHT", "1")))
CHECKPOINT_BYTES = 32 << 20  # without an Upload-Checksum, commit progress about every 32 MiB
SHA256_HEX = re.compile(r"^[0-9a-f]{64}$")
MAX_RECORDING = timedelta(hours=24)


def part_segments_for(length: int) -> int:
    """Segments per storage part for a clip of `length` bytes."""
    return max(MIN_PART_SEGMENTS, -(-length // (MAX_PARTS * SEGMENT_SIZE)))


class IngestError(Exception):
    """An upload request that cannot be accepted, with the HTTP status and a message for the dock."""

    def __init__(self, message: str, status: int = 400):
        super().__init__(message)
        self.status = status
        self.message = message


@dataclass(frozen=True)
class ClipMetadata:
    camera: Camera
    started_at: datetime
    ended_at: datetime
    sha256: str  # empty: declared with the last byte
    filename: str
    gps_lat: float | None
    gps_lon: float | None


# -- Metadata ------------------------------------------------------------------------------------


def parse_upload_metadata(header: str) -> dict[str, str]:
    """Parse tus `Upload-Metadata`: comma-separated `key base64value` pairs."""
    result: dict[str, str] = {}
    if not header:
        return result
    for item in header.split(","):
        item = item.strip()
        if not item:
            continue
        key, _, value = item.partition(" ")
        if not key or key in result:
            raise IngestError(f"Upload-Metadata: empty or repeated key {key!r}")
        try:
            result[key] = base64.b64decode(value.strip(), validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError):
            raise IngestError(f"Upload-Metadata: value of {key!r} is not base64 UTF-8") from None
        # PostgreSQL text cannot hold NUL; no field of ours has a use for it.
        if "\x00" in key or "\x00" in result[key]:
            raise IngestError(f"Upload-Metadata: {key!r} contains a NUL character")
    return result


def _parse_instant(raw: dict[str, str], key: str) -> datetime:
    value = raw.get(key, "")
    if not value:
        raise IngestError(f"metadata {key!r} is required (ISO 8601 with a UTC offset)")
    try:
        # ValueError: well formed but impossible (month 13, 30 February, 25 o'clock).
        parsed = parse_datetime(value)
    except ValueError:
        parsed = None
    if parsed is None:
        raise IngestError(f"metadata {key!r} is not an ISO 8601 date-time: {value!r}")
    if timezone.is_naive(parsed):
        raise IngestError(f"metadata {key!r} must carry a UTC offset (e.g. +01:00 or Z)")
    try:
        # Stored in UTC: an instant that has no UTC date (0001-01-01T00:00+14:00) is refused here.
        return parsed.astimezone(UTC)
    except OverflowError:
        raise IngestError(f"metadata {key!r} is out of range: {value!r}") from None


def validate_metadata(*, dock: Dock, raw: dict[str, str]) -> ClipMetadata:
    serial = raw.get("camera", "").strip()
    if not serial:
        raise IngestError("metadata 'camera' (the camera serial) is required")
    camera = Camera.objects.filter(serial=serial).select_related("borough").first()
    # Another borough's camera gets the same answer as an unknown one: a dock learns nothing.
    if camera is None or camera.borough_id != dock.borough_id:
        raise IngestError(f"camera {serial!r} is not registered in this dock's borough", 403)
    if not camera.accepts_uploads:
        raise IngestError(f"camera {serial!r} is {camera.get_status_display().lower()}", 403)
    started, ended = _parse_instant(raw, "start"), _parse_instant(raw, "end")
    if ended < started:
        raise IngestError("metadata 'end' is before 'start'")
    if ended - started > MAX_RECORDING:
        raise IngestError("a recording cannot be longer than 24 hours")
    # A start in the future or long ago is not refused: it is a wrong clock, not a bad request, and
    # the clip is accepted as clock suspect when it completes (see _finish).
    if raw.get("time_source", "camera") not in TIME_SOURCES:
        raise IngestError("metadata 'time_source' must be 'camera' or 'file'")
    # Left out, the hash comes with the last byte (Bwv-Clip-Sha256); given, it must be one.
    sha = raw.get("sha256", "").strip().lower()
    if "sha256" in raw and not SHA256_HEX.match(sha):
        raise IngestError("metadata 'sha256' must be the clip's SHA-256 as 64 hex digits")
    filename = raw.get("filename", "").strip()
    if (
        not filename
        or len(filename) > 255
        or "/" in filename
        or "\\" in filename
        or "\x00" in filename
    ):
        raise IngestError("metadata 'filename' must be a plain file name of at most 255 characters")
    lat = lon = None
    if raw.get("gps"):
        try:
            lat_s, lon_s = raw["gps"].split(",")
            lat, lon = float(lat_s), float(lon_s)
        except ValueError:
            raise IngestError("metadata 'gps' must be 'latitude,longitude'") from None
        if not (-90 <= lat <= 90 and -180 <= lon <= 180) or math.isnan(lat) or math.isnan(lon):
            raise IngestError("metadata 'gps' is out of range")
    return ClipMetadata(camera, started, ended, sha, filename, lat, lon)


# -- Create --------------------------------------------------------------------------------------


def upload_create(
    *, dock: Dock, length: int, metadata: dict[str, str], skip_if_stored: bool = False
) -> IngestUpload:
    """Start an upload (tus creation).

    A clip the server already has (same camera, same SHA-256) still gets a fresh upload, because a
    stock tus client sends every byte of what it created and must end in success; the completion
    resolves it to the existing recording (`_finish`). A client that asks (`skip_if_stored`, the
    project's dock client) gets an upload that is complete already, with nothing to send.
    """
    if length <= 0:
        raise IngestError("Upload-Length must be a positive number of bytes")
    if length > settings.BWV_INGEST_MAX_BYTES:
        raise IngestError(f"the clip is larger than {settings.BWV_INGEST_MAX_BYTES} bytes", 413)
    clip = validate_metadata(dock=dock, raw=metadata)
    with transaction.atomic():
        now = timezone.now()
        Dock.objects.filter(pk=dock.pk).update(last_seen_at=now)
        # A dock uploading a camera's clip means the camera is in it now.
        Camera.objects.filter(pk=clip.camera.pk).update(last_docked_at=now)
        existing = (
            Recording.objects.filter(
                camera=clip.camera, sha256=clip.sha256, state=RecordingState.AVAILABLE
            ).first()
            if clip.sha256
            else None
        )
        if existing is not None and skip_if_stored:
            return _upload_for_existing(dock=dock, recording=existing, metadata=metadata)
        recording_id = uuid.uuid4()
        kek_id, wrapped = wrap_data_key(new_data_key(), object_id=recording_id)
        recording = Recording.objects.create(
            id=recording_id,
            camera=clip.camera,
            borough=clip.camera.borough,
            dock=dock,
            state=RecordingState.UPLOADING,
            started_at=clip.started_at,
            ended_at=clip.ended_at,
            size_bytes=length,
            sha256=clip.sha256,
            original_filename=clip.filename,
            gps_lat=clip.gps_lat,
            gps_lon=clip.gps_lon,
            storage_key=f"recordings/{recording_id}/media",
            segment_size=SEGMENT_SIZE,
            kek_id=kek_id,
            wrapped_key=wrapped,
            # Provisional: set for good when the upload completes (_finish), from its arrival.
            delete_after=timezone.now() + timedelta(days=retention_days()),
        )
        upload = IngestUpload.objects.create(
            recording=recording,
            recording_ref=recording_id,
            dock=dock,
            length=length,
            metadata=metadata,
            declared_sha256=clip.sha256,
            part_segments=part_segments_for(length),
            hash_state=ResumableSha256().state(),
            expires_at=timezone.now() + timedelta(hours=settings.BWV_INGEST_EXPIRY_HOURS),
        )
        audit_record(
            actor=dock,
            action="recording.upload_started",
            obj=recording,
            detail={
                "upload": str(upload.id),
                "length": length,
                "camera": clip.camera.serial,
                "filename": clip.filename,
                # None: the dock declares it with the last byte.
                "declared_sha256": clip.sha256 or None,
            },
        )
    return upload


def _upload_for_existing(*, dock: Dock, recording: Recording, metadata: dict) -> IngestUpload:
    upload = IngestUpload.objects.create(
        recording=None,
        recording_ref=recording.id,
        dock=dock,
        state=IngestUpload.State.COMPLETE,
        length=recording.size_bytes,
        offset=recording.size_bytes,
        metadata=metadata,
        declared_sha256=recording.sha256,
        part_segments=MIN_PART_SEGMENTS,
        hash_state=b"",
        expires_at=timezone.now(),
    )
    audit_record(
        actor=dock,
        action="recording.upload_duplicate",
        obj=recording,
        detail={"upload": str(upload.id), "transfer": "skipped"},
    )
    return upload


def upload_is_duplicate(upload: IngestUpload) -> bool:
    """Whether a completed upload was resolved to a recording that an earlier upload made."""
    return upload.state == IngestUpload.State.COMPLETE and upload.recording_id is None


# -- Append --------------------------------------------------------------------------------------


def upload_for_dock(*, upload_id: uuid.UUID, dock: Dock) -> IngestUpload:
    """The upload, if it belongs to the dock's borough; 404 otherwise (the same for both)."""
    upload = (
        IngestUpload.objects.select_related("recording")
        .filter(pk=upload_id, dock__borough_id=dock.borough_id)
        .first()
    )
    if upload is None:
        raise IngestError("no such upload", 404)
    return upload


# The claim: see the module's guarantees. Ingest takes no other advisory locks in this database, so
# the key is the upload id's first 64 bits; two uploads sharing a key (1 in 2^62) would only make one
# of them wait for the other.
def _advisory_key(upload_id: uuid.UUID) -> int:
    return int.from_bytes(upload_id.bytes[:8], "big", signed=True)


def _claim_lock(upload_id: uuid.UUID) -> Callable[[], None] | None:
    """Take the exclusive right to write the upload, without waiting: a release function, or None
    when another writer holds it."""
    if connection.vendor == "postgresql":
        key = _advisory_key(upload_id)
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_try_advisory_lock(%s)", [key])
            if not cursor.fetchone()[0]:
                return None

        def release() -> None:
            try:
                with connection.cursor() as cursor:
                    cursor.execute("SELECT pg_advisory_unlock(%s)", [key])
            except DatabaseError:
                pass  # the session is gone, and its lock went with it

        return release
    return _file_claim(upload_id)


def _file_claim(upload_id: uuid.UUID) -> Callable[[], None] | None:
    """The embedded setup's claim: an exclusive flock, dropped by the kernel when the process dies.

    Each call opens its own file description, so two threads of one process exclude each other too.
    The holder removes the file when it lets go (no file is left per upload); a claimant that locked
    a file already removed from its name holds nothing, and is told to come back.
    """
    folder = settings.VAR_DIR / "ingest-claims"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{upload_id}.lock"
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        if os.fstat(fd).st_ino != os.stat(path).st_ino:
            raise BlockingIOError  # the holder removed it after we opened it
    except (BlockingIOError, FileNotFoundError):
        os.close(fd)
        return None

    def release() -> None:
        path.unlink(missing_ok=True)  # while still holding the lock
        os.close(fd)  # closing the only descriptor drops the lock

    return release


def _claim_alive() -> None:
    """Raise if the claim may have been lost: on PostgreSQL, when the request's session is gone."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")


def _claim_refused(upload: IngestUpload, offset: int | None, now: datetime) -> IngestError:
    if upload.state == IngestUpload.State.FAILED:
        return IngestError(f"the upload was rejected: {upload.error}", 410)
    if upload.state == IngestUpload.State.COMPLETE:
        return IngestError("the upload is already complete", 409)
    if upload.expires_at <= now:
        return IngestError("the upload has expired; start again", 410)
    if offset is not None and upload.offset != offset:
        return IngestError(
            f"Upload-Offset {offset} does not match the server's {upload.offset}", 409
        )
    return IngestError("another request is writing this upload; retry shortly", 423)


def _claim(
    *, upload_id: uuid.UUID, dock: Dock, offset: int
) -> tuple[IngestUpload, uuid.UUID, Callable[[], None]]:
    upload = upload_for_dock(upload_id=upload_id, dock=dock)
    release = _claim_lock(upload.pk)
    if release is None:
        raise _claim_refused(upload, offset, timezone.now())
    try:
        token, now = uuid.uuid4(), timezone.now()
        claimed = IngestUpload.objects.filter(
            pk=upload.pk,
            state=IngestUpload.State.ACTIVE,
            offset=offset,
            expires_at__gt=now,
        ).update(lease_token=token, lease_until=None)
        upload.refresh_from_db()
        if not claimed:
            raise _claim_refused(upload, offset, now)
    except BaseException:
        release()
        raise
    return upload, token, release


class _PartWriter:
    """Sends sealed parts to storage, at most IN_FLIGHT_PARTS at once, from IN_FLIGHT_PARTS + 1
    part buffers allocated once per PATCH and reused: one is filled while the others are sent."""

    def __init__(self, upload: IngestUpload, recording: Recording, cipher: SegmentCipher):
        self.upload = upload
        self.recording = recording
        self.cipher = cipher
        self.store = blob_store()
        self.part_segments = upload.part_segments
        self.part_plain = cipher.segment_size * self.part_segments
        self.part_sealed = cipher.sealed_size * self.part_segments
        self.parts: dict[int, str] = {n: etag for n, etag in upload.parts}
        self.pool = ThreadPoolExecutor(max_workers=IN_FLIGHT_PARTS)
        # (plaintext offset where the part ends, its future, its buffer)
        self.in_flight: list[tuple[int, Future, bytearray]] = []
        self.free: list[bytearray] = []
        self.allocated = 0
        self.durable_until = upload.offset - upload.offset % self.part_plain

    def buffer(self) -> bytearray:
        """A part buffer to seal into: a free one, a new one while there are fewer than
        IN_FLIGHT_PARTS + 1, else the oldest sent one's once storage holds it."""
        if not self.free and self.allocated <= IN_FLIGHT_PARTS:
            self.allocated += 1
            return bytearray(self.part_sealed)
        while not self.free:
            self._retire_first()
        return self.free.pop()

    def submit(self, part_start: int, part: bytearray, *, plain_end: int) -> None:
        """Send a sealed part (the whole buffer); the buffer is the writer's until it is stored."""
        number = part_start // self.part_plain + 1
        while len(self.in_flight) >= IN_FLIGHT_PARTS:
            self._retire_first()
        future = self.pool.submit(self._store, number, part)
        self.in_flight.append((plain_end, future, part))

    def _retire_first(self) -> None:
        part_end, future, part = self.in_flight.pop(0)
        future.result()  # raises the part's storage error, if any
        self.durable_until = part_end
        if len(part) == self.part_sealed:  # the last part is cut to its length, and not reused
            self.free.append(part)

    def poll(self) -> int:
        """Retire the parts that are stored, in order; returns the offset all bytes below are in."""
        while self.in_flight and self.in_flight[0][1].done():
            self._retire_first()
        return self.durable_until

    def _store(self, number: int, part: bytearray) -> None:
        offset = (number - 1) * self.part_sealed
        etag = self.store.multipart_put(
            self.recording.storage_key, self.upload.multipart_id, number, offset, part
        )
        self.parts[number] = etag

    def drain(self) -> None:
        while self.in_flight:
            self._retire_first()

    def close(self) -> None:
        for _end, future, _part in self.in_flight:
            future.cancel()
        self.pool.shutdown(wait=True)
        self.free.clear()

    def part_list(self) -> list[list]:
        parts = dict(self.parts)  # a snapshot: upload threads add to it concurrently
        return [[n, parts[n]] for n in sorted(parts)]


class _Sealer:
    """The part being filled: the plaintext of its current segment, in a buffer the body is read
    into, and the segments before it, sealed into the part buffer that goes to storage as it is.
    The body is read into the segment's buffer (straight in where the stream has `readinto`;
    Django's request stream has not, so there each read is one bytes object copied in); hashing and
    sealing read it there."""

    def __init__(self, writer: _PartWriter, *, part_start: int, length: int):
        self.writer = writer
        self.cipher = writer.cipher
        self.length = length  # the upload's: the segment that ends there is sealed as the last
        self.part_start = part_start
        self.segment = bytearray(self.cipher.segment_size)
        self.segment_view = memoryview(self.segment)
        self.fill = 0  # plaintext bytes in the segment's buffer
        self.sealed = 0  # segments of the part sealed so far
        self.part_fill = 0  # bytes of the part buffer written
        self.part = writer.buffer()
        self.part_view = memoryview(self.part)
        self.position = part_start  # the plaintext offset the next byte of the clip goes to

    def space(self) -> memoryview:
        """Where the next bytes of the body go: the rest of the segment's buffer."""
        return self.segment_view[self.fill :]

    def received(self, n: int) -> bool:
        """`n` bytes were read into `space()`. Seals the segment when it is full or ends the clip.
        Returns True when that completed a part that is not the clip's last (`send` it)."""
        self.fill += n
        self.position += n
        position = self.position
        if self.fill < self.cipher.segment_size and position < self.length:
            return False
        index = self.part_start // self.cipher.segment_size + self.sealed
        self.part_fill += self.cipher.seal_into(
            index,
            self.segment_view[: self.fill],
            last=position == self.length,
            out=self.part_view[self.part_fill :],
        )
        self.sealed += 1
        self.fill = 0
        return self.sealed == self.writer.part_segments and position < self.length

    def send(self) -> int:
        """Send the full part and start the next; returns where the next part starts."""
        self.part_view.release()
        self.writer.submit(
            self.part_start, self.part, plain_end=self.part_start + self.writer.part_plain
        )
        self.part_start += self.writer.part_plain
        self.part, self.sealed, self.part_fill = self.writer.buffer(), 0, 0
        self.part_view = memoryview(self.part)
        return self.part_start

    def send_last(self) -> None:
        """Send the clip's last part, cut to its length."""
        self.part_view.release()
        del self.part[self.part_fill :]
        self.writer.submit(self.part_start, self.part, plain_end=self.length)

    def load_tail(self, plaintext: bytes) -> None:
        """Take back the tail of an unfinished part that an earlier PATCH kept (already hashed)."""
        seg = self.cipher.segment_size
        view = memoryview(plaintext)
        whole, rest = divmod(len(plaintext), seg)
        for i in range(whole):
            self.part_fill += self.cipher.seal_into(
                self.part_start // seg + i,
                view[i * seg : (i + 1) * seg],
                last=False,
                out=self.part_view[self.part_fill :],
            )
        self.sealed = whole
        self.segment_view[:rest] = view[whole * seg :]
        self.fill = rest
        self.position += len(plaintext)

    def tail(self) -> bytearray:
        """The plaintext of the unfinished part (its sealed segments opened again, then the
        segment being filled), to be sealed for the database until the next PATCH."""
        seg, sealed_size = self.cipher.segment_size, self.cipher.sealed_size
        plain = bytearray(self.sealed * seg + self.fill)
        view = memoryview(plain)
        for i in range(self.sealed):
            self.cipher.open_into(
                self.part_start // seg + i,
                self.part_view[i * sealed_size : (i + 1) * sealed_size],
                last=False,
                out=view[i * seg :],
            )
        view[self.sealed * seg :] = self.segment_view[: self.fill]
        view.release()
        return plain


def _read_into(body, view: memoryview) -> int:
    """Read up to len(view) bytes of the request body into `view`; 0 at its end."""
    readinto = getattr(body, "readinto", None)
    if readinto is not None:
        return readinto(view) or 0
    data = body.read(len(view))
    view[: len(data)] = data
    return len(data)


def _checksum_verifier(header: str | None):
    if not header:
        return None, None
    algo, _, digest = header.strip().partition(" ")
    algo = algo.lower()
    if algo not in ("sha256", "sha1"):
        raise IngestError(f"Upload-Checksum algorithm {algo!r} is not supported (sha256, sha1)")
    try:
        expected = base64.b64decode(digest, validate=True)
    except binascii.Error:
        raise IngestError("Upload-Checksum digest is not base64") from None
    return hashlib.new(algo), expected


def _clip_sha256(header: str | None) -> str:
    """The whole-file SHA-256 a PATCH declares (header Bwv-Clip-Sha256); empty when it does not."""
    if header is None:
        return ""
    sha = header.strip().lower()
    if not SHA256_HEX.match(sha):
        raise IngestError("Bwv-Clip-Sha256 must be the clip's SHA-256 as 64 hex digits")
    return sha


def upload_append(
    *,
    upload_id: uuid.UUID,
    dock: Dock,
    offset: int,
    body: BinaryIO,
    content_length: int,
    checksum: str | None = None,
    clip_sha256: str | None = None,
) -> IngestUpload:
    """Append a PATCH body at `offset`. Completes the recording when the last byte arrives.

    `clip_sha256` is the whole file's SHA-256 when this PATCH declares it (Bwv-Clip-Sha256): it
    must, on the PATCH that completes an upload created without one."""
    body_hash, expected_digest = _checksum_verifier(checksum)
    declared = _clip_sha256(clip_sha256)
    upload, token, release = _claim(upload_id=upload_id, dock=dock, offset=offset)
    try:
        return _append_claimed(
            upload,
            token,
            offset=offset,
            body=body,
            content_length=content_length,
            body_hash=body_hash,
            expected_digest=expected_digest,
            declared=declared,
        )
    finally:
        release()


def _append_claimed(
    upload: IngestUpload,
    token: uuid.UUID,
    *,
    offset: int,
    body: BinaryIO,
    content_length: int,
    body_hash,
    expected_digest: bytes | None,
    declared: str,
) -> IngestUpload:
    if offset + content_length > upload.length:
        _release(upload, token)
        raise IngestError(
            f"{content_length} bytes at offset {offset} exceed the declared length {upload.length}",
            413,
        )
    completes = offset + content_length == upload.length
    if declared and upload.declared_sha256 and declared != upload.declared_sha256:
        _release(upload, token)
        raise IngestError("Bwv-Clip-Sha256 differs from the sha256 declared at creation")
    if completes and not (declared or upload.declared_sha256):
        _release(upload, token)
        raise IngestError(
            "the PATCH that completes an upload must declare the clip's SHA-256 in "
            "Bwv-Clip-Sha256 when the creation did not"
        )
    recording = upload.recording
    key = unwrap_data_key(recording.wrapped_key, kek_id=recording.kek_id, object_id=recording.id)
    cipher = SegmentCipher(key=key, object_id=recording.id, segment_size=recording.segment_size)
    writer: _PartWriter | None = None
    try:
        if not upload.multipart_id:
            upload_id_s3 = blob_store().multipart_start(recording.storage_key)
            IngestUpload.objects.filter(pk=upload.pk, lease_token=token).update(
                multipart_id=upload_id_s3
            )
            upload.multipart_id = upload_id_s3
        writer = _PartWriter(upload, recording, cipher)
        hasher = ResumableSha256(bytes(upload.hash_state))
        part_start = offset - offset % writer.part_plain
        sealer = _Sealer(writer, part_start=part_start, length=upload.length)
        if offset % writer.part_plain:
            tail = open_blob(
                key,
                object_id=recording.id,
                purpose=f"pending:{upload.id}:{part_start}",
                sealed=bytes(upload.pending),
            )
            if len(tail) != offset - part_start:
                raise IngestError("the stored upload tail is inconsistent; start again", 500)
            sealer.load_tail(tail)
            del tail
        remaining = content_length
        # The hash state at each part boundary, so progress can be committed as soon as the parts
        # below a boundary are stored, without waiting for the ones still in flight.
        boundary_states: dict[int, bytes] = {}
        committed = offset
        try:
            while remaining:
                space = sealer.space()
                if len(space) > remaining:
                    space = space[:remaining]
                n = _read_into(body, space)
                if not n:
                    raise IngestError(
                        f"the request body ended after {content_length - remaining} of "
                        f"{content_length} bytes"
                    )
                arrived = space[:n]
                hasher.update(arrived)
                if body_hash is not None:
                    body_hash.update(arrived)
                arrived.release()
                space.release()
                remaining -= n
                if sealer.received(n):
                    _claim_alive()  # a writer whose session is gone stores no more parts
                    boundary_states[sealer.send()] = hasher.state()
                if body_hash is None and writer.poll() - committed >= CHECKPOINT_BYTES:
                    durable = writer.durable_until
                    _commit(
                        upload, token, writer, boundary_states[durable], durable, b"", renew=True
                    )
                    committed = durable
                    boundary_states = {k: v for k, v in boundary_states.items() if k > durable}
        except (IngestError, OSError) as exc:
            # A cut-off body. Without a checksum every byte received is good: keep it, so the dock
            # resumes from here. With a checksum the PATCH is all or nothing.
            if body_hash is None and not isinstance(exc, StorageUnavailable):
                writer.drain()
                pending = _seal_pending(key, recording, upload, sealer)
                _commit(
                    upload, token, writer, hasher.state(), sealer.position, pending, renew=False
                )
                token = None
            raise IngestError(str(exc), 400) from exc

        if body_hash is not None and body_hash.digest() != expected_digest:
            raise IngestError("Upload-Checksum does not match the request body", 460)

        if sealer.position == upload.length:
            sealer.send_last()
            writer.drain()
            return _finish(upload, token, writer, hasher, declared or upload.declared_sha256)
        writer.drain()
        pending = _seal_pending(key, recording, upload, sealer)
        _commit(upload, token, writer, hasher.state(), sealer.position, pending, renew=False)
        token = None
        upload.refresh_from_db()
        return upload
    except StorageUnavailable as exc:
        log.warning("upload %s: storage unavailable: %s", upload.pk, exc)
        raise IngestError("media storage is unavailable; resume the upload later", 503) from exc
    finally:
        if writer is not None:
            writer.close()
        if token is not None:
            _release(upload, token)


def _seal_pending(key, recording, upload, sealer: _Sealer) -> bytes:
    if sealer.position == sealer.part_start:
        return b""
    return seal_blob(
        key,
        object_id=recording.id,
        purpose=f"pending:{upload.id}:{sealer.part_start}",
        data=sealer.tail(),
    )


def _commit(
    upload,
    token,
    writer: _PartWriter,
    hash_state: bytes,
    position: int,
    pending: bytes,
    *,
    renew: bool,
) -> None:
    """Record durable progress: every byte below `position` is stored (or sealed in `pending`).

    `renew` keeps the claim's token for the rest of the PATCH; else the PATCH is over."""
    updated = IngestUpload.objects.filter(pk=upload.pk, lease_token=token).update(
        offset=position,
        parts=writer.part_list(),
        hash_state=hash_state,
        pending=pending,
        lease_token=token if renew else None,
    )
    if not updated:
        raise IngestError("the upload lease was lost; resume from the server's offset", 409)


def _release(upload: IngestUpload, token: uuid.UUID) -> None:
    try:
        IngestUpload.objects.filter(pk=upload.pk, lease_token=token).update(
            lease_token=None, lease_until=None
        )
    except DatabaseError:
        pass  # the token is only a fence: the next claim replaces a stale one


# -- Finish --------------------------------------------------------------------------------------


def _finish(
    upload: IngestUpload, token, writer: _PartWriter, hasher, declared: str
) -> IngestUpload:
    recording = upload.recording
    store = blob_store()
    actual = hasher.hexdigest()
    if actual != declared:
        store.multipart_abort(recording.storage_key, upload.multipart_id)
        _reject(upload, f"whole-file SHA-256 {actual} does not match the declared {declared}")
        raise IngestError("the whole-file SHA-256 does not match the declared one", 460)
    store.multipart_complete(recording.storage_key, upload.multipart_id, writer.part_list())
    try:
        info, poster = probe_and_poster(recording, cipher=writer.cipher)
    except ProbeError as exc:
        store.delete_many([recording.storage_key])
        _reject(upload, f"not a playable video: {exc}")
        raise IngestError(f"the file is not a playable video: {exc}", 415) from exc
    poster_key = f"recordings/{recording.id}/poster"
    if poster:
        store.put(
            poster_key,
            seal_blob(writer.cipher.key, object_id=recording.id, purpose="poster", data=poster),
        )
    # The clip arrives now: a suspect clock is judged against this instant, and its retention,
    # the review window and (for a suspect clock) the attribution count from it.
    arrived = timezone.now()
    suspect = clock_suspect_reason(
        camera=recording.camera,
        started_at=recording.started_at,
        now=arrived,
        time_source=upload.metadata.get("time_source", "camera"),
    )
    officer = officer_holding_camera(
        camera=recording.camera, at=arrived if suspect else recording.started_at
    )
    delete_after, by_window = deletion_date(
        started_at=recording.started_at, arrived_at=arrived, suspect=bool(suspect)
    )
    try:
        with transaction.atomic():
            Recording.objects.filter(pk=recording.pk, state=RecordingState.UPLOADING).update(
                state=RecordingState.AVAILABLE,
                sha256=actual,
                officer=officer,
                media_info=info,
                duration_seconds=info.get("duration_seconds"),
                poster_key=poster_key if poster else "",
                available_at=arrived,
                clock_suspect=bool(suspect),
                clock_suspect_reason=suspect,
                delete_after=delete_after,
                review_window_extended=by_window,
            )
            IngestUpload.objects.filter(pk=upload.pk, lease_token=token).update(
                state=IngestUpload.State.COMPLETE,
                declared_sha256=declared,
                offset=upload.length,
                parts=writer.part_list(),
                hash_state=b"",
                pending=b"",
                lease_token=None,
                lease_until=None,
            )
            recording.refresh_from_db()
            audit_record(
                actor=upload.dock,
                action="recording.ingested",
                obj=recording,
                detail={
                    "upload": str(upload.id),
                    "sha256": actual,
                    "size": upload.length,
                    "officer": officer.collar_number if officer else None,
                    "attributed": officer is not None,
                    "media": info,
                    "clock_suspect": suspect or None,
                    "delete_after": delete_after.isoformat(),
                    "review_window_extended": by_window,
                },
            )
            recording_tag_incidents(recording=recording, actor=upload.dock)
            recording_id = str(recording.pk)
            transaction.on_commit(lambda: _queue_filmstrip(recording_id))
    except IntegrityError:
        # The clip is already stored: another upload of it finished first (a race, or a stock tus
        # client sending again what the server has). Keep that recording, drop this copy; the
        # upload completes as a duplicate of it, so the client ends in success.
        existing = Recording.objects.get(
            camera=recording.camera, sha256=actual, state=RecordingState.AVAILABLE
        )
        store.delete_many([recording.storage_key, poster_key])
        with transaction.atomic():
            IngestUpload.objects.filter(pk=upload.pk).update(
                state=IngestUpload.State.COMPLETE,
                declared_sha256=declared,
                recording=None,
                recording_ref=existing.id,
                offset=upload.length,
                hash_state=b"",
                pending=b"",
                lease_token=None,
                lease_until=None,
            )
            Recording.objects.filter(pk=recording.pk, state=RecordingState.UPLOADING).delete()
            # The copy's own upload_started event names the recording id dropped here.
            audit_record(
                actor=upload.dock,
                action="recording.upload_duplicate",
                obj=existing,
                detail={
                    "upload": str(upload.id),
                    "transfer": "complete",
                    "copy": str(recording.pk),
                },
            )
    upload.refresh_from_db()
    return upload


def _queue_filmstrip(recording_id: str) -> None:
    """The filmstrip decodes the whole clip: a worker makes it once the recording is stored (by
    the task's name, since the tasks module imports this one). A broker that is down loses no
    clip: the player works without a filmstrip and `make_missing_filmstrips` makes it later."""
    try:
        current_app.send_task(FILMSTRIP_TASK, args=[recording_id])
    except Exception:
        log.warning("the filmstrip of %s was not queued", recording_id, exc_info=True)


def _reject(upload: IngestUpload, reason: str) -> None:
    """Mark an upload rejected and remove its half-made recording (objects already removed)."""
    with transaction.atomic():
        recording = upload.recording
        IngestUpload.objects.filter(pk=upload.pk).update(
            state=IngestUpload.State.FAILED,
            error=reason[:2000],
            recording=None,
            hash_state=b"",
            pending=b"",
            lease_token=None,
            lease_until=None,
        )
        if recording is not None:
            Recording.objects.filter(pk=recording.pk, state=RecordingState.UPLOADING).delete()
            audit_record(
                actor=upload.dock,
                action="recording.upload_rejected",
                object_type="evidence.recording",
                object_id=str(recording.pk),
                borough=recording.borough,
                justification=reason,
                detail={"upload": str(upload.id)},
            )
    upload.refresh_from_db()


def upload_terminate(*, upload_id: uuid.UUID, dock: Dock, reason: str = "terminated by the dock"):
    """tus termination, and the end of expired uploads: drop what was stored, keep the record."""
    upload = upload_for_dock(upload_id=upload_id, dock=dock)
    _abandon(upload, reason=reason)


def _abandon(upload: IngestUpload, *, reason: str) -> None:
    if upload.state != IngestUpload.State.ACTIVE:
        raise IngestError("only an unfinished upload can be terminated", 409)
    release = _claim_lock(upload.pk)
    if release is None:
        raise IngestError("another request is writing this upload; retry shortly", 423)
    try:
        upload.refresh_from_db()
        if upload.state != IngestUpload.State.ACTIVE:
            raise IngestError("only an unfinished upload can be terminated", 409)
        recording = upload.recording
        if upload.multipart_id and recording is not None:
            blob_store().multipart_abort(recording.storage_key, upload.multipart_id)
        _reject(upload, reason)
    finally:
        release()


def expire_abandoned_uploads(*, now: datetime | None = None, limit: int = 500) -> int:
    """Drop uploads whose dock gave up (past `expires_at`). Returns how many."""
    now = now or timezone.now()
    done = 0
    expired = IngestUpload.objects.filter(
        state=IngestUpload.State.ACTIVE, expires_at__lte=now
    ).select_related("recording", "dock")[:limit]
    for upload in expired:
        try:
            _abandon(upload, reason="expired: the upload was not finished in time")
            done += 1
        except (IngestError, StorageUnavailable) as exc:
            log.warning("could not expire upload %s: %s", upload.pk, exc)
    return done
