"""Reconciliation of storage and database: objects with no recording, recordings with no object.

It walks the bucket's listing (sorted by key) and the recordings sorted the same way side by side,
so memory stays constant whatever the estate's size.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from django.db import connection
from django.db.models.functions import Collate

from evidence.models import Recording, RecordingState
from evidence.storage import blob_store

PREFIX = "recordings/"


@dataclass(frozen=True)
class Finding:
    kind: str  # "orphan_object" | "missing_object"
    key: str
    recording: str | None = None
    detail: str = ""


def _expected_keys(prefix: str) -> Iterator[tuple[str, Recording]]:
    """(key, recording) for every object a recording says should exist, in byte order of key."""
    live = [RecordingState.AVAILABLE, RecordingState.UPLOADING, RecordingState.DELETING]
    rows = Recording.objects.filter(state__in=live, storage_key__startswith=prefix).only(
        "id", "state", "storage_key", "poster_key"
    )
    ordering = "storage_key"
    if connection.vendor == "postgresql":
        # S3 lists keys in byte order; the database's collation may not sort the same way.
        rows = rows.annotate(key_c=Collate("storage_key", "C"))
        ordering = "key_c"
    for recording in rows.order_by(ordering).iterator(chunk_size=2000):
        keys = sorted(k for k in (recording.storage_key, recording.poster_key) if k)
        for key in keys:
            yield key, recording


def reconcile(prefix: str = PREFIX) -> Iterator[Finding]:
    # storage_key and poster_key share the prefix recordings/<id>/, so for one recording both
    # keys sort together, and recordings sort by id: both sides are in the same order.
    stored = blob_store().iter_keys(prefix)
    expected = _expected_keys(prefix)
    s = next(stored, None)
    e = next(expected, None)
    while s is not None or e is not None:
        if e is None or (s is not None and s < e[0]):
            yield Finding("orphan_object", s, detail="no live recording owns this object")
            s = next(stored, None)
        elif s is None or e[0] < s:
            key, recording = e
            uploading = recording.state == RecordingState.UPLOADING
            if not uploading:  # an upload's object only exists once it completes
                yield Finding("missing_object", key, str(recording.pk),
                              f"recording is {recording.state}")  # fmt: skip
            e = next(expected, None)
        else:
            s = next(stored, None)
            e = next(expected, None)
