"""Reading what a clip is (PyAV): duration, codecs, size, creation time, and a poster frame.

It reads the plaintext through the decrypting reader, so no plaintext copy is ever written.
PyAV is imported on first use, not with this module: the web process imports it for ingest, and
a worker that only serves pages need not hold PyAV's libraries (tens of MiB resident).
"""

from __future__ import annotations

from evidence.crypto import SegmentCipher
from evidence.media import PlaintextReader
from evidence.models import Recording

POSTER_WIDTH = 640
THUMBNAIL_WIDTH = 160


class ProbeError(Exception):
    """The file is not a video PyAV can read."""


def probe_and_poster(
    recording: Recording, *, cipher: SegmentCipher | None = None
) -> tuple[dict, bytes | None]:
    import av

    reader = PlaintextReader(recording, cipher=cipher)
    try:
        container = av.open(reader, mode="r", options={"probesize": "5000000"})
    except (av.error.FFmpegError, ValueError, OSError) as exc:
        raise ProbeError(str(exc)) from None
    with container:
        video = next(iter(container.streams.video), None)
        if video is None:
            raise ProbeError("there is no video stream")
        audio = next(iter(container.streams.audio), None)
        duration = None
        if container.duration is not None:
            duration = container.duration / av.time_base
        elif video.duration is not None and video.time_base is not None:
            duration = float(video.duration * video.time_base)
        info = {
            "format": container.format.name,
            "duration_seconds": round(duration, 3) if duration is not None else None,
            "video_codec": video.codec_context.name,
            "width": video.codec_context.width,
            "height": video.codec_context.height,
            "frame_rate": float(video.average_rate) if video.average_rate else None,
            "audio_codec": audio.codec_context.name if audio is not None else None,
            "creation_time": container.metadata.get("creation_time"),
            "bit_rate": container.bit_rate,
        }
        if not info["width"] or not info["height"]:
            raise ProbeError("the video stream has no picture size")
        poster = _poster(container, video)
    # Camera clocks drift and metadata can be forged: note a disagreement for a person to see.
    declared = (recording.ended_at - recording.started_at).total_seconds()
    if duration is not None and abs(duration - declared) > max(5.0, declared * 0.1):
        info["duration_mismatch"] = {"declared_seconds": declared, "media_seconds": duration}
    return info, poster


def _poster(container, video) -> bytes | None:
    import av

    try:
        for frame in container.decode(video):
            width = min(POSTER_WIDTH, frame.width)
            height = max(2, int(frame.height * width / frame.width) // 2 * 2)
            encoder = av.CodecContext.create("mjpeg", "w")
            encoder.width, encoder.height = width, height
            encoder.pix_fmt = "yuvj420p"
            encoder.time_base = video.time_base or av.time_base
            picture = frame.reformat(width=width, height=height, format="yuvj420p")
            packets = list(encoder.encode(picture)) + list(encoder.encode(None))
            return b"".join(bytes(p) for p in packets)
    except av.error.FFmpegError as exc:
        raise ProbeError(f"no frame could be decoded: {exc}") from None
    raise ProbeError("the video stream has no frames")


def poster_thumbnail(poster: bytes, *, width: int = THUMBNAIL_WIDTH) -> bytes:
    """A poster (JPEG) made small for a list's cell, as a JPEG."""
    import av

    decoder = av.CodecContext.create("mjpeg", "r")
    try:
        frame = next(iter(decoder.decode(av.Packet(poster))), None)
    except av.error.FFmpegError as exc:
        raise ProbeError(f"the poster does not decode: {exc}") from None
    if frame is None:
        raise ProbeError("the poster does not decode")
    width = min(width, frame.width)
    height = max(2, int(frame.height * width / frame.width) // 2 * 2)
    encoder = av.CodecContext.create("mjpeg", "w")
    encoder.width, encoder.height = width, height
    encoder.pix_fmt = "yuvj420p"
    encoder.time_base = av.time_base
    picture = frame.reformat(width=width, height=height, format="yuvj420p")
    packets = list(encoder.encode(picture)) + list(encoder.encode(None))
    return b"".join(bytes(p) for p in packets)


def frame_png(recording: Recording, at_seconds: float) -> tuple[bytes, float]:
    """The frame shown at `at_seconds` (the last one whose time is not after it), as a PNG at the
    clip's own size, and that frame's own time. Read through the decrypting reader, like the probe:
    no plaintext copy of the clip is written."""
    import av

    reader = PlaintextReader(recording)
    try:
        container = av.open(reader, mode="r", options={"probesize": "5000000"})
    except (av.error.FFmpegError, ValueError, OSError) as exc:
        raise ProbeError(str(exc)) from None
    with container:
        video = next(iter(container.streams.video), None)
        if video is None:
            raise ProbeError("there is no video stream")
        # A browser reports a time inside the frame it shows; half a millisecond covers rounding.
        wanted = at_seconds + 0.0005
        if video.time_base is not None:
            container.seek(int(max(0.0, at_seconds) / video.time_base), stream=video)
        shown = None
        try:
            for frame in container.decode(video):
                if frame.time is not None and frame.time > wanted and shown is not None:
                    break
                shown = frame
        except av.error.FFmpegError as exc:
            raise ProbeError(f"no frame could be decoded: {exc}") from None
        if shown is None:
            raise ProbeError("the video stream has no frames")
        encoder = av.CodecContext.create("png", "w")
        encoder.width, encoder.height = shown.width, shown.height
        encoder.pix_fmt = "rgb24"
        encoder.time_base = video.time_base or av.time_base
        packets = list(encoder.encode(shown.reformat(format="rgb24"))) + list(encoder.encode(None))
        return b"".join(bytes(p) for p in packets), float(shown.time or 0.0)
