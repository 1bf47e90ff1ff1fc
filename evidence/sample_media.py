"""Short real MP4 clips (H.264 + AAC) made locally with PyAV, for the demo, tests and benchmarks.

The picture is FFmpeg's `testsrc2` pattern, which changes every frame, so a seek shows up.
"""

from __future__ import annotations

import io
import os
import random
import tempfile
from datetime import datetime
from fractions import Fraction
from pathlib import Path

import av


def make_clip(
    dest: Path | io.BytesIO | None = None,
    *,
    seconds: float = 4.0,
    width: int = 320,
    height: int = 240,
    fps: int = 25,
    tone_hz: int = 440,
    created: datetime | None = None,
    crf: int = 30,
) -> bytes:
    """Encode a clip and return its bytes (also written to `dest` when given)."""
    # faststart (index first, for quick playback) rewrites the file, so it needs a real file.
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "clip.mp4"
        _encode(path, seconds, width, height, fps, tone_hz, created, crf)
        data = path.read_bytes()
    if isinstance(dest, io.BytesIO):
        dest.write(data)
    elif dest is not None:
        Path(dest).write_bytes(data)
    return data


def _encode(path, seconds, width, height, fps, tone_hz, created, crf) -> None:
    options = {"movflags": "+faststart"}
    with av.open(str(path), mode="w", format="mp4", options=options) as container:
        if created is not None:
            container.metadata["creation_time"] = created.strftime("%Y-%m-%dT%H:%M:%S.000000Z")
        video = container.add_stream("libx264", rate=fps)
        video.width, video.height, video.pix_fmt = width, height, "yuv420p"
        video.options = {"preset": "ultrafast", "crf": str(crf), "g": str(fps)}
        audio = container.add_stream("aac", rate=16000)
        audio.layout = "mono"
        frames = int(seconds * fps)
        with av.open(f"testsrc2=size={width}x{height}:rate={fps}", format="lavfi") as source:
            for i, frame in enumerate(source.decode(video=0)):
                if i >= frames:
                    break
                frame.pts = i
                frame.time_base = Fraction(1, fps)
                container.mux(video.encode(frame.reformat(format="yuv420p")))
        container.mux(video.encode(None))
        with av.open(
            f"sine=frequency={tone_hz}:sample_rate=16000:duration={seconds}", format="lavfi"
        ) as tone:
            for frame in tone.decode(audio=0):
                frame.pts = None
                container.mux(audio.encode(frame))
        container.mux(audio.encode(None))


def padded_clip(size: int, *, seed: int | None = None) -> bytes:
    """A real MP4 followed by random bytes up to `size`: large test files that still probe as video."""
    head = make_clip(seconds=2)
    if seed is None:
        return head + os.urandom(size - len(head))
    rng = random.Random(seed)  # noqa: S311 -- filler bytes, not a secret
    filler = bytearray()
    while len(filler) < size - len(head):
        filler += rng.randbytes(min(1 << 20, size - len(head) - len(filler)))
    return head + bytes(filler)
