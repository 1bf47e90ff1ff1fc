"""A redacted copy is made by a worker: the page checks the specification and queues a job, the job
shows its progress, the copy is sealed in segments and read back a range at a time, the face
detector runs again on it, and a job that fails leaves nothing behind."""

import hashlib
import io
import json
import tracemalloc
import uuid
import zipfile

import numpy as np
import pytest
from django.utils import timezone

from blobstore import S3BlobStore, StorageUnavailable, blob_store
from bwv.celery import app
from common.roles import Role
from custody.models import AuditEvent
from evidence.crypto import new_data_key, seal_blob, wrap_data_key
from evidence.models import DerivedRecording
from evidence.redaction import (
    PART_SEGMENTS,
    SEGMENT_SIZE,
    derived_bytes,
    parse_spec,
    redaction_render,
)
from evidence.sample_media import make_clip
from requests_portal.models import RedactionJob, RequestFootage, RequestStatus
from requests_portal.redaction_jobs import redaction_job_run
from requests_portal.services import RequestError, footage_attach, footage_redact, request_decide
from review.exports import export_bundle
from review.services import export_create
from tests import factories as f
from tests.requests_portal.test_disclosure import _face_clip, frames, received_request

pytestmark = pytest.mark.django_db
BOX = {"start": 0, "end": 10, "x": 40, "y": 40, "w": 96, "h": 64, "mode": "black"}


@pytest.fixture
def eager_tasks():
    app.conf.task_always_eager = True
    yield
    app.conf.task_always_eager = False


def _footage(data: bytes, officer=None):
    officer = officer or f.user(Role.DISCLOSURE_OFFICER)
    recording = f.ingested_recording(data=data)
    req = received_request(recording)
    return footage_attach(req=req, recording=recording, actor=officer), officer


def _stored() -> tuple[set[str], set[str]]:
    """The copies' objects and open multipart uploads in the bucket (which outlives each test)."""
    store = blob_store()
    listed = store.client.list_multipart_uploads(Bucket=store.bucket, Prefix="derived/")
    uploads = {u["Key"] + " " + u["UploadId"] for u in listed.get("Uploads", [])}
    return set(store.iter_keys("derived/")), uploads


# -- Queued, then made by the task -------------------------------------------------------------


def test_the_page_queues_the_copy_and_the_task_makes_it_after_commit(
    client, eager_tasks, django_capture_on_commit_callbacks
):
    footage, _ = _footage(make_clip(seconds=2, crf=18))
    officer = f.signed_in(client, Role.DISCLOSURE_OFFICER)
    url = f"/disclosure/{footage.request_id}/footage/{footage.pk}/redact"
    with django_capture_on_commit_callbacks(execute=False) as queued:
        response = client.post(
            url, {"boxes": json.dumps([BOX]), "mutes": "[]", "reason": "a bystander's face"}
        )
    assert response.status_code == 302
    assert response["Location"] == f"/disclosure/{footage.request_id}/"
    job = RedactionJob.objects.get(footage=footage)
    assert (job.status, job.progress, job.requested_by) == ("queued", 0, officer)
    footage.refresh_from_db()
    assert footage.derived is None  # nothing rendered in the web request
    asked = AuditEvent.objects.get(action="recording.redaction_requested")
    assert (
        asked.actor_label == officer.get_username() and "a bystander's face" in asked.justification
    )
    page = client.get(f"/disclosure/{footage.request_id}/")
    assert b'data-redaction-job="' in page.content and b"Refresh to see progress" in page.content
    assert b"js/redaction." in page.content  # the static file (its name is hashed)
    for callback in queued:  # the commit: the task is queued and (eagerly) run
        callback()
    job.refresh_from_db()
    footage.refresh_from_db()
    assert job.status == "done" and job.progress == 100 and footage.derived == job.derived
    assert footage.derived.segment_size == SEGMENT_SIZE
    page = client.get(f"/disclosure/{footage.request_id}/")
    assert b"Refresh to see progress" not in page.content
    assert b"The face detector finds no face in this copy." in page.content


def test_a_bad_specification_is_refused_in_the_request_and_nothing_is_queued(client):
    footage, _ = _footage(make_clip(seconds=1))
    f.signed_in(client, Role.DISCLOSURE_OFFICER)
    url = f"/disclosure/{footage.request_id}/footage/{footage.pk}/redact"
    response = client.post(url, {"boxes": json.dumps([{**BOX, "x": 300}]), "mutes": "[]"})
    assert response.status_code == 400 and b"outside the 320x240 picture" in response.content
    assert not RedactionJob.objects.exists()
    assert not AuditEvent.objects.filter(action="recording.redaction_requested").exists()


