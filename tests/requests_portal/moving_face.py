"""A clip of a real face moving across the picture, for the redaction editor's tests: the
astronaut photograph that scikit-image ships (Eileen Collins, a NASA portrait in the public
domain), cut around her face and slid from left to right at a steady speed. Where the face is in
each frame is known from how the clip is built, so a tracker's or a detector's boxes can be
checked against it."""

from __future__ import annotations

import functools
import tempfile
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

WIDTH, HEIGHT, FPS, SECONDS = 320, 240, 25, 3
PATCH = 120  # the photograph's 160-pixel square around the face, scaled to this
TOP = 60
LEFT_FIRST, LEFT_LAST = 16, 184
# The face inside the patch (OpenCV's frontal-face cascade finds it at 177, 66, 95 x 95 in the
# 512-pixel photograph; the patch is cut at 145, 40 and scaled by 3/4).
FACE = (24, 20, 71, 71)


def patch_left(t: float) -> float:
    """The left edge of the patch at time `t` (seconds), moving at a steady speed."""
    frames = SECONDS * FPS
    i = min(round(t * FPS), frames - 1)
    return LEFT_FIRST + (LEFT_LAST - LEFT_FIRST) * i / (frames - 1)


def face_at(t: float) -> tuple[int, int, int, int]:
    """Where the face is (x, y, w, h) in the frame shown at time `t`."""
    fx, fy, fw, fh = FACE
    return round(patch_left(t)) + fx, TOP + fy, fw, fh


def frame_at(t: float) -> np.ndarray:
    import cv2
    from skimage import data

    patch = cv2.resize(data.astronaut()[40:200, 145:305], (PATCH, PATCH), cv2.INTER_AREA)
    image = np.full((HEIGHT, WIDTH, 3), 110, np.uint8)
    # A little texture in the background, so that the picture is not a flat field around the face.
    image[::16, :, :] = 90
    image[:, ::16, :] = 90
    left = round(patch_left(t))
    image[TOP : TOP + PATCH, left : left + PATCH] = patch
    return image


@functools.cache
def moving_face_clip() -> bytes:
    """The clip (H.264 in MP4, 320x240, 25 fps, 3 seconds, no sound)."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "face.mp4"
        with av.open(str(path), mode="w", format="mp4") as out:
            stream = out.add_stream("libx264", rate=FPS)
            stream.width, stream.height, stream.pix_fmt = WIDTH, HEIGHT, "yuv420p"
            stream.options = {"crf": "16"}
            for i in range(SECONDS * FPS):
                image = frame_at(i / FPS)
                frame = av.VideoFrame.from_ndarray(image, format="rgb24").reformat(format="yuv420p")
                frame.pts, frame.time_base = i, Fraction(1, FPS)
                out.mux(stream.encode(frame))
            out.mux(stream.encode(None))
        return path.read_bytes()
