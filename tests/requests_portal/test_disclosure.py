"""The disclosure workflow: identity evidence, footage, redaction, a second person's approval,
release through an expiring link, closure. And who may do it."""

import io
from datetime import timedelta

import av
import numpy as np
import pytest
from django.core import mail
from django.core.files.uploadedfile import SimpleUploadedFile
from django.utils import timezone

from blobstore import blob_store
from common.roles import Role
from custody.models import AuditEvent
from evidence.redaction import RedactionError, derived_bytes, propose_face_boxes
from evidence.sample_media import make_clip
from requests_portal.deadlines import london_date, right_of_access_due
from requests_portal.models import AccessRequest, ReleaseLink, RequestKind, RequestStatus
from requests_portal.redaction_jobs import redaction_job_run
from requests_portal.services import (
    RequestError,
    footage_attach,
    footage_redact,
    identity_checked,
    identity_upload,
    release_download,
    request_approve,
    request_ask_identity,
    request_decide,
)
from tests import factories as f
from tests.html import Page

pytestmark = pytest.mark.django_db
BOX = {"start": 0, "end": 10, "x": 40, "y": 40, "w": 96, "h": 64, "mode": "black"}


@pytest.fixture(autouse=True)
def _mail(settings):
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"


def received_request(recording) -> AccessRequest:
    now = timezone.now()
    return AccessRequest.objects.create(
        reference=f"SAR-2026-{AccessRequest.objects.count() + 1:06d}",
        kind=RequestKind.RIGHT_OF_ACCESS,
        status=RequestStatus.RECEIVED,
        name="Sam",
        email="sam@example.org",
        incident_at=recording.started_at,
        borough=recording.borough,
        place="Station Rd",
        description="stop and search",
        received_at=now,
        clock_started_at=now,
        due_at=right_of_access_due(london_date(now)),
    )


@pytest.fixture
def clip():
    return make_clip(seconds=3, width=320, height=240, crf=18)


def redact(footage, *, boxes, mutes, actor):
    """Ask for a copy, then run the worker's job as the task would (queued after commit; called
    here directly: the test's transaction never commits)."""
    job = footage_redact(footage=footage, boxes=boxes, mutes=mutes, actor=actor)
    job = redaction_job_run(job_id=job.pk)
    assert job.status == "done", job.error
    footage.refresh_from_db()
    return job


def frames(data: bytes) -> list[np.ndarray]:
    with av.open(io.BytesIO(data)) as container:
        return [fr.to_ndarray(format="rgb24").astype(int) for fr in container.decode(video=0)]


def test_identity_evidence_restarts_the_clock_and_is_deleted_once_checked(small_clip):
    officer = f.user(Role.DISCLOSURE_OFFICER)
    recording = f.ingested_recording(data=small_clip)
    req = received_request(recording)
    request_ask_identity(req=req, actor=officer, note="a passport or driving licence")
    req.refresh_from_db()
    assert req.status == RequestStatus.AWAITING_ID and req.due_at is None  # clock paused
    with pytest.raises(RequestError, match="JPEG, PNG or PDF"):
        identity_upload(req=req, upload=SimpleUploadedFile("x.exe", b"MZ\x90\x00binary"))
    big = SimpleUploadedFile("big.jpg", b"\xff\xd8\xff" + b"0" * (10 * 1024 * 1024))
    with pytest.raises(RequestError, match="larger than 10 MB"):
        identity_upload(req=req, upload=big)
    doc = identity_upload(req=req, upload=SimpleUploadedFile("id.jpg", b"\xff\xd8\xff\xe0 id scan"))
    req.refresh_from_db()
    assert req.status == RequestStatus.IN_PROGRESS
    assert req.due_at == right_of_access_due(london_date(req.id_received_at))
    sealed = blob_store().get(doc.storage_key)
    assert b"id scan" not in sealed  # stored encrypted
    identity_checked(req=req, actor=officer, accepted=True)
    doc.refresh_from_db()
    assert doc.deleted_at is not None and doc.wrapped_key is None
    assert blob_store().size(doc.storage_key) is None


