"""The dock client: uploads every clip of a docked camera and wipes a clip only once it is verified.

    bwv-dock --server https://bwv.example --camera CAM-00123 /media/camera
    (the key comes from BWV_DOCK_KEY or --key-file; never on the command line of a shared machine)

For each clip in the folder (oldest first) it uploads it with tus (tuspy), hashing the bytes as it
sends them and declaring the SHA-256 with the last ones, resuming after a kill or a dropped link
from the offset the server confirmed, then asks the server whether it has verified the clip's
SHA-256, and deletes the local clip only then. A clip the server rejects
is kept and reported. Log lines go to stderr; the exit code is 0 when every clip was verified,
1 when any was not, 2 on a usage error. Several clients may run at once, one per camera folder.

A server that cannot be reached, is restarting, or answers 503 (its database or storage is down) or
423 (an earlier request of ours is still being written) is retried with exponential backoff and
jitter for up to --retry-minutes (default 10) of failures in a row; every request that makes
progress starts the count again. The state file keeps only each upload's id: the URL is rebuilt
from --server, so a server that moves keeps its uploads (a state file of an older version, with
whole URLs, still resumes).

Clip times come from a sidecar `<clip>.json` ({"start": ..., "end": ..., "gps": "lat,lon"}) when
the camera writes one, else from the container's creation time and duration. A clip with neither
(a camera whose clock was never set) is still uploaded, timed by the file's modification time and
sent with `time_source=file`: the server keeps it as clock suspect instead of it staying on the
camera for ever.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import fcntl
import hashlib
import json
import logging
import os
import random
import re
import sys
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import requests
from tusclient import client as tus_client
from tusclient.exceptions import TusCommunicationError, TusUploadFailed
from tusclient.fingerprint.interface import Fingerprint
from tusclient.request import TusRequest
from tusclient.storage.interface import Storage
from tusclient.uploader import Uploader

from bwv_dock.mp4 import NotMp4, movie_header

log = logging.getLogger("bwv.dock")

CLIP_SUFFIXES = {".mp4", ".mov", ".mkv", ".avi", ".m4v"}
STATE_FILE = ".bwv-dock-state.json"
# Each PATCH is streamed from disk, so a large chunk costs no memory. Without per-chunk checksums
# the server keeps every byte that arrives (a dropped link loses nothing) and the whole-file
# SHA-256 is verified before the clip may be wiped; with --chunk-checksums each PATCH counts only
# whole, so chunks are then kept smaller.
CHUNK_SIZE = 1024 * 1024 * 1024
CHECKSUM_CHUNK_SIZE = 64 * 1024 * 1024
# The clip is hashed as it is sent, so the hash is known only after its last byte has been read;
# the server needs it with the PATCH that completes the upload (headers go before the body). The
# last PATCH is therefore kept this small: its bytes are read twice, the rest once.
LAST_CHUNK_SIZE = 1024 * 1024


class ClipError(Exception):
    """This clip could not be uploaded and verified; it is kept on the camera."""


class JsonStateStorage(Storage):
    """tuspy URL storage in one JSON file in the camera folder, so a rerun resumes each clip.

    It keeps the upload's id, not its URL: the URL is built from the server setting of the run that
    reads it (`upload_base`), so a server that has moved, or is reached by another name, still
    resumes the upload. Entries written as whole URLs by an older version are read the same way.
    """

    def __init__(self, path: Path, upload_base: str):
        self.path = path
        self.upload_base = upload_base.rstrip("/")

    @contextlib.contextmanager
    def _locked(self):
        with open(self.path.with_suffix(".lock"), "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            data = json.loads(self.path.read_text()) if self.path.exists() else {}
            yield data
            tmp = self.path.with_suffix(".tmp")
            tmp.write_text(json.dumps(data, indent=1))
            os.replace(tmp, self.path)

    def get_item(self, key):
        with self._locked() as data:
            upload_id = _upload_id(data.get(key))
        return f"{self.upload_base}/{upload_id}" if upload_id else None

    def set_item(self, key, value):
        if value is None:  # tuspy stores what it found, nothing included
            self.remove_item(key)
            return
        upload_id = _upload_id(value)
        if upload_id is None:
            raise ClipError(f"the server's upload URL {value!r} does not end in an upload id")
        with self._locked() as data:
            data[key] = upload_id

    def remove_item(self, key):
        with self._locked() as data:
            data.pop(key, None)

    def adopt_legacy(self, camera: str, clips: list[Path]) -> None:
        """Rekey the uploads an older version stored under `camera:<clip SHA-256>`, so they resume.
        Only then is a clip read whole before it is sent, and only once: entries that match no
        clip in the folder are dropped (their uploads expire on the server)."""
        with self._locked() as data:
            legacy = {
                m["sha"]: key
                for key in data
                if (m := LEGACY_KEY.match(key)) and m["camera"] == camera
            }
            if not legacy:
                return
            for path in clips:
                old = legacy.pop(file_sha256(path), None)
                if old is not None:
                    data[ClipFingerprint(camera, path).key] = data.pop(old)
                if not legacy:
                    break
            for old in legacy.values():
                data.pop(old, None)


def _upload_id(value: str | None) -> str | None:
    """The upload id in a stored entry: an id, or a whole URL ending in one (older versions)."""
    if not value:
        return None
    tail = value.rstrip("/").rsplit("/", 1)[-1]
    try:
        return str(uuid.UUID(tail))
    except ValueError:
        return None


class ClipFingerprint(Fingerprint):
    """A clip is known by its camera, name, size and modification time (not by its first 64 KiB,
    as by default, nor by its hash, which would cost reading it before sending it)."""

    def __init__(self, camera: str, path: Path):
        stat = path.stat()
        self.key = f"{camera}:{path.name}:{stat.st_size}:{stat.st_mtime_ns}"

    def get_fingerprint(self, fs):
        return self.key


LEGACY_KEY = re.compile(r"^(?P<camera>.+):(?P<sha>[0-9a-f]{64})$")


class ClipHash:
    """The clip's SHA-256, computed from the bytes as they are read to be sent.

    Each request starts at an offset the server confirmed: the hash is brought to exactly the bytes
    below it, by reading the file only where it has not seen them (a resumed upload), or by going
    back to where the previous request began when the server kept less than was sent."""

    def __init__(self, path: Path):
        self.path = path
        self.hash = hashlib.sha256()
        self.position = 0
        self.mark = (0, self.hash.copy())

    def start(self, offset: int) -> None:
        """A request sends the bytes from `offset`: hash exactly the bytes below it."""
        if offset < self.position:
            mark_at, mark = self.mark
            if mark_at <= offset:
                self.hash, self.position = mark.copy(), mark_at
            else:
                self.hash, self.position = hashlib.sha256(), 0
        self.read_to(offset)
        self.mark = (offset, self.hash.copy())

    def read_to(self, end: int) -> None:
        """Hash the file's bytes from where the hash stands up to `end`, reading them."""
        with open(self.path, "rb") as f:
            f.seek(self.position)
            while self.position < end:
                block = f.read(min(4 << 20, end - self.position))
                if not block:
                    raise ClipError("the clip became shorter while it was being uploaded")
                self.feed(self.position, block)

    def feed(self, offset: int, data: bytes) -> None:
        """Bytes of the file at `offset`, read to be sent: hashed unless they were already."""
        if offset <= self.position < offset + len(data):
            self.hash.update(memoryview(data)[self.position - offset :])
            self.position = offset + len(data)

    def hexdigest(self) -> str:
        return self.hash.hexdigest()


