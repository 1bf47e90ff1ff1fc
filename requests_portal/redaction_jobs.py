"""Making a queued redacted copy (a worker's side of `services.footage_redact`).

Guarantees:
- a job ends done, with exactly one derived copy attached to its footage, or failed, with a
  message saying why, and no derived copy and no stored object of its own left behind;
- a job run twice (a redelivered task, a worker that died) makes one copy: each attempt writes its
  own object, named on the job before any byte is sent; the attempt that records its copy first
  wins, and the others (and the next attempt, for one whose worker died) delete theirs;
- no storage call happens inside a database transaction; progress is written as it goes, in small
  updates of its own, so the request's page can show it.
"""

from __future__ import annotations

import logging
import time
import uuid

import av
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from blobstore import StorageUnavailable, blob_store
from custody.services import audit_record
from evidence.crypto import KeyDestroyed, TamperedError
from evidence.redaction import (
    Box,
    Keyframe,
    RedactionError,
    derived_record,
    derived_storage_key,
    redaction_render,
    redaction_spec,
)
from requests_portal.models import RedactionJob, RedactionJobStatus, RequestFootage, RequestStatus

log = logging.getLogger(__name__)

# What a person is told when an attempt fails, by the kind of failure; the detail goes to the log.
_FAILURES = (
    (StorageUnavailable, "the media store could not be reached: try again later"),
    ((TamperedError, KeyDestroyed), "the original recording cannot be read: it is damaged or gone"),
    (av.FFmpegError, "the original recording could not be decoded: it may be damaged"),
    (RedactionError, None),  # its own message is for the person who asked
)


def _boxes(spec: dict) -> list[Box]:
    return [
        Box(
            b["start"],
            b["end"],
            tuple(Keyframe(k["t"], k["x"], k["y"], k["w"], k["h"]) for k in b["keyframes"]),
            b["mode"],
        )
        for b in spec["boxes"]
    ]


def _discard(keys: list[str], upload: tuple[str, str] | None = None) -> None:
    store = blob_store()
    if upload is not None and upload[1]:
        store.multipart_abort(*upload)
    if keys and store.delete_many(keys):
        log.warning("could not delete %s; the next attempt or the bucket's lifecycle will", keys)


def _clean_earlier_attempt(job: RedactionJob) -> None:
    """An attempt whose worker died may have left an upload or an object: remove them."""
    if job.pending_key and (job.derived is None or job.derived.storage_key != job.pending_key):
        _discard([job.pending_key], (job.pending_key, job.pending_upload))
        RedactionJob.objects.filter(pk=job.pk, pending_key=job.pending_key).update(
            pending_key="", pending_upload=""
        )


def redaction_job_run(*, job_id: uuid.UUID | str) -> RedactionJob:
    """Render, check and store the job's copy, then attach it to the footage. Idempotent."""
    claimed = RedactionJob.objects.filter(
        pk=job_id, status__in=[RedactionJobStatus.QUEUED, RedactionJobStatus.RENDERING]
    ).update(
        status=RedactionJobStatus.RENDERING, started_at=timezone.now(), attempts=F("attempts") + 1
    )
    job = RedactionJob.objects.select_related("footage__recording", "derived").get(pk=job_id)
    if not claimed:
        return job  # done or failed already: a redelivered task has nothing to do
    _clean_earlier_attempt(job)
    derived_id = uuid.uuid4()
    key = derived_storage_key(derived_id)
    RedactionJob.objects.filter(pk=job.pk).update(pending_key=key, pending_upload="")
    last = [0.0, -1]

    def progress(fraction: float) -> None:
        percent = min(99, int(fraction * 100))
        now = time.monotonic()
        if percent > last[1] and now - last[0] >= 0.5:  # a small write, twice a second at most
            RedactionJob.objects.filter(pk=job.pk, status=RedactionJobStatus.RENDERING).update(
                progress=percent
            )
            last[:] = [now, percent]

    def upload_started(upload_id: str) -> None:
        RedactionJob.objects.filter(pk=job.pk).update(pending_upload=upload_id)

    recording = job.footage.recording
    try:
        copy, faces = redaction_render(
            recording=recording,
            boxes=_boxes(job.spec),
            mutes=[tuple(m) for m in job.spec["mutes"]],
            derived_id=derived_id,
            on_upload_started=upload_started,
            progress=progress,
        )
        return _finish(job, copy, faces)
    except Exception as exc:
        _discard([key])
        return _fail(job, exc)


def _finish(job: RedactionJob, copy, faces: list[dict]) -> RedactionJob:
    with transaction.atomic():
        locked = RedactionJob.objects.select_for_update().get(pk=job.pk)
        if locked.finished:
            # Another attempt got there first: its copy is the one; ours goes, after commit.
            transaction.on_commit(lambda: _discard([copy.storage_key]))
            return locked
        footage = RequestFootage.objects.select_related("request").get(pk=locked.footage_id)
        if footage.request.status != RequestStatus.IN_PROGRESS:
            raise RedactionError(
                "the request was "
                f"{footage.request.get_status_display().lower()} before the copy was ready"
            )
        recording = footage.recording
        spec = redaction_spec(recording, _boxes(locked.spec), locked.spec["mutes"])
        derived = derived_record(
            copy=copy,
            recording=recording,
            spec=spec,
            actor=locked.requested_by,
            purpose=locked.purpose,
        )
        RequestFootage.objects.filter(pk=footage.pk).update(derived=derived)
        locked.status, locked.progress, locked.derived = RedactionJobStatus.DONE, 100, derived
        locked.faces_found, locked.finished_at = faces, timezone.now()
        locked.pending_key = locked.pending_upload = ""
        locked.error = ""
        locked.save()
    return locked


def _fail(job: RedactionJob, exc: Exception) -> RedactionJob:
    message = "the copy could not be made"
    for kinds, said in _FAILURES:
        if isinstance(exc, kinds):
            message = said or str(exc)
            break
    else:
        log.exception("redaction job %s failed", job.pk)
    with transaction.atomic():
        locked = RedactionJob.objects.select_for_update().get(pk=job.pk)
        if locked.finished:
            return locked
        locked.status, locked.error, locked.finished_at = (
            RedactionJobStatus.FAILED,
            message,
            timezone.now(),
        )
        locked.pending_key = locked.pending_upload = ""
        locked.save()
        audit_record(
            actor="system:redaction",
            action="recording.redaction_failed",
            obj=job.footage.recording,
            justification=job.purpose,
            detail={"job": str(job.pk), "error": message},
        )
    return locked
