"""The redaction editor's assists: a tracker that follows a box forward through the clip, and a
preview of one redacted frame.

Guarantees:
- the original is only read, through the decrypting reader: no plaintext copy is written;
- the tracker only proposes keyframes, inside the picture, for the editor to add to a box a
  person drew or accepted; it never follows for more than `MAX_TRACK_SECONDS`;
- a preview is drawn by the same code as the redacted copy (`parse_spec`, `apply_boxes`) on the
  frame shown at its time; it shows the original around the boxes, so it is a consultation of the
  original and is audited, with its time, its boxes and the picture's SHA-256.
"""

from __future__ import annotations

import hashlib
import math
from typing import TYPE_CHECKING

from django.db import transaction

from custody.services import audit_record
from evidence.media import PlaintextReader
from evidence.models import Recording
from evidence.redaction import RedactionError, apply_boxes, parse_spec

if TYPE_CHECKING:
    import numpy as np

MAX_TRACK_SECONDS = 60.0


def _open(recording: Recording):
    import av  # PyAV and NumPy load on first use: most web workers never edit a redaction

    try:
        container = av.open(PlaintextReader(recording), mode="r", options={"probesize": "5000000"})
    except (av.error.FFmpegError, ValueError, OSError) as exc:
        raise RedactionError(f"the recording cannot be read: {exc}") from None
    if not container.streams.video:
        container.close()
        raise RedactionError("the recording has no picture")
    return container


def _size(recording: Recording, video) -> tuple[int, int]:
    info = recording.media_info or {}
    width = int(info.get("width") or video.codec_context.width)
    height = int(info.get("height") or video.codec_context.height)
    return width, height


def _check_time(recording: Recording, t: float, what: str) -> float:
    duration = float(recording.duration_seconds or 0)
    if not isinstance(t, int | float) or isinstance(t, bool) or not math.isfinite(t):
        raise RedactionError(f"the {what} is a number of seconds from the clip's start")
    if t < 0 or (duration and t > duration):
        raise RedactionError(f"the {what} must be within the clip (0 to {duration:g} seconds)")
    return float(t)


def _frames_from(container, video, t: float):
    """Decoded frames from the one shown at `t` (the last whose time is not after it) onwards."""
    import av

    wanted = t + 0.0005  # a browser reports a time inside the frame it shows
    if video.time_base is not None:
        container.seek(int(max(0.0, t) / video.time_base), stream=video)
    shown = None
    try:
        for frame in container.decode(video):
            if shown is None or frame.time is None or frame.time <= wanted:
                shown = frame
                continue
            yield shown
            shown = frame
    except av.error.FFmpegError as exc:
        raise RedactionError(f"the recording cannot be decoded: {exc}") from None
    if shown is not None:
        yield shown


def _png(image: np.ndarray) -> bytes:
    import av
    import numpy as np

    frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(image), format="rgb24")
    encoder = av.CodecContext.create("png", "w")
    encoder.width, encoder.height, encoder.pix_fmt = frame.width, frame.height, "rgb24"
    encoder.time_base = av.time_base
    return b"".join(bytes(p) for p in [*encoder.encode(frame), *encoder.encode(None)])


def redaction_preview(
    *, recording: Recording, actor, at_seconds: float, boxes: list, purpose: str
) -> bytes:
    """A PNG of the frame shown at `at_seconds` with `boxes` (a specification's boxes) drawn as
    the redacted copy would draw them; audited as a consultation of the original."""
    at = _check_time(recording, at_seconds, "preview's time")
    with _open(recording) as container:
        video = container.streams.video[0]
        width, height = _size(recording, video)
        parsed, _mutes = parse_spec(
            boxes=boxes,
            mutes=[],
            width=width,
            height=height,
            duration=float(recording.duration_seconds or 0) or 1e9,
        )
        frame = next(_frames_from(container, video, at), None)
        if frame is None:
            raise RedactionError("the recording has no frame at that time")
        frame_time = float(frame.time or 0.0)
        # Drawn at the time asked for, which is inside the frame shown: as the player shows it.
        image = apply_boxes(frame.to_ndarray(format="rgb24"), max(at, frame_time), parsed)
    png = _png(image)
    with transaction.atomic():
        audit_record(
            actor=actor,
            action="recording.redaction_previewed",
            obj=recording,
            justification=(purpose or "").strip()[:500],
            detail={
                "at_seconds": round(at, 3),
                "frame_seconds": round(frame_time, 3),
                "boxes": [b.as_dict() for b in parsed],
                "sha256": hashlib.sha256(png).hexdigest(),
                "bytes": len(png),
            },
        )
    return png


