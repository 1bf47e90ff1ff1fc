"""A recording's filmstrip: small frames every few seconds, packed into one JPEG sprite, sealed
under the recording's data key like its poster, shown when the player's timeline is hovered.

Guarantees:
- The clip is read through the decrypting reader, one segment at a time: no plaintext copy is
  written and the clip is never held whole in memory.
- Idempotent: a recording that has its filmstrip is left alone; a run cut off before it recorded
  the filmstrip only left an object under the recording's own key, which the next run overwrites.
- A recording deleted (or claimed by the retention sweep) while its filmstrip was being made
  keeps no filmstrip: the key is recorded only on an available recording, in the same statement
  that checks it, and otherwise the object just written is deleted again. The sweep deletes the
  object of every filmstrip recorded before it claimed the recording.
- No storage call runs inside a database transaction.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

from django.db import transaction

from blobstore import blob_store
from custody.services import audit_record
from evidence.crypto import SegmentCipher, seal_blob
from evidence.media import PlaintextReader, recording_cipher
from evidence.models import Recording, RecordingState

if TYPE_CHECKING:
    import numpy as np

FRAME_WIDTH = 160
# A frame every few seconds; a long clip gets fewer, further apart, so the sprite stays small
# (at most MAX_FRAMES frames: 1,600 by about 2,700 pixels for 16:9).
INTERVAL_SECONDS = 2.0
MAX_FRAMES = 300
COLUMNS = 10
# Beyond this gap to the next frame wanted, seeking to the keyframe before it is cheaper than
# decoding every frame in between.
SEEK_GAP_SECONDS = 5.0


class FilmstripError(Exception):
    """The clip cannot give a filmstrip (no video, no frame decoded)."""


def filmstrip_interval(duration: float) -> float:
    return max(INTERVAL_SECONDS, math.ceil(duration / MAX_FRAMES))


def filmstrip_make(
    recording: Recording, *, cipher: SegmentCipher | None = None
) -> tuple[bytes, dict]:
    """The filmstrip of a recording as a JPEG sprite (frames left to right, then top to bottom),
    and its layout: interval, count, columns, width and height of a frame."""
    import av
    import numpy as np

    reader = PlaintextReader(recording, cipher=cipher)
    try:
        container = av.open(reader, mode="r", options={"probesize": "5000000"})
    except (av.error.FFmpegError, ValueError, OSError) as exc:
        raise FilmstripError(str(exc)) from None
    with container:
        video = next(iter(container.streams.video), None)
        if video is None or not video.codec_context.width or video.time_base is None:
            raise FilmstripError("there is no video stream")
        duration = float(recording.duration_seconds or 0) or (
            (container.duration or 0) / av.time_base
        )
        interval = filmstrip_interval(duration)
        wanted = max(1, math.ceil(duration / interval)) if duration > 0 else 1
        width = FRAME_WIDTH
        height = max(
            2, int(video.codec_context.height * width / video.codec_context.width) // 2 * 2
        )
        columns = min(COLUMNS, wanted)
        sprite = np.zeros((math.ceil(wanted / columns) * height, columns * width, 3), np.uint8)
        count = 0
        try:
            for index, frame in enumerate(_frames_at(container, video, interval, wanted)):
                row, col = divmod(index, columns)
                tile = frame.reformat(width=width, height=height, format="rgb24").to_ndarray()
                sprite[row * height : (row + 1) * height, col * width : (col + 1) * width] = tile
                count += 1
        except av.error.FFmpegError as exc:
            raise FilmstripError(f"no frame could be decoded: {exc}") from None
    if count == 0:
        raise FilmstripError("the video stream has no frames")
    if count < columns:  # the clip ended before the last frame its length promised
        columns = count
    sprite = sprite[: math.ceil(count / columns) * height, : columns * width]
    layout = {
        "interval": interval,
        "count": count,
        "columns": columns,
        "width": width,
        "height": height,
    }
    return _jpeg(sprite), layout


def _frames_at(container, video, interval: float, wanted: int):
    """The first frame at or after each multiple of `interval`, until the clip ends."""
    decoder = None
    last = -math.inf
    for index in range(wanted):
        at = index * interval
        if decoder is None or at - last > SEEK_GAP_SECONDS:
            container.seek(int(at / video.time_base), stream=video)  # the keyframe before it
            decoder = container.decode(video)
        for frame in decoder:
            if frame.time is None:
                continue
            last = frame.time
            if frame.time >= at - 1e-3:
                yield frame
                break
        else:
            return  # the clip ends before this frame: the strip is shorter


def _jpeg(rgb: np.ndarray) -> bytes:
    import av

    height, width = rgb.shape[:2]
    encoder = av.CodecContext.create("mjpeg", "w")
    encoder.width, encoder.height = width, height
    encoder.pix_fmt = "yuvj420p"
    encoder.time_base = av.time_base
    # A fixed quality, not a bit rate (the encoder's default rate blurs a large picture).
    encoder.flags |= av.codec.context.Flags.qscale
    encoder.qmin = encoder.qmax = 4
    picture = av.VideoFrame.from_ndarray(rgb, format="rgb24").reformat(format="yuvj420p")
    packets = list(encoder.encode(picture)) + list(encoder.encode(None))
    return b"".join(bytes(p) for p in packets)


def filmstrip_key(recording_id) -> str:
    return f"recordings/{recording_id}/filmstrip"


def recording_filmstrip_make(*, recording_id) -> str:
    """Make and record the filmstrip of a recording. Returns what happened: "made", "exists",
    "gone" (missing, deleted or being deleted), or "unplayable"."""
    recording = (
        Recording.objects.filter(pk=recording_id, state=RecordingState.AVAILABLE)
        .select_related("borough")
        .first()
    )
    if recording is None:
        return "gone"
    if recording.filmstrip_key:
        return "exists"
    try:
        cipher = recording_cipher(recording)
        sprite, layout = filmstrip_make(recording, cipher=cipher)
    except FilmstripError:
        return "unplayable"
    except Exception:
        # A sweep that claimed the recording after it was read destroys its key and deletes its
        # media under the reader: that is no failure of ours. Anything else is.
        if not Recording.objects.filter(pk=recording_id, state=RecordingState.AVAILABLE).exists():
            return "gone"
        raise
    key = filmstrip_key(recording.pk)
    store = blob_store()
    store.put(key, seal_blob(cipher.key, object_id=recording.pk, purpose="filmstrip", data=sprite))
    with transaction.atomic():
        recorded = Recording.objects.filter(
            pk=recording.pk, state=RecordingState.AVAILABLE, filmstrip_key=""
        ).update(filmstrip_key=key, filmstrip=layout)
        if recorded:
            audit_record(
                actor="system:filmstrip",
                action="recording.filmstrip_made",
                obj=recording,
                detail={"object": key, **layout},
            )
    if recorded:
        return "made"
    if Recording.objects.filter(pk=recording.pk, filmstrip_key=key).exists():
        return "exists"  # another run recorded the same key first; its object is this one
    # Deleted or claimed by the sweep meanwhile: the sweep never knew of this object.
    store.delete_many([key])
    return "gone"
