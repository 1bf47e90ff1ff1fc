"""HTTP byte ranges over the streaming-decrypt service (RFC 9110 single ranges)."""

from __future__ import annotations

import re
from dataclasses import dataclass

from django.http import HttpResponse, StreamingHttpResponse
from django.utils import timezone

from evidence.media import plaintext_range
from evidence.models import DerivedRecording, Recording
from evidence.redaction import derived_chunks

_RANGE = re.compile(r"^bytes=(\d*)-(\d*)$")


def parse_range(header: str, size: int) -> tuple[int, int] | None | str:
    """(start, end_exclusive) for one satisfiable range; None to send it all; "416" if unsatisfiable."""
    if not header:
        return None
    match = _RANGE.match(header.strip())
    if not match:
        return None  # several ranges or another unit: the whole body is a correct answer
    first, last = match.groups()
    if not first and not last:
        return None
    if not first:  # suffix: the last N bytes
        n = int(last)
        return (max(0, size - n), size) if n else "416"
    start = int(first)
    end = min(int(last) + 1, size) if last else size
    if start >= size or end <= start:
        return "416"
    return start, end


def media_response(recording: Recording | DerivedRecording, range_header: str):
    """The plaintext of a recording or of a derived copy, whole or the one range asked for."""
    size = recording.size_bytes
    wanted = parse_range(range_header, size)
    if wanted == "416":
        response = HttpResponse(status=416)
        response["Content-Range"] = f"bytes */{size}"
        return response
    start, end = wanted or (0, size)
    if isinstance(recording, DerivedRecording):
        # A copy made before copies were segmented is one blob: derived_chunks opens it whole.
        chunks = derived_chunks(recording, start, end)
    else:
        chunks = plaintext_range(recording, start, end)
    response = StreamingHttpResponse(
        chunks,
        status=206 if wanted else 200,
        content_type="video/mp4",
    )
    response["Content-Length"] = str(end - start)
    if wanted:
        response["Content-Range"] = f"bytes {start}-{end - 1}/{size}"
    response["Accept-Ranges"] = "bytes"
    response["Cache-Control"] = "private, no-store"
    response["Content-Disposition"] = "inline"
    return response


@dataclass(frozen=True)
class Marker:
    """A point (or, with `end`, a range) on the player's timeline; a click seeks to `at`."""

    kind: str  # bookmark, flag or redaction: the marker's colour and shape
    at: float
    label: str
    end: float | None = None


def player_for(
    recording: Recording,
    *,
    element_id: str,
    src: str,
    poster: str = "",
    still_url: str = "",
    markers: list[Marker] | tuple[Marker, ...] = (),
    filmstrip: str = "",
) -> dict:
    """What the player component (templates/components/player.html) needs to show a clip: its
    media and poster URLs, the frame rate from the probe (25 when the probe found none), its start
    for the wall-clock time, the timeline's markers in time order, and its filmstrip (the URL of
    its sprite with the layout of its frames) when there is one."""
    info = recording.media_info or {}
    duration = float(recording.duration_seconds or info.get("duration_seconds") or 0)
    return {
        "id": element_id,
        "src": src,
        "poster": poster,
        "still_url": still_url,
        "fps": float(info.get("frame_rate") or 25),
        "start": recording.started_at.isoformat(),
        "duration": duration,
        "width": info.get("width") or 16,
        "height": info.get("height") or 9,
        "markers": sorted(markers, key=lambda m: m.at),
        "title": f"Camera {recording.camera.serial}",
        "filmstrip": {"url": filmstrip, **(recording.filmstrip or {})}
        if filmstrip and recording.filmstrip
        else None,
    }


# Opening footage asks once a session for the purpose, recorded as a consultation; the pages that
# play it (the recording's, a case's, an access request's) remember here that it was given.
CONSULTED = "bwv_consulted"  # session: recording ids whose purpose was given in this session


def consulted(request, recording) -> bool:
    return str(recording.pk) in request.session.get(CONSULTED, {})


def mark_consulted(request, recording) -> None:
    done = request.session.get(CONSULTED, {})
    done[str(recording.pk)] = timezone.now().isoformat()
    request.session[CONSULTED] = done