class _FileSlice:
    """`length` bytes of an open file from its current position, read as requests sends them, and
    hashed as they are read."""

    def __init__(self, file, length: int, clip_hash: ClipHash):
        self.file, self.remaining, self.clip_hash = file, length, clip_hash

    def __len__(self) -> int:
        return self.remaining

    def read(self, size: int = -1) -> bytes:
        # Hand out up to 1 MiB whatever the caller's block size: fewer, larger socket writes.
        size = self.remaining if size is None or size < 0 else max(size, 1 << 20)
        offset = self.file.tell()
        data = self.file.read(min(size, self.remaining))
        self.clip_hash.feed(offset, data)
        self.remaining -= len(data)
        return data


class StreamingTusRequest(TusRequest):
    """tuspy's PATCH, streamed from disk instead of read whole into memory.

    The chunk is read once to compute its Upload-Checksum, then sent from the file: the client's
    memory stays small whatever the chunk size, so chunks can be large (fewer round trips). The
    clip's hash is fed from the first read of each byte.
    """

    clip_hash: ClipHash

    def perform(self):
        try:
            start = self.file.tell()
            self.clip_hash.start(start)
            if self._upload_checksum:
                digest = self._checksum_algorithm()
                remaining = self._content_length
                while remaining > 0:
                    block = self.file.read(min(remaining, 4 << 20))
                    if not block:
                        break
                    digest.update(block)
                    self.clip_hash.feed(start + self._content_length - remaining, block)
                    remaining -= len(block)
                self._request_headers["upload-checksum"] = (
                    f"{self._checksum_algorithm_name} "
                    f"{base64.b64encode(digest.digest()).decode('ascii')}"
                )
                self.file.seek(start)
            resp = requests.patch(
                self._url,
                data=_FileSlice(self.file, self._content_length, self.clip_hash),
                headers=self._request_headers,
                verify=self.verify_tls_cert,
                stream=True,
                cert=self.client_cert,
                timeout=(30, 600),
            )
            self.status_code = resp.status_code
            self.response_content = resp.content
            self.response_headers = {k.lower(): v for k, v in resp.headers.items()}
        except requests.exceptions.RequestException as error:
            raise TusUploadFailed(error) from error
        finally:
            self.file.close()


