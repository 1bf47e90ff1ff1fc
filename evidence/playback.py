"""HTTP byte ranges over the streaming-decrypt service (RFC 9110 single ranges)."""

from __future__ import annotations

import re

from django.http import HttpResponse, StreamingHttpResponse

from evidence.media import plaintext_range
from evidence.models import Recording

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


def media_response(recording: Recording, range_header: str):
    size = recording.size_bytes
    wanted = parse_range(range_header, size)
    if wanted == "416":
        response = HttpResponse(status=416)
        response["Content-Range"] = f"bytes */{size}"
        return response
    start, end = wanted or (0, size)
    response = StreamingHttpResponse(
        plaintext_range(recording, start, end),
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