def _tracker():
    """OpenCV's MIL tracker where the build has it; None to fall back to optical flow."""
    import cv2  # start-up cost: OpenCV loads only when someone tracks a box

    make = getattr(cv2, "TrackerMIL_create", None) or getattr(
        getattr(cv2, "TrackerMIL", None), "create", None
    )
    return make() if make else None


def _flow_step(cv2, previous, current, rect):
    """Move `rect` by the median optical flow of good corners inside it (the fallback)."""
    import numpy as np

    x, y, w, h = rect
    mask = np.zeros_like(previous)
    mask[y : y + h, x : x + w] = 255
    points = cv2.goodFeaturesToTrack(previous, 50, 0.01, 3, mask=mask)
    if points is None:
        return rect
    moved, status, _err = cv2.calcOpticalFlowPyrLK(previous, current, points, None)
    good = status.reshape(-1) == 1
    if not good.any():
        return rect
    dx, dy = np.median((moved - points).reshape(-1, 2)[good], axis=0)
    return int(round(x + dx)), int(round(y + dy)), w, h


def track_box(
    *,
    recording: Recording,
    t: float,
    rect: tuple[int, int, int, int],
    until: float,
    every_frames: int = 5,
) -> list[dict]:
    """Follow the region `rect` (x, y, w, h) from the frame shown at `t` to `until`; the keyframes
    `{"t", "x", "y", "w", "h"}` every `every_frames` frames and at the last frame before `until`,
    each kept inside the picture. The place at `t` is the one given, so it is not among them."""
    import cv2  # start-up cost, as in _tracker

    start = _check_time(recording, t, "tracking's start")
    end = _check_time(recording, until, "tracking's end")
    if end <= start:
        raise RedactionError("tracking goes forward: its end must come after its start")
    end = min(end, start + MAX_TRACK_SECONDS)
    x, y, w, h = (int(v) for v in rect)
    keyframes = []
    with _open(recording) as container:
        video = container.streams.video[0]
        width, height = _size(recording, video)
        if w <= 0 or h <= 0 or x < 0 or y < 0 or x + w > width or y + h > height:
            raise RedactionError(f"the box must be inside the {width}x{height} picture")
        tracker, previous, last = _tracker(), None, None
        for index, frame in enumerate(_frames_from(container, video, start)):
            frame_time = float(frame.time or 0.0)
            if index and frame_time >= end:
                break
            if index == 0:
                if tracker is not None:
                    tracker.init(frame.to_ndarray(format="bgr24"), (x, y, w, h))
                else:
                    previous = frame.to_ndarray(format="gray")
                continue
            if tracker is not None:
                found, box = tracker.update(frame.to_ndarray(format="bgr24"))
                if found:
                    x, y = int(round(box[0])), int(round(box[1]))
            else:
                current = frame.to_ndarray(format="gray")
                x, y, w, h = _flow_step(cv2, previous, current, (x, y, w, h))
                previous = current
            x, y = min(max(0, x), width - w), min(max(0, y), height - h)
            last = {"t": round(frame_time, 3), "x": x, "y": y, "w": w, "h": h}
            if index % every_frames == 0:
                keyframes.append(last)
                last = None
    if last is not None:
        keyframes.append(last)
    return keyframes
