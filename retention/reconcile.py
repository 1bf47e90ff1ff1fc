"""Reconciliation of storage and database: objects with no recording, recordings with no object.

It walks the bucket's listing (sorted by key) and the recordings sorted the same way side by side,
so memory stays constant whatever the estate's size.

A recording under a live claim of the retention sweep is not reported missing: the sweep may be
deleting its objects at this moment, and marks it deleted once they are gone. A claim the sweep
left unfinished (its run died or stopped) is reported, as what it is.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from django.db import connection
from django.db.models.functions import Collate
from django.utils import timezone

from blobstore import blob_store
from evidence.models import Recording, RecordingState
from retention.sweep import under_live_claim

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
        "id", "state", "storage_key", "poster_key", "filmstrip_key"
    )
    ordering = "storage_key"
    if connection.vendor == "postgresql":
        # S3 lists keys in byte order; the database's collation may not sort the same way.
        rows = rows.annotate(key_c=Collate("storage_key", "C"))
        ordering = "key_c"
    for recording in rows.order_by(ordering).iterator(chunk_size=2000):
        keys = sorted(
            k for k in (recording.storage_key, recording.poster_key, recording.filmstrip_key) if k
        )
        for key in keys:
            yield key, recording


def _why_missing(recording_id) -> str | None:
    """Why a recording's object is missing, asked at the moment it is found (the walk takes time:
    a sweep may have claimed or deleted the recording since it was read); None when nothing is
    wrong. Few objects are ever missing, so one query each is cheap."""
    row = Recording.objects.filter(pk=recording_id).values("state").first()
    state = row["state"] if row else RecordingState.DELETED
    if state in (RecordingState.DELETED, RecordingState.UPLOADING):
        return None  # gone meanwhile; or an upload, whose object exists only once it completes
    if state == RecordingState.DELETING:
        if under_live_claim(timezone.now()).filter(pk=recording_id).exists():
            return None  # a running sweep is deleting it now
        return "recording is deleting, left unfinished by a sweep: the next run completes it"
    return f"recording is {state}"


def reconcile(prefix: str = PREFIX) -> Iterator[Finding]:
    # storage_key, poster_key and filmstrip_key share the prefix recordings/<id>/, so for one
    # recording its keys sort together, and recordings sort by id: both sides are in the same order.
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
            # An upload's object only exists once it completes.
            why = (
                None if recording.state == RecordingState.UPLOADING else _why_missing(recording.pk)
            )
            if why:
                yield Finding("missing_object", key, str(recording.pk), why)
            e = next(expected, None)
        else:
            s = next(stored, None)
            e = next(expected, None)
