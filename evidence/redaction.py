"""Redacted copies of recordings, and an assist that proposes face boxes.

Guarantees:
- the original recording is only read (decrypted to a private temporary file); the redaction is a
  new `DerivedRecording`, stored encrypted under its own data key, with its SHA-256 and the exact
  specification (boxes, their times and mode; muted audio ranges) it was made from;
- inside a box and its time range every pixel is replaced (blacked out, or pixelated beyond
  recognition); outside them the picture is re-encoded at high quality and otherwise unchanged;
  audio inside a muted range is silence;
- the copy is sealed in segments like an original and stored with a multipart upload, so neither
  rendering nor storing nor reading it holds the whole file in memory; a failed store leaves no
  object behind;
- the face assist only proposes boxes: a person confirms each before it is used; after a copy is
  rendered the detector runs again on it, and what it still finds is reported, not hidden.
"""

from __future__ import annotations

import bisect
import hashlib
import math
import tempfile
import uuid
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
from django.db import transaction
from django.utils import timezone

from blobstore import blob_store
from custody.services import audit_record
from evidence.crypto import SegmentCipher, new_data_key, open_blob, unwrap_data_key, wrap_data_key
from evidence.media import PlaintextReader, plaintext_range
from evidence.models import DerivedRecording, Recording

MODES = ("black", "pixelate", "blur")
# Bounds on a specification, so a hostile or broken editor cannot make rendering unbounded: a
# tracked box carries a keyframe every few frames of a long clip.
MAX_BOXES = 200
MAX_MUTES = 200
MAX_KEYFRAMES_PER_BOX = 5000
MAX_KEYFRAMES = 20000
# A copy is sealed in segments of the originals' size, stored in parts of PART_SEGMENTS segments:
# S3 wants every part but the last to be at least 5 MiB.
SEGMENT_SIZE = 1 << 20
PART_SEGMENTS = 5


class RedactionError(Exception):
    """A redaction that cannot be made as asked, with a message for the person who asked."""


@dataclass(frozen=True)
class Keyframe:
    """Where a box is at one moment of the clip (seconds; pixels of the picture)."""

    t: float
    x: int
    y: int
    w: int
    h: int


@dataclass(frozen=True)
class Box:
    """A redacted region from `start` to `end` (seconds). Its place moves between its keyframes
    (linearly, a straight line from one to the next); before its first keyframe and after its last
    it stays where that keyframe puts it. A box drawn once is a box with one keyframe."""

    start: float
    end: float
    keyframes: tuple[Keyframe, ...]
    mode: str = "black"

    def rect_at(self, t: float) -> tuple[int, int, int, int] | None:
        """(x, y, w, h) of the box at time `t`, or None outside [start, end). An interpolated
        rectangle is rounded outwards: it never covers less than the straight line between the
        keyframes does."""
        if not self.start <= t < self.end:
            return None
        frames = self.keyframes
        if t <= frames[0].t:
            k = frames[0]
            return k.x, k.y, k.w, k.h
        if t >= frames[-1].t:
            k = frames[-1]
            return k.x, k.y, k.w, k.h
        i = bisect.bisect_right([k.t for k in frames], t)
        a, b = frames[i - 1], frames[i]
        f = (t - a.t) / (b.t - a.t)
        left, top = a.x + (b.x - a.x) * f, a.y + (b.y - a.y) * f
        right = a.x + a.w + (b.x + b.w - a.x - a.w) * f
        bottom = a.y + a.h + (b.y + b.h - a.y - a.h) * f
        x, y = math.floor(left), math.floor(top)
        return x, y, math.ceil(right) - x, math.ceil(bottom) - y

    def as_dict(self) -> dict:
        """The box as it is stored in a redaction's specification and audit event."""
        return {
            "start": self.start,
            "end": self.end,
            "mode": self.mode,
            "keyframes": [k.__dict__ for k in self.keyframes],
        }


