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

import hashlib
import tempfile
import uuid
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import TYPE_CHECKING

from django.db import transaction
from django.utils import timezone

from blobstore import blob_store
from custody.services import audit_record
from evidence.crypto import new_data_key, open_blob, seal_blob, unwrap_data_key, wrap_data_key
from evidence.media import PlaintextReader
from evidence.models import DerivedRecording, Recording

if TYPE_CHECKING:
    import numpy as np

MODES = ("black", "pixelate")


class RedactionError(Exception):
    """A redaction that cannot be made as asked, with a message for the person who asked."""


@dataclass(frozen=True)
class Box:
    start: float
    end: float
    x: int
    y: int
    w: int
    h: int
    mode: str = "black"


def parse_spec(*, boxes: list[dict], mutes: list[dict], width: int, height: int, duration: float):
    """Check a redaction specification against the clip; returns (boxes, mutes)."""
    if not boxes and not mutes:
        raise RedactionError("a redaction needs at least one box or one muted range")
    if len(boxes) > 200 or len(mutes) > 200:
        raise RedactionError("at most 200 boxes and 200 muted ranges")
    out = []
    for b in boxes:
        try:
            box = Box(
                float(b["start"]),
                float(b["end"]),
                int(b["x"]),
                int(b["y"]),
                int(b["w"]),
                int(b["h"]),
                b.get("mode", "black"),
            )
        except (KeyError, TypeError, ValueError):
            raise RedactionError("each box needs start, end, x, y, w and h") from None
        if box.mode not in MODES:
            raise RedactionError(f"a box is blacked out or pixelated, not {box.mode!r}")
        if not (0 <= box.start < box.end) or box.start > duration:
            raise RedactionError("a box's time range must be within the clip, start before end")
        if box.w <= 0 or box.h <= 0 or box.x < 0 or box.y < 0:
            raise RedactionError("a box needs a positive size inside the picture")
        if box.x + box.w > width or box.y + box.h > height:
            raise RedactionError(f"a box goes outside the {width}x{height} picture")
        out.append(box)
    ranges = []
    for m in mutes:
        try:
            start, end = float(m["start"]), float(m["end"])
        except (KeyError, TypeError, ValueError):
            raise RedactionError("each muted range needs start and end in seconds") from None
        if not 0 <= start < end:
            raise RedactionError("a muted range must start before it ends")
        ranges.append((start, end))
    return out, ranges


def _apply(image: np.ndarray, t: float, boxes: list[Box]) -> np.ndarray:
    for b in boxes:
        if b.start <= t < b.end:
            region = image[b.y : b.y + b.h, b.x : b.x + b.w]
            if b.mode == "black":
                region[:] = 0
            else:  # pixelate into 16-pixel blocks: averages, not recoverable detail
                for by in range(0, b.h, 16):
                    for bx in range(0, b.w, 16):
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
    # PyAV and NumPy load on first use: the web process imports this module for its pages, and
    # most web workers never render a redaction (each library is tens of MiB resident).
    import av
    import numpy as np

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
                    image = _apply(frame.to_ndarray(format="rgb24"), t, boxes)
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
    import av  # loads on first use (render_redaction says why)

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
        "boxes": [b.__dict__ for b in parsed],
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
    import av  # loads on first use (render_redaction says why)
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