def test_no_decision_while_a_copy_is_still_being_made():
    footage, officer = _footage(make_clip(seconds=1))
    footage_redact(footage=footage, boxes=[BOX], mutes=[], actor=officer)
    with pytest.raises(RequestError, match="still being made"):
        request_decide(req=footage.request, actor=officer, decision="full", reasons="all of it")


# -- What the copy holds ------------------------------------------------------------------------


def test_a_keyframed_box_changes_pixels_only_inside_its_interpolated_place_and_time():
    clip = make_clip(seconds=3, crf=18)
    footage, officer = _footage(clip)
    box = {
        "start": 0.4,
        "end": 2.6,
        "mode": "black",
        "keyframes": [
            {"t": 0.4, "x": 16, "y": 16, "w": 64, "h": 48},
            {"t": 2.6, "x": 224, "y": 160, "w": 80, "h": 64},
        ],
    }
    job = footage_redact(footage=footage, boxes=[box], mutes=[], actor=officer)
    assert redaction_job_run(job_id=job.pk).status == "done"
    footage.refresh_from_db()
    (parsed,), _ = parse_spec(boxes=[box], mutes=[], width=320, height=240, duration=3)
    before, after = frames(clip), frames(derived_bytes(footage.derived))
    assert len(before) == len(after) == 75
    inside_frames = 0
    for i, (a, b) in enumerate(zip(before, after, strict=True)):
        rect = parsed.rect_at(i / 25)
        mask = np.ones(a.shape[:2], dtype=bool)  # where the picture must be unchanged
        if rect is not None:
            inside_frames += 1
            x, y, w, h = rect
            # Blacked out (codec noise allowed) inside, 2 pixels in from the edges...
            assert b[y + 2 : y + h - 2, x + 2 : x + w - 2].mean() < 4, i
            # ...and unchanged beyond a macroblock's bleed of 8 pixels around it.
            mask[max(0, y - 8) : y + h + 8, max(0, x - 8) : x + w + 8] = False
        assert np.abs(a[mask] - b[mask]).mean() < 3.0, i
    assert inside_frames == 55  # frames 10..64: 0.4 s to 2.6 s


def test_a_range_of_the_copy_is_served_as_an_original_is(client):
    footage, officer = _footage(make_clip(seconds=2, crf=18))
    job = footage_redact(footage=footage, boxes=[BOX], mutes=[], actor=officer)
    redaction_job_run(job_id=job.pk)
    footage.refresh_from_db()
    whole = derived_bytes(footage.derived)
    assert hashlib.sha256(whole).hexdigest() == footage.derived.sha256
    f.signed_in(client, Role.DISCLOSURE_OFFICER)
    url = f"/disclosure/{footage.request_id}/footage/{footage.pk}/derived"
    start = SEGMENT_SIZE - 100 if len(whole) > SEGMENT_SIZE + 100 else 1000
    response = client.get(url, HTTP_RANGE=f"bytes={start}-{start + 199}")
    assert response.status_code == 206
    assert response["Content-Range"] == f"bytes {start}-{start + 199}/{len(whole)}"
    assert b"".join(response.streaming_content) == whole[start : start + 200]
    full = client.get(url)
    assert full.status_code == 200 and b"".join(full.streaming_content) == whole
    assert client.get(url, HTTP_RANGE=f"bytes={len(whole)}-").status_code == 416


def _legacy_copy(footage, officer, data: bytes) -> DerivedRecording:
    """A copy as they were stored before copies were segmented: one sealed blob."""
    derived_id = uuid.uuid4()
    key = new_data_key()
    kek_id, wrapped = wrap_data_key(key, object_id=derived_id)
    storage_key = f"derived/{derived_id}/media"
    blob_store().put(
        storage_key, seal_blob(key, object_id=derived_id, purpose="derived", data=data)
    )
    derived = DerivedRecording.objects.create(
        id=derived_id,
        original=footage.recording,
        spec={"boxes": [], "mutes": []},
        storage_key=storage_key,
        size_bytes=len(data),
        sha256=hashlib.sha256(data).hexdigest(),
        kek_id=kek_id,
        wrapped_key=wrapped,
        created_by=officer,
        created_at=timezone.now(),
    )
    RequestFootage.objects.filter(pk=footage.pk).update(derived=derived)
    return derived