def _keyframes(b: dict, width: int, height: int) -> tuple[Keyframe, ...]:
    """A box's keyframes: its `keyframes` list, or (the one-place form) its own x, y, w, h at its
    start. Sorted by time; two at the same time are refused."""
    raw = b["keyframes"] if "keyframes" in b else [{**b, "t": b["start"]}]
    if not isinstance(raw, list) or not raw:
        raise RedactionError("a box needs at least one keyframe")
    if len(raw) > MAX_KEYFRAMES_PER_BOX:
        raise RedactionError(f"a box has at most {MAX_KEYFRAMES_PER_BOX} keyframes")
    frames = []
    for k in raw:
        try:
            frame = Keyframe(float(k["t"]), int(k["x"]), int(k["y"]), int(k["w"]), int(k["h"]))
        except (KeyError, TypeError, ValueError):
            raise RedactionError("each keyframe needs t, x, y, w and h") from None
        if not math.isfinite(frame.t) or frame.t < 0:
            raise RedactionError("a keyframe's time is a number of seconds from the clip's start")
        if frame.w <= 0 or frame.h <= 0 or frame.x < 0 or frame.y < 0:
            raise RedactionError("a box needs a positive size inside the picture")
        if frame.x + frame.w > width or frame.y + frame.h > height:
            raise RedactionError(f"a box goes outside the {width}x{height} picture")
        frames.append(frame)
    frames.sort(key=lambda k: k.t)
    if any(a.t == b.t for a, b in zip(frames, frames[1:], strict=False)):
        raise RedactionError("a box has two keyframes at the same time")
    return tuple(frames)


def parse_spec(*, boxes: list[dict], mutes: list[dict], width: int, height: int, duration: float):
    """Check a redaction specification against the clip; returns (boxes, mutes).

    A box is `{"start", "end", "mode", "keyframes": [{"t", "x", "y", "w", "h"}, ...]}`, or the
    one-place form `{"start", "end", "x", "y", "w", "h", "mode"}`; a muted range is
    `{"start", "end"}`. Times are seconds from the clip's start; mode is black, pixelate or blur."""
    if not isinstance(boxes, list) or not isinstance(mutes, list):
        raise RedactionError("boxes and muted ranges are lists")
    if not boxes and not mutes:
        raise RedactionError("a redaction needs at least one box or one muted range")
    if len(boxes) > MAX_BOXES or len(mutes) > MAX_MUTES:
        raise RedactionError(f"at most {MAX_BOXES} boxes and {MAX_MUTES} muted ranges")
    out, total = [], 0
    for b in boxes:
        if not isinstance(b, dict):
            raise RedactionError("each box is an object with its times and place")
        try:
            start, end = float(b["start"]), float(b["end"])
        except (KeyError, TypeError, ValueError):
            raise RedactionError("each box needs start, end, x, y, w and h") from None
        mode = b.get("mode", "black")
        if mode not in MODES:
            raise RedactionError(f"a box is blacked out, pixelated or blurred, not {mode!r}")
        if not (math.isfinite(start) and math.isfinite(end)):
            raise RedactionError("a box's time range must be within the clip, start before end")
        if not (0 <= start < end) or start > duration:
            raise RedactionError("a box's time range must be within the clip, start before end")
        frames = _keyframes(b, width, height)
        total += len(frames)
        if total > MAX_KEYFRAMES:
            raise RedactionError(f"at most {MAX_KEYFRAMES} keyframes in one redaction")
        out.append(Box(start, end, frames, mode))
    ranges = []
    for m in mutes:
        try:
            start, end = float(m["start"]), float(m["end"])
        except (KeyError, TypeError, ValueError):
            raise RedactionError("each muted range needs start and end in seconds") from None
        if not (math.isfinite(start) and math.isfinite(end)) or not 0 <= start < end:
            raise RedactionError("a muted range must start before it ends")
        ranges.append((start, end))
    return out, ranges