def test_a_redacted_copy_differs_from_the_original_in_the_box_only(clip):
    officer = f.user(Role.DISCLOSURE_OFFICER)
    recording = f.ingested_recording(data=clip)
    req = received_request(recording)
    footage = footage_attach(req=req, recording=recording, actor=officer)
    redact(footage, boxes=[BOX], mutes=[{"start": 0.5, "end": 2.0}], actor=officer)
    derived = footage.derived
    data = derived_bytes(derived)
    import hashlib

    assert derived.sha256 == hashlib.sha256(data).hexdigest() and derived.original == recording
    assert recording.sha256 == hashlib.sha256(clip).hexdigest()  # the original is untouched
    before, after = frames(clip), frames(data)
    assert len(after) == len(before)
    for a, b in zip(before, after, strict=True):
        inside = (slice(40, 104), slice(40, 136))
        assert a[inside].mean() > 20 and b[inside].mean() < 4  # blacked out (lossy: near 0)
        mask = np.ones(a.shape[:2], dtype=bool)
        mask[40 - 8 : 104 + 8, 40 - 8 : 136 + 8] = False  # chroma bleeds a few pixels at the edge
        assert np.abs(a[mask] - b[mask]).mean() < 3.0  # elsewhere the same picture
    event = AuditEvent.objects.get(action="recording.redacted")
    assert (
        event.detail["derived"] == str(derived.id)
        and event.detail["boxes"][0]["keyframes"][0]["w"] == 96
    )


def test_a_redaction_outside_the_picture_or_without_boxes_is_refused(clip):
    officer = f.user(Role.DISCLOSURE_OFFICER)
    recording = f.ingested_recording(data=clip)
    footage = footage_attach(req=received_request(recording), recording=recording, actor=officer)
    with pytest.raises(RedactionError, match="outside"):
        footage_redact(footage=footage, boxes=[{**BOX, "x": 300}], mutes=[], actor=officer)
    with pytest.raises(RedactionError, match="at least one"):
        footage_redact(footage=footage, boxes=[], mutes=[], actor=officer)


def _face_clip(seconds: int = 2) -> bytes:
    """A clip of a drawn face (oval, eyes, brows, nose, mouth) that OpenCV's frontal-face
    cascade recognises: no photograph of a real person is needed in the repository."""
    import tempfile
    from fractions import Fraction
    from pathlib import Path

    import cv2

    gray = np.full((240, 320), 200, np.uint8)
    cv2.ellipse(gray, (160, 120), (60, 80), 0, 0, 360, 170, -1)
    for x in (135, 185):
        cv2.ellipse(gray, (x, 100), (14, 7), 0, 0, 360, 40, -1)
        cv2.line(gray, (x - 16, 86), (x + 16, 86), 60, 4)
    cv2.line(gray, (160, 105), (155, 135), 120, 4)
    cv2.ellipse(gray, (160, 138), (12, 5), 0, 0, 360, 110, -1)
    cv2.ellipse(gray, (160, 160), (25, 8), 0, 0, 360, 60, -1)
    rgb = np.repeat(cv2.GaussianBlur(gray, (7, 7), 2)[:, :, None], 3, axis=2)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "face.mp4"
        with av.open(str(path), mode="w", format="mp4") as out:
            stream = out.add_stream("libx264", rate=25)
            stream.width, stream.height, stream.pix_fmt = 320, 240, "yuv420p"
            for i in range(seconds * 25):
                frame = av.VideoFrame.from_ndarray(rgb, format="rgb24").reformat(format="yuv420p")
                frame.pts, frame.time_base = i, Fraction(1, 25)
                out.mux(stream.encode(frame))
            out.mux(stream.encode(None))
        return path.read_bytes()


def test_the_face_assist_proposes_a_box_over_a_face_and_none_without_one():
    recording = f.ingested_recording(data=_face_clip())
    proposals = propose_face_boxes(recording)
    assert proposals, "the drawn face was not found"
    for box in proposals:
        assert box["mode"] == "pixelate" and box["start"] < box["end"]
        assert box["x"] <= 110 and box["x"] + box["w"] >= 210  # covers the face's width
        assert box["y"] <= 60 and box["y"] + box["h"] >= 170  # and its height, eyes to mouth
    # The synthetic test pattern has no faces: the assist proposes nothing rather than guessing.
    assert propose_face_boxes(f.ingested_recording(data=make_clip(seconds=2))) == []


def test_decision_approval_release_and_an_expired_link(clip, django_capture_on_commit_callbacks):
    first, second = f.user(Role.DISCLOSURE_OFFICER), f.user(Role.DISCLOSURE_OFFICER)
    recording = f.ingested_recording(data=clip)
    req = received_request(recording)
    footage = footage_attach(req=req, recording=recording, actor=first)
    with pytest.raises(RequestError, match="exemptions"):
        request_decide(req=req, actor=first, decision="partial", reasons="third parties")
    with pytest.raises(RequestError, match="redact each clip"):
        request_decide(
            req=req,
            actor=first,
            decision="partial",
            reasons="third parties",
            exemptions="s.45(4)(e) rights of others",
        )
    redact(footage, boxes=[BOX], mutes=[], actor=first)
    request_decide(
        req=req,
        actor=first,
        decision="partial",
        reasons="third parties",
        exemptions="s.45(4)(e) rights of others",
    )
    with pytest.raises(RequestError, match="second person"):
        request_approve(req=req, actor=first)
    with django_capture_on_commit_callbacks(execute=True):
        url = request_approve(req=req, actor=second)
    req.refresh_from_db()
    assert req.status == RequestStatus.RELEASED and url in mail.outbox[-1].body
    token = url.rstrip("/").rsplit("/", 1)[1]
    _, files = release_download(token=token, ip="203.0.113.9")
    assert [name.endswith("-redacted.mp4") for name, _, _ in files] == [True]
    name, size, chunks = files[0]
    data = b"".join(chunks())
    assert len(data) == size and data == derived_bytes(
        footage.__class__.objects.get(pk=footage.pk).derived
    )
    disclosed = AuditEvent.objects.get(action="recording.disclosed")
    assert disclosed.recipient == "sam@example.org" and disclosed.detail["ip"] == "203.0.113.9"
    ReleaseLink.objects.update(expires_at=timezone.now() - timedelta(seconds=1))
    with pytest.raises(RequestError, match="expired"):
        release_download(token=token, ip="203.0.113.9")
    assert AuditEvent.objects.filter(action="recording.disclosed").count() == 1