def test_a_copy_stored_as_one_blob_before_still_plays_by_range_and_exports(client, tmp_path):
    old = make_clip(seconds=1, tone_hz=880)
    footage, officer = _footage(make_clip(seconds=1))
    derived = _legacy_copy(footage, officer, old)
    assert derived_bytes(derived) == old
    f.signed_in(client, Role.DISCLOSURE_OFFICER)
    url = f"/disclosure/{footage.request_id}/footage/{footage.pk}/derived"
    response = client.get(url, HTTP_RANGE="bytes=10-109")
    assert response.status_code == 206 and b"".join(response.streaming_content) == old[10:110]
    sergeant = f.user(Role.CUSTODY_SERGEANT)
    export = export_create(
        actor=sergeant, recordings=[footage.recording], recipient="CPS", purpose="file"
    )
    with zipfile.ZipFile(io.BytesIO(b"".join(export_bundle(export)))) as zf:
        assert zf.read(f"derived/{derived.id}.mp4") == old


# -- The face detector, again, on the copy ----------------------------------------------------


def test_faces_still_in_the_copy_are_listed_for_the_approver(client):
    footage, officer = _footage(_face_clip(seconds=2))
    corner = {"start": 0, "end": 2, "x": 0, "y": 0, "w": 32, "h": 32, "mode": "black"}
    job = footage_redact(footage=footage, boxes=[corner], mutes=[], actor=officer)
    job = redaction_job_run(job_id=job.pk)
    assert job.status == "done" and job.faces_found, "the face left uncovered was not found"
    for face in job.faces_found:
        assert face["x"] <= 120 and face["x"] + face["w"] >= 200 and 0 <= face["t"] < 2
    req = footage.request
    request_decide(req=req, actor=officer, decision="full", reasons="all of it")
    f.signed_in(client, Role.DISCLOSURE_OFFICER)
    page = client.get(f"/disclosure/{req.pk}/").content.decode()
    approval = page[page.index('id="approval-heading"') :]
    assert "Faces found in the redacted copy" in approval
    assert f"{job.faces_found[0]['t']:.1f} s" in approval
    redact_page = client.get(f"/disclosure/{req.pk}/footage/{footage.pk}/redact")
    assert b"Faces found in the redacted copy" in redact_page.content


def test_a_face_covered_by_a_box_is_not_found_again():
    footage, officer = _footage(_face_clip(seconds=2))
    cover = {"start": 0, "end": 2, "x": 80, "y": 20, "w": 160, "h": 200, "mode": "black"}
    job = footage_redact(footage=footage, boxes=[cover], mutes=[], actor=officer)
    job = redaction_job_run(job_id=job.pk)
    assert job.status == "done" and job.faces_found == []


# -- Failures and repeats ---------------------------------------------------------------------


def _assert_failed_and_clean(job, footage, message: str, before) -> None:
    job.refresh_from_db()
    footage.refresh_from_db()
    assert job.status == "failed" and message in job.error and job.finished_at is not None
    assert footage.derived is None and not DerivedRecording.objects.exists()
    assert _stored() == before  # no object and no upload left behind
    assert AuditEvent.objects.filter(action="recording.redaction_failed").count() == 1


