"""Redacted copies of recordings, and an assist that proposes face boxes.

Guarantees:
- the original recording is only read (decrypted to a private temporary file); the redaction is a
  new `DerivedRecording`, stored encrypted under its own data key, with its SHA-256 and the exact
  specification (boxes, their times and mode; muted audio ranges) it was made from;
- inside a box and its time range every pixel is replaced (blacked out, or pixelated beyond
  recognition); outside them the picture is re-encoded at high quality and otherwise unchanged;
  audio inside a muted range is silence;
- the face assist only proposes boxes: a person confirms each before it is used.
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
from evidence.crypto import new_data_key, open_blob, seal_blob, unwrap_data_key, wrap_data_key
from evidence.media import PlaintextReader
from evidence.models import DerivedRecording, Recording

MODES = ("black", "pixelate", "blur")
# Bounds on a specification, so a hostile or broken editor cannot make rendering unbounded: a
# tracked box carries a keyframe every few frames of a long clip.
MAX_BOXES = 200
MAX_MUTES = 200
MAX_KEYFRAMES_PER_BOX = 5000
MAX_KEYFRAMES = 20000


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


def render_redaction(source: Path, dest: Path, boxes: list[Box], mutes) -> None:
    """Re-encode `source` into `dest` with the boxes drawn and the ranges muted (PyAV)."""
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


def redaction_create(
    *, recording: Recording, boxes: list[dict], mutes: list[dict], actor, purpose: str
) -> DerivedRecording:
    """Make a redacted copy of a recording and store it encrypted; audited as an alteration.
    The rendering happens before the transaction; only the record and the audit are in it."""
    info = recording.media_info or {}
    width, height = int(info.get("width") or 0), int(info.get("height") or 0)
    duration = float(recording.duration_seconds or 0)
    with tempfile.TemporaryDirectory(prefix="bwv-redact-") as tmp:
        source, dest = Path(tmp) / "original.mp4", Path(tmp) / "redacted.mp4"
        _decrypt_to(recording, source)
        if not width:
            with av.open(str(source)) as probe:
                ctx = probe.streams.video[0].codec_context
                width, height = ctx.width, ctx.height
        parsed, ranges = parse_spec(
            boxes=boxes, mutes=mutes, width=width, height=height, duration=duration or 1e9
        )
        render_redaction(source, dest, parsed, ranges)
        data = dest.read_bytes()
    derived_id = uuid.uuid4()
    key = new_data_key()
    kek_id, wrapped = wrap_data_key(key, object_id=derived_id)
    storage_key = f"derived/{derived_id}/media"
    blob_store().put(
        storage_key, seal_blob(key, object_id=derived_id, purpose="derived", data=data)
    )
    spec = {
        "boxes": [b.as_dict() for b in parsed],
        "mutes": [list(r) for r in ranges],
        "original_sha256": recording.sha256,
    }
    with transaction.atomic():
        derived = DerivedRecording.objects.create(
            id=derived_id,
            original=recording,
            spec=spec,
            storage_key=storage_key,
            size_bytes=len(data),
            sha256=hashlib.sha256(data).hexdigest(),
            kek_id=kek_id,
            wrapped_key=wrapped,
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


def derived_bytes(derived: DerivedRecording) -> bytes:
    key = unwrap_data_key(derived.wrapped_key, kek_id=derived.kek_id, object_id=derived.id)
    return open_blob(
        key,
        object_id=derived.id,
        purpose="derived",
        sealed=blob_store().get(derived.storage_key),
    )


def propose_face_boxes(recording: Recording, *, every_seconds: float = 1.0, limit: int = 100):
    """Faces found by OpenCV's bundled Haar cascade in one frame per `every_seconds`, as boxes
    covering that second, for a person to confirm. Padded by a fifth so a moving head stays in."""
    import cv2  # start-up cost: OpenCV loads only when someone asks for face proposals

    cascade = cv2.CascadeClassifier(cv2.data.haarcascades + "haarcascade_frontalface_default.xml")
    proposals = []
    with tempfile.TemporaryDirectory(prefix="bwv-faces-") as tmp:
        source = Path(tmp) / "original.mp4"
        _decrypt_to(recording, source)
        with av.open(str(source)) as src:
            stream = src.streams.video[0]
            width, height = stream.codec_context.width, stream.codec_context.height
            next_t = 0.0
            for frame in src.decode(stream):
                t = float(frame.pts * frame.time_base) if frame.pts is not None else 0.0
                if t < next_t:
                    continue
                next_t = t + every_seconds
                gray = frame.to_ndarray(format="gray")
                for x, y, w, h in cascade.detectMultiScale(
                    gray, scaleFactor=1.1, minNeighbors=5, minSize=(24, 24)
                ):
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
                    if len(proposals) >= limit:
                        return proposals
    return proposals