@pytest.mark.parametrize(
    ("role", "borough", "expected"),
    [
        (None, None, 302),
        (Role.OFFICER, "QA", 403),
        (Role.CUSTODY_SERGEANT, "QA", 403),
        (Role.DISCLOSURE_OFFICER, "QA", 200),
        (Role.DISCLOSURE_OFFICER, "EK", 404),
        (Role.SYSTEM_ADMIN, "QA", 200),
    ],
)
def test_disclosure_pages_permission_matrix(client, role, borough, expected):
    recording = f.recording_row()
    req = received_request(recording)
    if role is not None:
        f.signed_in(client, role, borough_code=borough)
    queue = client.get("/disclosure/")
    assert queue.status_code == (expected if expected != 404 else 200)
    if expected == 404:
        assert req.reference.encode() not in queue.content
    assert client.get(f"/disclosure/{req.pk}/").status_code == expected
    response = client.post(f"/disclosure/{req.pk}/", {"action": "close", "reason": "x"})
    assert response.status_code == (302 if expected == 200 else expected)
    req.refresh_from_db()
    assert (req.status == RequestStatus.CLOSED) == (expected == 200)


def test_the_queue_is_sorted_by_due_date_with_overdue_in_red(client):
    f.signed_in(client, Role.DISCLOSURE_OFFICER)
    recording = f.recording_row()
    late, soon = received_request(recording), received_request(recording)
    AccessRequest.objects.filter(pk=late.pk).update(
        due_at=london_date(timezone.now()) - timedelta(days=2)
    )
    page = client.get("/disclosure/").content.decode()
    assert page.index(late.reference) < page.index(soon.reference)
    # The late request's row says so in words, in a red tag; the other's does not.
    rows = {
        r.reference: row for row in page.split("</tr>") for r in (late, soon) if r.reference in row
    }
    overdue = 'class="govuk-tag govuk-tag--red">Overdue</strong>'
    assert overdue in rows[late.reference] and overdue not in rows[soon.reference]


def test_the_release_link_opens_a_page_that_explains_the_download_then_downloads(
    client, clip, django_capture_on_commit_callbacks
):
    first, second = f.user(Role.DISCLOSURE_OFFICER), f.user(Role.DISCLOSURE_OFFICER)
    recording = f.ingested_recording(data=clip)
    req = received_request(recording)
    footage_attach(req=req, recording=recording, actor=first)
    request_decide(req=req, actor=first, decision="full", reasons="all of it is theirs")
    with django_capture_on_commit_callbacks(execute=True):
        url = request_approve(req=req, actor=second)
    path = "/" + url.split("/", 3)[3]
    page = client.get(path)
    assert page.status_code == 200
    text = Page(page.content).words("release-details")
    assert "A ZIP file of" in text and "with one video" in text
    link = ReleaseLink.objects.get()
    expires = timezone.localtime(link.expires_at)
    assert f"{expires.day} {expires:%B %Y}" in Page(page.content).words("release-expires")
    # Opening the page discloses nothing: only the download is recorded.
    assert not AuditEvent.objects.filter(action="recording.disclosed").exists()
    download = next(a for t, a in Page(page.content).elements if a.get("id") == "download")
    response = client.get(download["href"])
    assert response["Content-Type"] == "application/zip"
    body = b"".join(response.streaming_content)
    assert body[:2] == b"PK"
    assert AuditEvent.objects.filter(action="recording.disclosed").count() == 1
    ReleaseLink.objects.update(expires_at=timezone.now() - timedelta(seconds=1))
    gone = client.get(path)
    assert gone.status_code == 410 and b"expired" in gone.content
    assert client.get(download["href"]).status_code == 410
    assert client.get("/requests/release/not-a-token/").status_code == 404