def test_a_damaged_original_fails_the_job_with_a_message_and_leaves_nothing():
    footage, officer = _footage(make_clip(seconds=2))
    job = footage_redact(footage=footage, boxes=[BOX], mutes=[], actor=officer)
    before = _stored()
    store, key = blob_store(), footage.recording.storage_key
    sealed = bytearray(store.get(key))
    sealed[len(sealed) // 2] ^= 0xFF  # one flipped bit of ciphertext in storage
    store.put(key, bytes(sealed))
    redaction_job_run(job_id=job.pk)
    _assert_failed_and_clean(job, footage, "the original recording cannot be read", before)


@pytest.mark.parametrize("call", ["multipart_put", "multipart_complete"])
def test_storage_down_fails_the_job_and_leaves_no_object_or_upload(monkeypatch, call):
    footage, officer = _footage(make_clip(seconds=2))
    job = footage_redact(footage=footage, boxes=[BOX], mutes=[], actor=officer)
    before = _stored()

    # A mock, to inject a fault the real S3 server cannot produce on demand: it refuses a part
    # (or the completion) of the copy's upload, as an unreachable S3 would.
    def refuse(self, *args, **kwargs):
        raise StorageUnavailable(f"S3 {call}: injected")

    monkeypatch.setattr(S3BlobStore, call, refuse)
    redaction_job_run(job_id=job.pk)
    monkeypatch.undo()
    _assert_failed_and_clean(job, footage, "the media store could not be reached", before)


def test_a_failure_to_record_the_copy_deletes_the_stored_object(monkeypatch):
    footage, officer = _footage(make_clip(seconds=1))
    job = footage_redact(footage=footage, boxes=[BOX], mutes=[], actor=officer)
    before = _stored()

    # A mock, to inject a database failure after the copy is stored (which a real database does
    # not produce on demand).
    def broken(**kwargs):
        raise RuntimeError("database gone")

    monkeypatch.setattr("requests_portal.redaction_jobs.derived_record", broken)
    redaction_job_run(job_id=job.pk)
    _assert_failed_and_clean(job, footage, "could not be made", before)


def test_a_request_that_moved_on_fails_the_job_rather_than_change_what_was_decided():
    footage, officer = _footage(make_clip(seconds=1))
    job = footage_redact(footage=footage, boxes=[BOX], mutes=[], actor=officer)
    before = _stored()
    type(footage.request).objects.filter(pk=footage.request_id).update(status=RequestStatus.CLOSED)
    redaction_job_run(job_id=job.pk)
    _assert_failed_and_clean(job, footage, "closed before the copy was ready", before)


def test_a_task_run_twice_makes_one_copy_and_clears_a_dead_attempts_object():
    footage, officer = _footage(make_clip(seconds=1))
    job = footage_redact(footage=footage, boxes=[BOX], mutes=[], actor=officer)
    before_keys, before_uploads = _stored()
    # An earlier attempt whose worker died after storing its object, before recording it.
    stale = f"derived/{uuid.uuid4()}/media"
    blob_store().put(stale, b"sealed bytes of an attempt that died")
    RedactionJob.objects.filter(pk=job.pk).update(status="rendering", pending_key=stale)
    assert redaction_job_run(job_id=job.pk).status == "done"
    assert redaction_job_run(job_id=job.pk).status == "done"  # delivered again: nothing to do
    job.refresh_from_db()
    assert job.attempts == 1 and DerivedRecording.objects.count() == 1
    assert _stored() == (before_keys | {job.derived.storage_key}, before_uploads)
    assert AuditEvent.objects.filter(action="recording.redacted").count() == 1


# -- Memory -----------------------------------------------------------------------------------


def _render_peak(seconds: int) -> int:
    recording = f.ingested_recording(data=make_clip(seconds=seconds))
    boxes, mutes = parse_spec(boxes=[BOX], mutes=[], width=320, height=240, duration=float(seconds))
    tracemalloc.start()
    try:
        copy, _faces = redaction_render(
            recording=recording, boxes=boxes, mutes=mutes, derived_id=uuid.uuid4()
        )
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert copy.size_bytes > seconds * 25_000  # a real copy, growing with the clip
    return peak


def test_the_workers_memory_does_not_grow_with_the_clips_length():
    short, long = _render_peak(20), _render_peak(80)
    part = PART_SEGMENTS * (SEGMENT_SIZE + 28)
    # Four times the clip, at most one more part in flight (a short copy's only part is smaller
    # than a full one): not four times the memory.
    assert long - short < part, (short, long)
    assert long < 3 * part, long


# -- Who may see a job ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("role", "borough", "expected"),
    [
        (None, None, 302),
        (Role.OFFICER, "QA", 403),
        (Role.CUSTODY_SERGEANT, "QA", 403),
        (Role.DISCLOSURE_OFFICER, "QA", 200),
        (Role.DISCLOSURE_OFFICER, "EK", 404),
    ],
)
def test_the_progress_endpoint_permission_matrix(client, role, borough, expected):
    recording = f.recording_row()
    req = received_request(recording)
    officer = f.user(Role.DISCLOSURE_OFFICER)
    footage = footage_attach(req=req, recording=recording, actor=officer)
    job = RedactionJob.objects.create(
        footage=footage,
        spec={"boxes": [], "mutes": []},
        progress=42,
        status="rendering",
        requested_by=officer,
        requested_at=timezone.now(),
        purpose="x",
    )
    if role is not None:
        f.signed_in(client, role, borough_code=borough)
    url = f"/disclosure/{req.pk}/footage/{footage.pk}/redaction/{job.pk}"
    response = client.get(url)
    assert response.status_code == expected
    if expected == 200:
        assert response.json()["progress"] == 42 and response.json()["status"] == "rendering"
        assert "no-cache" in response["Cache-Control"]
        other = f"/disclosure/{req.pk}/footage/{footage.pk}/redaction/{uuid.uuid4()}"
        assert client.get(other).status_code == 404
