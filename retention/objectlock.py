"""S3 Object Lock as a second line of defence for evidence.

Where the bucket has Object Lock (BWV_S3_OBJECT_LOCK=1), the objects of a recording under an
evidence hold also carry an S3 legal hold, so even someone with the bucket's keys cannot destroy
their versions. The database hold stays the rule; this mirrors it, after commit, and is audited.
`object_lock_selfcheck` proves at start that a held object version really cannot be deleted.
"""

from __future__ import annotations

import logging
import uuid

from django.conf import settings

from blobstore import S3BlobStore, blob_store
from custody.services import audit_record
from evidence.models import Recording, RecordingState
from retention.models import Hold, HoldSource

log = logging.getLogger(__name__)


def object_legal_hold_sync(*, recording_id) -> bool | None:
    """Make the objects' S3 legal hold match the recording's evidence holds. Returns the state set."""
    if not settings.S3_OBJECT_LOCK:
        return None
    recording = Recording.objects.filter(pk=recording_id).first()
    if recording is None or recording.state != RecordingState.AVAILABLE:
        return None
    on = Hold.objects.filter(recording=recording, active=True, source=HoldSource.EVIDENCE).exists()
    store = blob_store()
    keys = [k for k in (recording.storage_key, recording.poster_key, recording.filmstrip_key) if k]
    for key in keys:
        store.set_legal_hold(key, on)
    audit_record(
        actor="system:object-lock",
        action="recording.object_legal_hold",
        obj=recording,
        justification="mirrors the evidence hold" if on else "no evidence hold remains",
        detail={"legal_hold": "ON" if on else "OFF", "objects": keys},
    )
    return on


def object_lock_selfcheck() -> tuple[bool, str]:
    """Put a probe object under legal hold and try to delete its version: it must be refused."""
    store = blob_store()
    if not settings.S3_OBJECT_LOCK or not isinstance(store, S3BlobStore):
        return False, "Object Lock is not configured (BWV_S3_OBJECT_LOCK is off)"
    from botocore.exceptions import ClientError  # only with S3, never in the embedded setup

    client, bucket = store.client, store.bucket
    key = f"selfcheck/object-lock/{uuid.uuid4()}"
    version = client.put_object(Bucket=bucket, Key=key, Body=b"probe").get("VersionId")
    if not version:
        client.delete_object(Bucket=bucket, Key=key)
        return False, "the bucket is not versioned: Object Lock cannot protect anything"
    try:
        client.put_object_legal_hold(
            Bucket=bucket, Key=key, VersionId=version, LegalHold={"Status": "ON"}
        )
        try:
            client.delete_object(Bucket=bucket, Key=key, VersionId=version)
        except ClientError:
            return True, "a version under legal hold could not be deleted, as it must"
        return False, "a version under legal hold WAS deleted: Object Lock is not enforced"
    finally:
        try:
            client.put_object_legal_hold(
                Bucket=bucket, Key=key, VersionId=version, LegalHold={"Status": "OFF"}
            )
            client.delete_object(Bucket=bucket, Key=key, VersionId=version)
        except ClientError:
            pass