def _blur(region: np.ndarray) -> None:
    """Beyond recognition, not a soft focus: averaged down to blocks of about 12 pixels (as
    pixelation does), then smoothed so the blocks do not show."""
    import cv2  # loaded only where a blur is drawn

    h, w = region.shape[:2]
    small = cv2.resize(region, (max(1, w // 12), max(1, h // 12)), interpolation=cv2.INTER_AREA)
    big = cv2.resize(small, (w, h), interpolation=cv2.INTER_LINEAR)
    k = max(3, (min(w, h) // 4) | 1)
    region[:] = cv2.GaussianBlur(big, (k, k), 0)


def apply_boxes(image: np.ndarray, t: float, boxes: list[Box]) -> np.ndarray:
    """Draw the boxes active at time `t` onto an RGB frame (in place; returned for chaining)."""
    height, width = image.shape[:2]
    for b in boxes:
        rect = b.rect_at(t)
        if rect is None:
            continue
        x, y, w, h = rect
        x0, y0, x1, y1 = max(0, x), max(0, y), min(width, x + w), min(height, y + h)
        if x1 <= x0 or y1 <= y0:
            continue
        region = image[y0:y1, x0:x1]
        if b.mode == "black":
            region[:] = 0
        elif b.mode == "blur":
            _blur(region)
        else:  # pixelate into 16-pixel blocks: averages, not recoverable detail
            for by in range(0, y1 - y0, 16):
                for bx in range(0, x1 - x0, 16):
                    block = region[by : by + 16, bx : bx + 16]
                    block[:] = block.reshape(-1, block.shape[-1]).mean(axis=0)
    return image


def _decrypt_to(recording: Recording, path: Path) -> None:
    reader = PlaintextReader(recording)
    with open(path, "wb") as out:
        while chunk := reader.read(1 << 20):
            out.write(chunk)


def render_redaction(
    source: Path, dest: Path, boxes: list[Box], mutes, *, progress=None, duration: float = 0.0
) -> None:
    """Re-encode `source` into `dest` with the boxes drawn and the ranges muted (PyAV). Frames are
    decoded, drawn on and encoded one at a time: memory does not grow with the clip's length.
    `progress(fraction)` is called as the picture advances, when the duration is known."""
    with (
        av.open(str(source)) as src,
        av.open(str(dest), mode="w", format="mp4", options={"movflags": "+faststart"}) as out,
    ):
        vin = src.streams.video[0]
        ain = src.streams.audio[0] if src.streams.audio else None
        rate = vin.average_rate or Fraction(25, 1)
        vout = out.add_stream("libx264", rate=rate)
        vout.width, vout.height, vout.pix_fmt = (
            vin.codec_context.width,
            vin.codec_context.height,
            "yuv420p",
        )
        vout.options = {"crf": "12", "preset": "veryfast"}
        aout = None
        if ain is not None:
            aout = out.add_stream("aac", rate=ain.codec_context.sample_rate)
            aout.layout = ain.codec_context.layout.name
        streams = [vin] + ([ain] if ain is not None else [])
        index = 0
        for packet in src.demux(*streams):
            for frame in packet.decode():
                t = float(frame.pts * frame.time_base) if frame.pts is not None else 0.0
                if packet.stream.type == "video":
                    image = apply_boxes(frame.to_ndarray(format="rgb24"), t, boxes)
                    new = av.VideoFrame.from_ndarray(image, format="rgb24").reformat(
                        format="yuv420p"
                    )
                    new.pts, new.time_base = index, Fraction(1, 1) / rate
                    index += 1
                    out.mux(vout.encode(new))
                    if progress is not None and duration > 0:
                        progress(min(1.0, t / duration))
                elif aout is not None:
                    if any(
                        start < t + frame.samples / frame.sample_rate and t < end
                        for start, end in mutes
                    ):
                        samples = frame.to_ndarray()
                        times = t + np.arange(samples.shape[-1]) / frame.sample_rate
                        silent = np.zeros_like(times, dtype=bool)
                        for start, end in mutes:
                            silent |= (times >= start) & (times < end)
                        samples[..., silent] = 0
                        rebuilt = av.AudioFrame.from_ndarray(
                            samples, format=frame.format.name, layout=frame.layout.name
                        )
                        rebuilt.sample_rate = frame.sample_rate
                        frame = rebuilt
                    frame.pts = None
                    out.mux(aout.encode(frame))
        out.mux(vout.encode(None))
        if aout is not None:
            out.mux(aout.encode(None))


@dataclass(frozen=True)
class SealedCopy:
    """A derived file sealed and stored in segments, not yet recorded in the database."""

    id: uuid.UUID
    storage_key: str
    size_bytes: int
    sha256: str
    segment_size: int
    kek_id: str
    wrapped_key: bytes


def seal_file_to_store(
    path: Path, *, object_id: uuid.UUID, storage_key: str, on_upload_started=None, progress=None
) -> SealedCopy:
    """Seal a file in the segmented layout of originals (under a new data key bound to
    `object_id`) and store it with a multipart upload, one part of PART_SEGMENTS segments at a
    time: memory is one part, whatever the file's size. On any failure the multipart upload is
    aborted, so nothing is left under `storage_key`. `on_upload_started(upload_id)` lets the caller
    record the upload before any part is sent (to clean up after a worker that died)."""
    key = new_data_key()
    kek_id, wrapped = wrap_data_key(key, object_id=object_id)
    cipher = SegmentCipher(key=key, object_id=object_id, segment_size=SEGMENT_SIZE)
    size = path.stat().st_size
    count = cipher.segment_count(size)
    store = blob_store()
    upload_id = store.multipart_start(storage_key)
    if on_upload_started is not None:
        on_upload_started(upload_id)
    digest = hashlib.sha256()
    try:
        segment = bytearray(SEGMENT_SIZE)
        part = bytearray(cipher.sealed_size * PART_SEGMENTS)
        part_view = memoryview(part)
        parts, fill, number, offset, read = [], 0, 1, 0, 0
        with open(path, "rb") as source:
            for index in range(count):
                n = source.readinto(segment)
                read += n
                plain = memoryview(segment)[:n]
                digest.update(plain)
                last = index == count - 1
                fill += cipher.seal_into(index, plain, last=last, out=part_view[fill:])
                if last or (index + 1) % PART_SEGMENTS == 0:
                    etag = store.multipart_put(
                        storage_key, upload_id, number, offset, bytes(part_view[:fill])
                    )
                    parts.append([number, etag])
                    number, offset, fill = number + 1, offset + fill, 0
                    if progress is not None:
                        progress((index + 1) / count)
        if read != size:
            raise RedactionError("the rendered file changed while it was being stored")
        store.multipart_complete(storage_key, upload_id, parts)
    except BaseException:
        store.multipart_abort(storage_key, upload_id)
        raise
    return SealedCopy(
        id=object_id,
        storage_key=storage_key,
        size_bytes=size,
        sha256=digest.hexdigest(),
        segment_size=SEGMENT_SIZE,
        kek_id=kek_id,
        wrapped_key=wrapped,
    )


def derived_storage_key(derived_id: uuid.UUID) -> str:
    return f"derived/{derived_id}/media"


def redaction_render(
    *,
    recording: Recording,
    boxes: list[Box],
    mutes,
    derived_id: uuid.UUID,
    on_upload_started=None,
    progress=None,
) -> tuple[SealedCopy, list[dict]]:
    """Render a redacted copy of a recording and store it sealed; returns the stored copy and the
    faces the detector still finds in it. On disk: the decrypted original and the rendered file,
    in a private temporary directory removed on the way out; in memory: a frame and a part.
    `progress(fraction)` is told how far it is (render 0-0.8, face check 0.8-0.9, store 0.9-1)."""

    def stage(lo: float, hi: float):
        return None if progress is None else (lambda f: progress(lo + (hi - lo) * f))

    duration = float(recording.duration_seconds or 0)
    with tempfile.TemporaryDirectory(prefix="bwv-redact-") as tmp:
        source, dest = Path(tmp) / "original.mp4", Path(tmp) / "redacted.mp4"
        _decrypt_to(recording, source)
        render_redaction(source, dest, boxes, mutes, progress=stage(0, 0.8), duration=duration)
        faces = faces_in_file(dest, progress=stage(0.8, 0.9), duration=duration)
        copy = seal_file_to_store(
            dest,
            object_id=derived_id,
            storage_key=derived_storage_key(derived_id),
            on_upload_started=on_upload_started,
            progress=stage(0.9, 1.0),
        )
    return copy, faces


def redaction_spec(recording: Recording, boxes: list[Box], mutes) -> dict:
    """The specification stored with a copy and in its audit event."""
    return {
        "boxes": [b.as_dict() for b in boxes],
        "mutes": [list(r) for r in mutes],
        "original_sha256": recording.sha256,
    }


def redaction_check(*, recording: Recording, boxes: list[dict], mutes: list[dict]):
    """Check a specification against the recording, as the web request does before a job is
    queued; returns (boxes, mutes) parsed. The picture's size comes from the probe, or (for a
    recording probed before sizes were kept) from the stream's header, read through the decrypting
    reader without fetching the rest."""
    info = recording.media_info or {}
    width, height = int(info.get("width") or 0), int(info.get("height") or 0)
    if not width:
        try:
            with av.open(PlaintextReader(recording), mode="r") as probe:
                ctx = probe.streams.video[0].codec_context
                width, height = ctx.width, ctx.height
        except (av.FFmpegError, IndexError):
            raise RedactionError("the recording's picture cannot be read") from None
    duration = float(recording.duration_seconds or 0)
    return parse_spec(
        boxes=boxes, mutes=mutes, width=width, height=height, duration=duration or 1e9
    )


@transaction.atomic
def derived_record(
    *, copy: SealedCopy, recording: Recording, spec: dict, actor, purpose: str
) -> DerivedRecording:
    """Record a stored copy and audit it as an alteration of the recording's footage."""
    derived = DerivedRecording.objects.create(
        id=copy.id,
        original=recording,
        spec=spec,
        storage_key=copy.storage_key,
        size_bytes=copy.size_bytes,
        segment_size=copy.segment_size,
        sha256=copy.sha256,
        kek_id=copy.kek_id,
        wrapped_key=copy.wrapped_key,
        created_by=actor,
        created_at=timezone.now(),
    )
    audit_record(
        actor=actor,
        action="recording.redacted",
        obj=recording,
        justification=purpose,
        detail={"derived": str(derived.id), "sha256": derived.sha256, **spec},
    )
    return derived


def redaction_create(
    *, recording: Recording, boxes: list[dict], mutes: list[dict], actor, purpose: str
) -> DerivedRecording:
    """Make a redacted copy there and then (a worker's job: the disclosure pages queue one, see
    requests_portal.tasks). The rendering and storing happen before the transaction; only the
    record and the audit are in it. Should recording them fail, the stored object is deleted."""
    parsed, ranges = redaction_check(recording=recording, boxes=boxes, mutes=mutes)
    derived_id = uuid.uuid4()
    copy, _faces = redaction_render(
        recording=recording, boxes=parsed, mutes=ranges, derived_id=derived_id
    )
    try:
        return derived_record(
            copy=copy,
            recording=recording,
            spec=redaction_spec(recording, parsed, ranges),
            actor=actor,
            purpose=purpose,
        )
    except BaseException:
        blob_store().delete_many([copy.storage_key])
        raise


def derived_bytes(derived: DerivedRecording) -> bytes:
    """The whole plaintext of a copy, in memory: for small copies and tests. Serve and export
    with `derived_chunks`, which streams."""
    return b"".join(derived_chunks(derived))


def _legacy_blob(derived: DerivedRecording) -> bytes:
    key = unwrap_data_key(derived.wrapped_key, kek_id=derived.kek_id, object_id=derived.id)
    return open_blob(
        key,
        object_id=derived.id,
        purpose="derived",
        sealed=blob_store().get(derived.storage_key),
    )


def derived_chunks(derived: DerivedRecording, start: int = 0, end: int | None = None):
    """Yield the plaintext bytes [start, end) of a copy. A copy sealed in segments is read as an
    original is, a segment at a time; one made before that (one sealed blob) is opened whole and
    sliced, as it always was."""
    end = derived.size_bytes if end is None else end
    if derived.segment_size:
        yield from plaintext_range(derived, start, end)
    else:
        yield _legacy_blob(derived)[start:end]


def faces_in_file(
    path: Path, *, every_seconds: float = 1.0, limit: int = 100, progress=None, duration=0.0
) -> list[dict]:
    """Faces found by OpenCV's bundled Haar cascade in one frame per `every_seconds` of a video
    file: [{"t", "x", "y", "w", "h"}], as found (not padded). Frames are decoded one at a time."""
    import cv2  # start-up cost: OpenCV loads only when faces are looked for

    cascade = cv2.CascadeClassifier(cv2.data.haarcascades + "haarcascade_frontalface_default.xml")
    found: list[dict] = []
    with av.open(str(path)) as src:
        stream = src.streams.video[0]
        next_t = 0.0
        for frame in src.decode(stream):
            t = float(frame.pts * frame.time_base) if frame.pts is not None else 0.0
            if t < next_t:
                continue
            next_t = t + every_seconds
            if progress is not None and duration > 0:
                progress(min(1.0, t / duration))
            gray = frame.to_ndarray(format="gray")
            for x, y, w, h in cascade.detectMultiScale(
                gray, scaleFactor=1.1, minNeighbors=5, minSize=(24, 24)
            ):
                found.append({"t": round(t, 2), "x": int(x), "y": int(y), "w": int(w), "h": int(h)})
                if len(found) >= limit:
                    return found
    return found


def propose_face_boxes(recording: Recording, *, every_seconds: float = 1.0, limit: int = 100):
    """Faces found in one frame per `every_seconds` of a recording, as boxes covering that second,
    for a person to confirm. Padded by a fifth so a moving head stays in."""
    proposals = []
    with tempfile.TemporaryDirectory(prefix="bwv-faces-") as tmp:
        source = Path(tmp) / "original.mp4"
        _decrypt_to(recording, source)
        with av.open(str(source)) as src:
            ctx = src.streams.video[0].codec_context
            width, height = ctx.width, ctx.height
        for face in faces_in_file(source, every_seconds=every_seconds, limit=limit):
            t, x, y, w, h = face["t"], face["x"], face["y"], face["w"], face["h"]
            pad_w, pad_h = int(w * 0.2), int(h * 0.2)
            x0, y0 = max(0, x - pad_w), max(0, y - pad_h)
            proposals.append(
                {
                    "start": round(max(0.0, t - every_seconds / 2), 2),
                    "end": round(t + every_seconds, 2),
                    "x": int(x0),
                    "y": int(y0),
                    "w": int(min(width - x0, w + 2 * pad_w)),
                    "h": int(min(height - y0, h + 2 * pad_h)),
                    "mode": "pixelate",
                }
            )
    return proposals