class Sha256Uploader(Uploader):
    CHECKSUM_ALGORITHM_PAIR = ("sha256", hashlib.sha256)
    clip_hash: ClipHash

    def _do_request(self):
        self.request = StreamingTusRequest(self)
        self.request.clip_hash = self.clip_hash
        size = self.get_file_size()
        if self.offset + self.request._content_length == size:
            # The PATCH that completes the upload declares the clip's hash: the bytes below it
            # were hashed as they were sent, its own (at most LAST_CHUNK_SIZE) are read here.
            self.clip_hash.start(self.offset)
            self.clip_hash.read_to(size)
            self.request._request_headers["Bwv-Clip-Sha256"] = self.clip_hash.hexdigest()
        try:
            self.request.perform()
            if not 200 <= self.request.status_code < 300:
                raise TusUploadFailed("", self.request.status_code, self.request.response_content)
        except TusUploadFailed as error:
            self._retry_or_cry(error)


def file_sha256(path: Path) -> str:
    """The clip's SHA-256, read whole: only for state left by a version that keyed uploads by it."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(4 << 20):
            h.update(chunk)
    return h.hexdigest()


def clip_times(path: Path) -> dict[str, str]:
    sidecar = path.with_suffix(".json")
    if sidecar.exists():
        meta = json.loads(sidecar.read_text())
        if "start" not in meta or "end" not in meta:
            raise ClipError(f"{sidecar.name} must give 'start' and 'end'")
        return {k: str(meta[k]) for k in ("start", "end", "gps") if meta.get(k)}
    try:
        with open(path, "rb") as f:
            start, duration = movie_header(f, path.stat().st_size)
    except NotMp4 as exc:
        # Not a file whose header we read (MKV, AVI, a damaged MP4): the server reads it as video
        # all the same; its time comes from the file, as below.
        log.warning("%s: %s", path.name, exc)
        start, duration = None, 0.0
    if start is None:
        # No time from the camera: the file's modification time (the camera's last write, so the
        # end of the clip) is the best there is. The server treats it as a suspect clock.
        log.warning("%s: no creation time in the clip; using the file's time", path.name)
        end = datetime.fromtimestamp(path.stat().st_mtime, tz=UTC)
        start = end - timedelta(seconds=duration)
        return {"start": start.isoformat(), "end": end.isoformat(), "time_source": "file"}
    return {"start": start.isoformat(), "end": (start + timedelta(seconds=duration)).isoformat()}


# Answers that mean "not now" rather than "no": the server is restarting or its database or storage
# is down (5xx), an earlier request of ours still holds the upload (423), the offset moved under us
# (409: ask again), too many requests (429), or the upload expired (410: the status check restarts it).
RETRYABLE_STATUSES = {409, 410, 423, 429}


class Backoff:
    """Exponential backoff with jitter, for up to `budget` seconds of failures in a row."""

    def __init__(self, *, budget: float, first: float, longest: float, attempts: int | None):
        self.budget, self.first, self.longest, self.attempts = budget, first, longest, attempts
        self.progress()

    def progress(self) -> None:
        """A request went through: the next failure starts a fresh count."""
        self.failures = 0
        self.since = time.monotonic()

    def wait(self) -> float | None:
        """Seconds to sleep before the next attempt, or None when it is time to give up."""
        self.failures += 1
        if self.attempts is not None and self.failures >= self.attempts:
            return None
        left = self.budget - (time.monotonic() - self.since)
        if left <= 0:
            return None
        ceiling = min(self.longest, self.first * 2 ** (self.failures - 1))
        # "Equal jitter": at least half the step, so docks that failed together spread out
        # without any of them hammering the server.
        return min(left, ceiling / 2 + random.uniform(0, ceiling / 2))  # noqa: S311


class Dock:
    def __init__(
        self,
        *,
        server: str,
        key: str,
        camera: str,
        folder: Path,
        progress: bool,
        retry_minutes: float = 10,
        retry_delay: float = 1.0,
        retry_max_delay: float = 60.0,
        retries: int | None = None,
        chunk_size: int = CHUNK_SIZE,
        chunk_checksums: bool = False,
    ):
        self.server = server.rstrip("/")
        self.camera = camera
        self.folder = folder
        self.retry_budget = retry_minutes * 60
        self.retry_delay = retry_delay
        self.retry_max_delay = retry_max_delay
        self.retries = retries
        self.progress = progress
        self.chunk_size = chunk_size
        self.chunk_checksums = chunk_checksums
        self.headers = {"Authorization": f"Bearer {key}"}
        self.client = tus_client.TusClient(f"{self.server}/api/v1/ingest/", headers=self.headers)
        self.storage = JsonStateStorage(folder / STATE_FILE, f"{self.server}/api/v1/ingest")

    def clips(self) -> list[Path]:
        found = [
            p for p in self.folder.iterdir() if p.is_file() and p.suffix.lower() in CLIP_SUFFIXES
        ]
        return sorted(found, key=lambda p: (p.stat().st_mtime, p.name))

    def _status(self, url: str) -> dict | None:
        resp = requests.get(url, headers={**self.headers, "Tus-Resumable": "1.0.0"}, timeout=60)
        if resp.status_code == 404:
            return None
        if resp.status_code != 200:
            raise TusCommunicationError(
                f"upload status: HTTP {resp.status_code}", resp.status_code, resp.content
            )
        return resp.json()

    def upload_clip(self, path: Path) -> str:
        """Upload one clip; returns the recording id once the server has verified it."""
        size = path.stat().st_size
        # No sha256 here: the hash is computed as the clip is sent and declared with its last byte.
        metadata = {"camera": self.camera, "filename": path.name, **clip_times(path)}
        fingerprint = ClipFingerprint(self.camera, path)
        clip_hash = ClipHash(path)
        backoff = Backoff(
            budget=self.retry_budget,
            first=self.retry_delay,
            longest=self.retry_max_delay,
            attempts=self.retries,
        )
        while True:
            try:
                return self._upload_attempt(path, size, clip_hash, metadata, fingerprint, backoff)
            except (
                TusCommunicationError,
                TusUploadFailed,
                requests.RequestException,
                OSError,
            ) as exc:
                status = getattr(exc, "status_code", None)
                detail = _detail(getattr(exc, "response_content", b"")) if status else str(exc)
                if status is not None and 400 <= status < 500 and status not in RETRYABLE_STATUSES:
                    raise ClipError(f"rejected by the server ({status}): {detail}") from None
                delay = backoff.wait()
                if delay is None:
                    raise ClipError(
                        f"gave up after {backoff.failures} failed attempts in a row: {detail}"
                    ) from None
                log.warning("%s: %s; retrying in %.1fs", path.name, detail, delay)
                time.sleep(delay)

    def _upload_attempt(
        self, path, size, clip_hash: ClipHash, metadata, fingerprint, backoff: Backoff
    ) -> str:
        key = fingerprint.key
        # The stored upload is checked before tuspy sees it: tuspy asks for its offset at once
        # and cannot tell an upload that is gone (start again) from a refusal.
        stored = self.storage.get_item(key)
        if stored:
            status = self._status(stored)
            if status is None or status["state"] == "failed":
                if status is not None and "expired" not in status.get("error", ""):
                    self.storage.remove_item(key)
                    raise ClipError(f"rejected by the server: {status['error']}")
                log.info("%s: previous upload is gone; starting again", path.name)
                self.storage.remove_item(key)
        # tuspy opens the file by path for each request (it closes streams it is given).
        uploader = Sha256Uploader(
            file_path=str(path),
            client=self.client,
            chunk_size=self.chunk_size,
            metadata=metadata,
            store_url=True,
            url_storage=self.storage,
            fingerprinter=fingerprint,
            upload_checksum=self.chunk_checksums,
        )
        uploader.clip_hash = clip_hash
        if not uploader.url:
            uploader.set_url(uploader.create_url())
        uploader.offset = uploader.get_offset()
        if uploader.offset:
            log.info("%s: resuming at %d of %d bytes", path.name, uploader.offset, size)
        bar = _progress(path.name, size, uploader.offset, enabled=self.progress)
        try:
            while uploader.offset < size:
                before = uploader.offset
                left = size - before
                # Stop short of the end so that the last PATCH is small (see LAST_CHUNK_SIZE).
                uploader.chunk_size = (
                    left
                    if left <= LAST_CHUNK_SIZE
                    else min(self.chunk_size, left - LAST_CHUNK_SIZE)
                )
                uploader.upload_chunk()
                backoff.progress()
                bar.update(uploader.offset - before)
        finally:
            bar.close()
        clip_hash.start(size)  # all of it, also when an earlier run had sent the last byte
        sha = clip_hash.hexdigest()
        status = self._status(uploader.url)
        if status is None or status["state"] != "complete" or status["sha256"] != sha:
            detail = status.get("error") if status else "upload not found"
            self.storage.remove_item(key)
            raise ClipError(f"the server did not verify the clip: {detail}")
        self.storage.remove_item(key)
        return status["recording"]

    def run(self) -> int:
        clips = self.clips()
        self.storage.adopt_legacy(self.camera, clips)
        log.info("camera %s: %d clip(s) to upload from %s", self.camera, len(clips), self.folder)
        failures = 0
        for path in clips:
            try:
                recording = self.upload_clip(path)
            except ClipError as exc:
                failures += 1
                log.error("%s: NOT uploaded, kept on the camera: %s", path.name, exc)
                continue
            except Exception:  # an unforeseen fault must not stop the other clips
                failures += 1
                log.exception("%s: NOT uploaded, kept on the camera", path.name)
                continue
            # Verified by the server: only now may the clip leave the camera.
            path.unlink()
            path.with_suffix(".json").unlink(missing_ok=True)
            log.info("%s: verified as recording %s; removed from the camera", path.name, recording)
        log.info("camera %s: %d verified, %d failed", self.camera, len(clips) - failures, failures)
        return 1 if failures else 0


def _detail(content) -> str:
    try:
        return json.loads(content)["detail"]
    except (ValueError, KeyError, TypeError):
        return (content or b"")[:200].decode("utf-8", "replace")


class _NoBar:
    def update(self, n):
        pass

    def close(self):
        pass


def _progress(name: str, total: int, initial: int, *, enabled: bool):
    if not enabled:
        return _NoBar()
    from tqdm import tqdm

    return tqdm(total=total, initial=initial, unit="B", unit_scale=True, desc=name, file=sys.stderr)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("folder", type=Path, help="the docked camera's storage")
    parser.add_argument("--server", default=os.environ.get("BWV_SERVER", "http://127.0.0.1:8000"))
    parser.add_argument("--camera", required=True, help="the camera's serial number")
    parser.add_argument(
        "--key-file", type=Path, help="file holding the dock key (else BWV_DOCK_KEY)"
    )
    parser.add_argument(
        "--retry-minutes",
        type=float,
        default=10.0,
        help="keep retrying a clip for this long after its last progress (default 10)",
    )
    parser.add_argument(
        "--retry-delay", type=float, default=1.0, help="first wait before a retry, in seconds"
    )
    parser.add_argument(
        "--retry-max-delay", type=float, default=60.0, help="longest wait between retries"
    )
    parser.add_argument(
        "--retries", type=int, default=None, help="also give up after this many failures in a row"
    )
    parser.add_argument("--no-progress", action="store_true")
    parser.add_argument(
        "--chunk-mib",
        type=int,
        default=None,
        help="bytes per PATCH request, in MiB (default 1024, 64 with checksums)",
    )
    parser.add_argument(
        "--chunk-checksums",
        action="store_true",
        help="send a SHA-256 Upload-Checksum with every PATCH",
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    key = args.key_file.read_text().strip() if args.key_file else os.environ.get("BWV_DOCK_KEY", "")
    if not key:
        parser.error("no dock key: set BWV_DOCK_KEY or pass --key-file")
    if not args.folder.is_dir():
        parser.error(f"{args.folder} is not a folder")
    dock = Dock(
        server=args.server,
        key=key,
        camera=args.camera,
        folder=args.folder,
        retry_minutes=args.retry_minutes,
        retry_delay=args.retry_delay,
        retry_max_delay=args.retry_max_delay,
        retries=args.retries,
        progress=not args.no_progress and sys.stderr.isatty(),
        chunk_size=(args.chunk_mib << 20)
        if args.chunk_mib
        else CHECKSUM_CHUNK_SIZE
        if args.chunk_checksums
        else CHUNK_SIZE,
        chunk_checksums=args.chunk_checksums,
    )
    return dock.run()
