"""The tus ingest API, end to end on the real PostgreSQL and S3: the happy path and every bad input."""

import base64
import hashlib
import time
from datetime import timedelta
from urllib.parse import urlparse

import pytest
from django.utils import timezone

from blobstore import blob_store
from custody.models import AuditEvent
from devices.models import CameraStatus
from devices.services import dock_revoke, dock_rotate_key
from evidence.media import plaintext_range
from evidence.models import IngestUpload, Recording, RecordingState
from tests import factories as f

pytestmark = pytest.mark.django_db
MiB = 1024 * 1024


def _path(response) -> str:
    return urlparse(response["Location"]).path


def _sha256_b64(data: bytes) -> str:
    return "sha256 " + base64.b64encode(hashlib.sha256(data).digest()).decode()


def _stored_keys(recording_id) -> list[str]:
    return list(blob_store().iter_keys(f"recordings/{recording_id}/"))


def _upload_all(tus, url: str, data: bytes, chunk: int, *, checksum: bool = True) -> None:
    offset = 0
    while offset < len(data):
        body = data[offset : offset + chunk]
        response = tus.patch(url, offset, body, checksum=_sha256_b64(body) if checksum else None)
        assert response.status_code == 204, response.content
        offset = int(response["Upload-Offset"])


def test_options_advertise_tus_and_its_extensions(tus):
    response = tus.client.options("/api/v1/ingest/", HTTP_AUTHORIZATION=f"Bearer {tus.key}")
    assert response.status_code == 204, response.content
    assert response["Tus-Version"] == "1.0.0"
    assert set(response["Tus-Extension"].split(",")) == {
        "creation",
        "checksum",
        "termination",
        "expiration",
    }
    assert "sha256" in response["Tus-Checksum-Algorithm"]


@pytest.mark.parametrize("chunk", [3 * MiB + 17, 8 * MiB, 64 * MiB])
def test_a_clip_uploaded_in_any_chunking_is_verified_encrypted_and_attributed(
    tus, cam, big_clip, chunk
):
    created = tus.create(len(big_clip), f.clip_metadata(cam, big_clip, gps="51.58,-0.335"))
    assert created.status_code == 201, created.content
    url = _path(created)
    assert created["Upload-Offset"] == "0" and "Upload-Expires" in created
    _upload_all(tus, url, big_clip, chunk)

    status = tus.get(url).json()
    assert status["state"] == "complete"
    recording = Recording.objects.get(pk=status["recording"])
    assert recording.state == RecordingState.AVAILABLE
    assert recording.sha256 == hashlib.sha256(big_clip).hexdigest()
    assert recording.officer == cam.assignments.get().officer
    assert recording.media_info["video_codec"] == "h264"
    assert recording.media_info["width"] == 1280
    assert abs(recording.duration_seconds - 10) < 0.5
    assert (recording.gps_lat, recording.gps_lon) == (51.58, -0.335)
    assert recording.delete_after == recording.started_at + timedelta(days=31)
    assert b"".join(plaintext_range(recording, 0, recording.size_bytes)) == big_clip
    assert sorted(_stored_keys(recording.pk)) == sorted(
        [recording.storage_key, recording.poster_key]
    )
    actions = list(
        AuditEvent.objects.filter(object_id=str(recording.pk)).values_list("action", flat=True)
    )
    assert actions == ["recording.upload_started", "recording.ingested"]


def test_a_cut_off_patch_keeps_what_arrived_and_the_upload_resumes(cam, big_clip, dock_key):
    from evidence.ingest import IngestError, upload_append, upload_create

    dock, _key = dock_key

    class DropsAfter:
        """A request body whose connection drops after `n` bytes (the fault a dock link makes)."""

        def __init__(self, data: bytes, n: int):
            self.data, self.pos, self.n = data, 0, n

        def read(self, size: int) -> bytes:
            if self.pos >= self.n:
                raise ConnectionResetError("link dropped")
            chunk = self.data[self.pos : min(self.pos + size, self.n)]
            self.pos += len(chunk)
            return chunk

    upload = upload_create(dock=dock, length=len(big_clip), metadata=f.clip_metadata(cam, big_clip))
    part = upload.part_segments * MiB
    cut = 2 * part + MiB + 12345  # past two part boundaries, in the middle of the next part
    with pytest.raises(IngestError):
        upload_append(
            upload_id=upload.id,
            dock=dock,
            offset=0,
            body=DropsAfter(big_clip, cut),
            content_length=len(big_clip),
        )
    upload.refresh_from_db()
    assert upload.offset == cut, "every byte that arrived is kept for the resume"
    assert upload.lease_token is None
    # The tail past the last full part is kept sealed: the clip's bytes are not in the row.
    pending = bytes(upload.pending)
    assert len(pending) == cut - 2 * part + 28
    assert big_clip[2 * part : 2 * part + 64] not in pending

    import io

    rest = big_clip[cut:]
    upload = upload_append(
        upload_id=upload.id, dock=dock, offset=cut, body=io.BytesIO(rest), content_length=len(rest)
    )
    recording = Recording.objects.get(pk=upload.recording_ref)
    assert recording.state == RecordingState.AVAILABLE
    assert b"".join(plaintext_range(recording, 0, recording.size_bytes)) == big_clip


def test_head_reports_the_committed_offset(tus, cam, small_clip):
    url = _path(tus.create(len(small_clip), f.clip_metadata(cam, small_clip)))
    tus.patch(url, 0, small_clip[:1000], checksum=_sha256_b64(small_clip[:1000]))
    head = tus.head(url)
    assert head.status_code == 200
    assert head["Upload-Offset"] == "1000" and head["Upload-Length"] == str(len(small_clip))
    assert head["Cache-Control"] == "no-store"


# -- Bad input: each answers clearly, loses nothing and leaves nothing half-stored --------------


def test_a_wrong_key_is_refused(client, cam, small_clip):
    from tests.evidence.conftest import Tus

    bad = Tus(client, "bwvdock_000000000000_not-the-key")
    response = bad.create(len(small_clip), f.clip_metadata(cam, small_clip))
    assert response.status_code == 401
    assert "unknown or revoked" in response.json()["detail"]
    assert client.post("/api/v1/ingest/", HTTP_TUS_RESUMABLE="1.0.0").status_code == 401
    assert not Recording.objects.exists()


def test_a_revoked_or_rotated_key_stops_working(tus, cam, small_clip, dock_key):
    dock, _ = dock_key
    admin = f.user("borough_admin")
    new_key = dock_rotate_key(dock=dock, actor=admin)
    assert tus.create(len(small_clip), f.clip_metadata(cam, small_clip)).status_code == 401
    tus.key = new_key
    assert tus.create(len(small_clip), f.clip_metadata(cam, small_clip)).status_code == 201
    dock_revoke(dock=dock, actor=admin, reason="stolen")
    assert tus.create(len(small_clip), f.clip_metadata(cam, small_clip)).status_code == 401


@pytest.mark.parametrize("which", ["unknown", "other_borough"])
def test_unknown_and_other_borough_cameras_get_the_same_answer(tus, small_clip, which):
    if which == "unknown":
        meta = f.clip_metadata(f.camera(), small_clip, camera="NO-SUCH-CAMERA")
        serial = "NO-SUCH-CAMERA"
    else:
        camden = f.camera(borough_code="EK")
        meta, serial = f.clip_metadata(camden, small_clip), camden.serial
    response = tus.create(len(small_clip), meta)
    assert response.status_code == 403
    assert (
        response.json()["detail"] == f"camera {serial!r} is not registered in this dock's borough"
    )
    assert not Recording.objects.exists()


@pytest.mark.parametrize("status", [CameraStatus.RETIRED, CameraStatus.LOST])
def test_retired_and_lost_cameras_cannot_upload(tus, small_clip, status):
    camera = f.camera(status=status)
    response = tus.create(len(small_clip), f.clip_metadata(camera, small_clip))
    assert response.status_code == 403
    assert status.label.lower() in response.json()["detail"]


@pytest.mark.parametrize(
    "override, message",
    [
        ({"sha256": ""}, "sha256"),
        ({"sha256": "abc"}, "64 hex digits"),
        ({"start": "yesterday"}, "not an ISO 8601"),
        ({"start": "2026-11-01T10:00:00"}, "UTC offset"),
        ({"end": "2000-01-01T00:00:00+00:00"}, "'end' is before 'start'"),
        ({"filename": "../../etc/passwd"}, "plain file name"),
        ({"gps": "north"}, "latitude,longitude"),
        ({"gps": "91,0"}, "out of range"),
        ({"camera": ""}, "camera"),
    ],
)
def test_malformed_metadata_is_refused_with_a_clear_message(
    tus, cam, small_clip, override, message
):
    response = tus.create(len(small_clip), f.clip_metadata(cam, small_clip, **override))
    assert response.status_code == 400
    assert message in response.json()["detail"]
    assert not Recording.objects.exists()


def test_metadata_that_is_not_base64_is_refused(tus):
    response = tus.client.post(
        "/api/v1/ingest/", **tus.headers(HTTP_UPLOAD_LENGTH="10", HTTP_UPLOAD_METADATA="camera !!!")
    )
    assert response.status_code == 400
    assert "base64" in response.json()["detail"]


def test_missing_tus_version_or_length_is_refused(tus, cam, small_clip):
    response = tus.client.post(
        "/api/v1/ingest/", HTTP_AUTHORIZATION=f"Bearer {tus.key}", HTTP_UPLOAD_LENGTH="10"
    )
    assert response.status_code == 412 and response["Tus-Version"] == "1.0.0"
    response = tus.client.post("/api/v1/ingest/", **tus.headers())
    assert response.status_code == 400 and "Upload-Length" in response.json()["detail"]


def test_an_offset_mismatch_is_a_conflict_and_changes_nothing(tus, cam, small_clip):
    url = _path(tus.create(len(small_clip), f.clip_metadata(cam, small_clip)))
    tus.patch(url, 0, small_clip[:500])
    response = tus.patch(url, 100, small_clip[100:600])
    assert response.status_code == 409
    assert "does not match the server's 500" in response.json()["detail"]
    assert tus.head(url)["Upload-Offset"] == "500"


def test_a_chunk_checksum_mismatch_moves_nothing(tus, cam, small_clip):
    url = _path(tus.create(len(small_clip), f.clip_metadata(cam, small_clip)))
    body = small_clip[:4000]
    response = tus.patch(url, 0, body, checksum=_sha256_b64(b"something else"))
    assert response.status_code == 460
    assert tus.head(url)["Upload-Offset"] == "0"
    # The same chunk with the right checksum then goes through.
    assert tus.patch(url, 0, body, checksum=_sha256_b64(body)).status_code == 204


def test_more_bytes_than_declared_are_refused(tus, cam, small_clip):
    url = _path(tus.create(len(small_clip), f.clip_metadata(cam, small_clip)))
    response = tus.patch(url, 0, small_clip + b"extra")
    assert response.status_code == 413
    assert "exceed the declared length" in response.json()["detail"]
    assert tus.head(url)["Upload-Offset"] == "0"


def test_a_whole_file_hash_mismatch_rejects_and_keeps_nothing(tus, cam, small_clip):
    meta = f.clip_metadata(cam, small_clip, sha256=hashlib.sha256(b"another clip").hexdigest())
    url = _path(tus.create(len(small_clip), meta))
    upload = IngestUpload.objects.get()
    response = tus.patch(url, 0, small_clip)
    assert response.status_code == 460
    assert "whole-file SHA-256" in response.json()["detail"]
    assert not Recording.objects.filter(pk=upload.recording_ref).exists()
    assert _stored_keys(upload.recording_ref) == []
    assert tus.get(url).json()["state"] == "failed"
    assert tus.head(url).status_code == 410
    assert (
        AuditEvent.objects.filter(
            action="recording.upload_rejected", object_id=str(upload.recording_ref)
        ).count()
        == 1
    )


def _meta_without_hash(cam, data: bytes) -> dict[str, str]:
    meta = f.clip_metadata(cam, data)
    del meta["sha256"]
    return meta


def test_a_clip_whose_hash_comes_with_the_last_byte_is_verified(tus, cam, big_clip):
    """A dock that hashes the clip as it sends it declares the hash on the completing PATCH."""
    sha = hashlib.sha256(big_clip).hexdigest()
    url = _path(tus.create(len(big_clip), _meta_without_hash(cam, big_clip)))
    cut = len(big_clip) - 12345
    assert tus.patch(url, 0, big_clip[:cut]).status_code == 204
    response = tus.patch(url, cut, big_clip[cut:], HTTP_BWV_CLIP_SHA256=sha.upper())
    assert response.status_code == 204, response.content
    status = tus.get(url).json()
    assert status["state"] == "complete" and status["sha256"] == sha
    recording = Recording.objects.get(pk=status["recording"])
    assert recording.state == RecordingState.AVAILABLE and recording.sha256 == sha
    assert b"".join(plaintext_range(recording, 0, recording.size_bytes)) == big_clip


def test_the_last_byte_without_a_declared_hash_is_refused_and_loses_nothing(tus, cam, small_clip):
    url = _path(tus.create(len(small_clip), _meta_without_hash(cam, small_clip)))
    half = len(small_clip) // 2
    assert tus.patch(url, 0, small_clip[:half]).status_code == 204
    response = tus.patch(url, half, small_clip[half:])
    assert response.status_code == 400
    assert "Bwv-Clip-Sha256" in response.json()["detail"]
    assert tus.head(url)["Upload-Offset"] == str(half), "what arrived before is kept"
    response = tus.patch(
        url, half, small_clip[half:], HTTP_BWV_CLIP_SHA256=hashlib.sha256(small_clip).hexdigest()
    )
    assert response.status_code == 204, response.content
    assert tus.get(url).json()["state"] == "complete"


@pytest.mark.parametrize("header", ["not-a-hash", "ab" * 31])
def test_a_malformed_clip_hash_header_is_refused_before_anything_moves(
    tus, cam, small_clip, header
):
    url = _path(tus.create(len(small_clip), _meta_without_hash(cam, small_clip)))
    response = tus.patch(url, 0, small_clip, HTTP_BWV_CLIP_SHA256=header)
    assert response.status_code == 400
    assert "Bwv-Clip-Sha256" in response.json()["detail"]
    assert tus.head(url)["Upload-Offset"] == "0"


def test_a_clip_hash_sent_with_the_last_byte_that_does_not_match_rejects_everything(
    tus, cam, small_clip
):
    url = _path(tus.create(len(small_clip), _meta_without_hash(cam, small_clip)))
    upload = IngestUpload.objects.get()
    wrong = hashlib.sha256(b"another clip").hexdigest()
    response = tus.patch(url, 0, small_clip, HTTP_BWV_CLIP_SHA256=wrong)
    assert response.status_code == 460
    assert not Recording.objects.filter(pk=upload.recording_ref).exists()
    assert _stored_keys(upload.recording_ref) == []
    assert tus.get(url).json()["state"] == "failed"


def test_a_clip_hash_that_contradicts_the_one_declared_at_creation_is_refused(tus, cam, small_clip):
    url = _path(tus.create(len(small_clip), f.clip_metadata(cam, small_clip)))
    wrong = hashlib.sha256(b"another clip").hexdigest()
    response = tus.patch(url, 0, small_clip, HTTP_BWV_CLIP_SHA256=wrong)
    assert response.status_code == 400
    assert "differs" in response.json()["detail"]
    assert tus.head(url)["Upload-Offset"] == "0"
    assert not Recording.objects.filter(state=RecordingState.AVAILABLE).exists()


def test_a_file_that_is_not_a_video_is_rejected_and_nothing_is_kept(tus, cam):
    data = b"This is a text file pretending to be a clip.\n" * 5000
    url = _path(tus.create(len(data), f.clip_metadata(cam, data)))
    upload = IngestUpload.objects.get()
    response = tus.patch(url, 0, data)
    assert response.status_code == 415
    assert "not a playable video" in response.json()["detail"]
    assert not Recording.objects.exists()
    assert _stored_keys(upload.recording_ref) == []


def test_the_project_client_can_skip_sending_a_clip_the_server_has(tus, cam, small_clip):
    meta = f.clip_metadata(cam, small_clip)
    first = _path(tus.create(len(small_clip), meta))
    tus.patch(first, 0, small_clip)
    again = tus.create(len(small_clip), meta, skip_if_stored=True)
    assert again.status_code == 201
    assert again["Upload-Offset"] == str(len(small_clip)), "nothing left to send"
    assert again["Bwv-Duplicate"] == "true"
    state = tus.get(_path(again)).json()
    assert state["recording"] == tus.get(first).json()["recording"] and state["duplicate"] is True
    assert Recording.objects.count() == 1


@pytest.mark.django_db(transaction=True)
def test_a_stock_tus_client_sending_a_clip_the_server_has_ends_in_success(
    live_server, tmp_path, small_clip
):
    """tuspy, as a third-party dock would use it: the second upload of the same bytes (from another
    file) is answered as a fresh upload and completes as a duplicate of the first recording."""
    import requests
    from tusclient.client import TusClient

    cam, _officer = f.issued_camera()
    _dock, key = f.dock()
    meta = f.clip_metadata(cam, small_clip)
    auth = {"Authorization": f"Bearer {key}"}
    client = TusClient(f"{live_server.url}/api/v1/ingest/", headers=auth)
    urls = []
    for name in ("CLIP0001.MP4", "copied-again.mp4"):
        folder = tmp_path / str(len(urls))
        folder.mkdir()
        (folder / name).write_bytes(small_clip)
        uploader = client.uploader(file_path=str(folder / name), metadata=meta, chunk_size=MiB)
        uploader.upload()  # raises on any answer that is not a success
        assert uploader.offset == len(small_clip)
        urls.append(uploader.url)

    first, second = (
        requests.get(url, headers={**auth, "Tus-Resumable": "1.0.0"}, timeout=30).json()
        for url in urls
    )
    assert first["state"] == second["state"] == "complete"
    assert (first["duplicate"], second["duplicate"]) == (False, True)
    assert second["recording"] == first["recording"]
    recording = Recording.objects.get()
    assert str(recording.pk) == first["recording"] and recording.state == RecordingState.AVAILABLE
    # The copy was dropped: nothing of it is left in storage, and the duplicate is on record.
    assert IngestUpload.objects.get(pk=second["id"]).recording_ref == recording.pk
    event = AuditEvent.objects.get(action="recording.upload_duplicate")
    assert event.object_id == str(recording.pk) and event.detail["upload"] == second["id"]
    assert not list(blob_store().iter_keys(f"recordings/{event.detail['copy']}/"))


def test_the_same_clip_raced_by_two_uploads_is_one_recording(tus, cam, small_clip):
    meta = f.clip_metadata(cam, small_clip)
    a = _path(tus.create(len(small_clip), meta))
    b = _path(tus.create(len(small_clip), meta))  # both started before either finished
    tus.patch(a, 0, small_clip)
    response = tus.patch(b, 0, small_clip)
    assert response.status_code == 204
    assert tus.get(a).json()["recording"] == tus.get(b).json()["recording"]
    assert Recording.objects.filter(state=RecordingState.AVAILABLE).count() == 1
    assert Recording.objects.count() == 1


def test_termination_drops_the_upload_and_its_parts(tus, cam, big_clip):
    url = _path(tus.create(len(big_clip), f.clip_metadata(cam, big_clip)))
    tus.patch(url, 0, big_clip[: 9 * MiB])
    upload = IngestUpload.objects.get()
    assert tus.delete(url).status_code == 204
    assert not Recording.objects.exists()
    assert _open_multipart_uploads(upload.recording_ref) == []
    assert tus.patch(url, 9 * MiB, big_clip[9 * MiB :]).status_code == 410


def _open_multipart_uploads(recording_id) -> list:
    store = blob_store()
    listed = store.client.list_multipart_uploads(
        Bucket=store.bucket, Prefix=f"recordings/{recording_id}/"
    )
    return listed.get("Uploads", [])


def test_an_abandoned_upload_expires_and_is_cleaned_up(tus, cam, big_clip):
    from evidence.ingest import expire_abandoned_uploads

    url = _path(tus.create(len(big_clip), f.clip_metadata(cam, big_clip)))
    tus.patch(url, 0, big_clip[: 9 * MiB])
    upload = IngestUpload.objects.get()
    assert _open_multipart_uploads(upload.recording_ref)
    assert expire_abandoned_uploads() == 0, "not expired yet"
    assert expire_abandoned_uploads(now=timezone.now() + timedelta(hours=25)) == 1
    upload.refresh_from_db()
    assert upload.state == IngestUpload.State.FAILED and "expired" in upload.error
    assert not Recording.objects.exists()
    assert _open_multipart_uploads(upload.recording_ref) == []
    response = tus.patch(url, 9 * MiB, big_clip[9 * MiB :])
    assert response.status_code == 410


def test_storage_down_mid_upload_is_503_and_the_dock_resumes_later(tus, cam, big_clip, settings):
    import socket

    from django.test import override_settings

    url = _path(tus.create(len(big_clip), f.clip_metadata(cam, big_clip)))
    assert tus.patch(url, 0, big_clip[: 9 * MiB]).status_code == 204
    # A real fault: S3 answers nowhere for the next request.
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        dead = s.getsockname()[1]
    options = {
        **settings.STORAGES["default"]["OPTIONS"],
        "endpoint_url": f"http://127.0.0.1:{dead}",
    }
    down = {**settings.STORAGES, "default": {**settings.STORAGES["default"], "OPTIONS": options}}
    with override_settings(STORAGES=down):
        blob_store.cache_clear()
        response = tus.patch(url, 9 * MiB, big_clip[9 * MiB :])
    blob_store.cache_clear()
    assert response.status_code == 503
    assert "resume the upload later" in response.json()["detail"]
    # Nothing moved while storage was down; the dock asks where to resume and finishes.
    offset = int(tus.head(url)["Upload-Offset"])
    assert offset == 9 * MiB
    response = tus.patch(url, offset, big_clip[offset:])
    assert response.status_code == 204, response.content
    recording = Recording.objects.get(pk=tus.get(url).json()["recording"])
    assert b"".join(plaintext_range(recording, 0, recording.size_bytes)) == big_clip


@pytest.mark.django_db(transaction=True)
def test_a_writer_whose_database_session_dies_frees_the_upload_at_once(live_server, big_clip):
    """Two PATCHes at once: the second is told to wait (423). Then the first writer's PostgreSQL
    session dies mid-PATCH (as in a database restart or a killed web process): the upload must be
    resumable at once, not locked for minutes."""
    import http.client

    import requests
    from django.db import connection

    cam, _officer = f.issued_camera()
    _dock, key = f.dock()
    headers = {"Authorization": f"Bearer {key}", "Tus-Resumable": "1.0.0"}
    created = requests.post(
        f"{live_server.url}/api/v1/ingest/",
        timeout=30,
        headers={
            **headers,
            "Upload-Length": str(len(big_clip)),
            "Upload-Metadata": _encode(f.clip_metadata(cam, big_clip)),
        },
    )
    assert created.status_code == 201, created.content
    url = created.headers["Location"]
    patch = {**headers, "Content-Type": "application/offset+octet-stream", "Upload-Offset": "0"}

    # Sessions that are not the server's for this PATCH (this test's own, and any that other tests
    # left open in this process) are spared below.
    with connection.cursor() as cursor:
        cursor.execute("SELECT pid FROM pg_stat_activity WHERE datname = current_database()")
        spared = [pid for (pid,) in cursor.fetchall()]

    # Writer A: a PATCH whose body is still arriving.
    server = urlparse(live_server.url)
    writer = http.client.HTTPConnection(server.hostname, server.port, timeout=60)
    writer.putrequest("PATCH", urlparse(url).path)
    for name, value in {**patch, "Content-Length": str(len(big_clip))}.items():
        writer.putheader(name, value)
    writer.endheaders()
    writer.send(big_clip[:MiB])
    deadline = time.monotonic() + 30
    while IngestUpload.objects.get().lease_token is None:
        assert time.monotonic() < deadline, "the first PATCH never claimed the upload"
        time.sleep(0.02)

    second = requests.patch(url, data=big_clip[:1000], headers=patch, timeout=30)
    assert second.status_code == 423, second.content

    # The sessions the server opened since then end, the first writer's among them: what a
    # database restart or a killed web process does to them.
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE datname = current_database() AND pid <> ALL(%s)",
            [spared],
        )
        assert cursor.fetchall(), "the first writer's session was ended"
    offset = int(requests.head(url, headers=headers, timeout=30).headers["Upload-Offset"])
    resumed = requests.patch(
        url, data=big_clip[offset:], headers={**patch, "Upload-Offset": str(offset)}, timeout=60
    )
    assert resumed.status_code == 204, resumed.content
    writer.close()

    state = requests.get(url, headers=headers, timeout=30).json()
    assert state["state"] == "complete"
    recording = Recording.objects.get(pk=state["recording"])
    assert b"".join(plaintext_range(recording, 0, recording.size_bytes)) == big_clip


def _encode(metadata: dict[str, str]) -> str:
    return ",".join(f"{k} {base64.b64encode(v.encode()).decode()}" for k, v in metadata.items())


# A header that str.isdigit() accepts but is no number (²), digits of another script (٣), and a
# number no 64-bit column holds.
@pytest.mark.parametrize("value", ["²", "٣", "1²", "99999999999999999999"])
def test_tus_numbers_in_anything_but_ascii_digits_are_refused(tus, cam, small_clip, value):
    meta = f.clip_metadata(cam, small_clip)
    created = tus.client.post(
        "/api/v1/ingest/",
        **tus.headers(HTTP_UPLOAD_LENGTH=value, HTTP_UPLOAD_METADATA=_encode(meta)),
    )
    assert created.status_code == 400
    assert "Upload-Length must be a non-negative integer" in created.json()["detail"]
    assert not Recording.objects.exists() and not IngestUpload.objects.exists()

    url = _path(tus.create(len(small_clip), meta))
    response = tus.patch(url, value, small_clip)
    assert response.status_code == 400
    assert "Upload-Offset must be a non-negative integer" in response.json()["detail"]
    assert tus.head(url)["Upload-Offset"] == "0"
    assert IngestUpload.objects.get().lease_token is None


@pytest.mark.parametrize(
    "start, end",
    [
        ("2026-13-01T10:00:00+00:00", None),  # month 13
        ("2026-02-30T10:00:00+00:00", None),  # 30 February
        ("2026-11-01T25:00:00+00:00", None),  # 25 o'clock
        (None, "2026-11-01T10:61:00+00:00"),  # minute 61
        # A UTC offset that takes the instant out of the calendar.
        ("0001-01-01T00:00:00+14:00", "0001-01-01T00:00:05+14:00"),
        ("9999-12-31T23:59:00-12:00", "9999-12-31T23:59:05-12:00"),
    ],
)
def test_impossible_and_out_of_range_clip_times_are_refused(tus, cam, small_clip, start, end):
    overrides = {k: v for k, v in (("start", start), ("end", end)) if v}
    response = tus.create(len(small_clip), f.clip_metadata(cam, small_clip, **overrides))
    assert response.status_code == 400
    detail = response.json()["detail"]
    assert "is not an ISO 8601 date-time" in detail or "is out of range" in detail
    assert not Recording.objects.exists() and not IngestUpload.objects.exists()


def test_metadata_with_a_nul_character_is_refused(tus, cam, small_clip):
    response = tus.create(len(small_clip), f.clip_metadata(cam, small_clip, camera="CAM\x00QA"))
    assert response.status_code == 400
    assert "NUL" in response.json()["detail"]
    assert not Recording.objects.exists()


def test_an_upload_is_invisible_to_a_dock_of_another_borough(tus, cam, small_clip, client):
    from tests.evidence.conftest import Tus

    url = _path(tus.create(len(small_clip), f.clip_metadata(cam, small_clip)))
    _camden_dock, camden_key = f.dock(borough_code="EK")
    other = Tus(client, camden_key)
    assert other.head(url).status_code == 404
    assert other.patch(url, 0, small_clip).status_code == 404
    assert other.delete(url).status_code == 404
    assert tus.head(url)["Upload-Offset"] == "0"


def test_a_clip_from_an_unissued_camera_is_kept_and_marked_unattributed(tus, small_clip):
    camera = f.camera()
    url = _path(tus.create(len(small_clip), f.clip_metadata(camera, small_clip)))
    assert tus.patch(url, 0, small_clip).status_code == 204
    recording = Recording.objects.get()
    assert recording.state == RecordingState.AVAILABLE and recording.officer is None
    event = AuditEvent.objects.get(action="recording.ingested")
    assert event.detail["attributed"] is False


def test_progress_is_committed_while_parts_are_in_flight_and_survives_a_crash(cam, dock_key):
    """A long PATCH commits durable progress as it goes; a worker that dies keeps that progress."""
    import io

    from evidence.ingest import CHECKPOINT_BYTES, upload_append, upload_create
    from evidence.sample_media import padded_clip

    dock, _key = dock_key
    data = padded_clip(48 * MiB, seed=3)

    class WorkerDies(io.BytesIO):
        """A body that, like a network, lets storage keep up, then the worker dies at 45 MiB.

        Before the last read it waits until S3 really holds the parts below the first checkpoint,
        so the test depends on no machine's speed."""

        def readinto(self, view):
            if self.tell() >= 45 * MiB:
                raise RuntimeError("worker killed")
            if self.tell() >= 44 * MiB:
                _wait_for_parts(upload, -(-CHECKPOINT_BYTES // (upload.part_segments * MiB)))
            return super().readinto(view)

    def _wait_for_parts(upload, count):
        store = blob_store()
        upload.refresh_from_db()
        key = Recording.objects.get(pk=upload.recording_ref).storage_key
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            listed = store.client.list_parts(
                Bucket=store.bucket, Key=key, UploadId=upload.multipart_id
            )
            if len(listed.get("Parts", [])) >= count:
                time.sleep(0.3)  # let the upload threads hand their results back
                return
            time.sleep(0.05)
        raise AssertionError("storage never received the parts")

    upload = upload_create(dock=dock, length=len(data), metadata=f.clip_metadata(cam, data))
    with pytest.raises(RuntimeError):
        upload_append(
            upload_id=upload.id,
            dock=dock,
            offset=0,
            body=WorkerDies(data),
            content_length=len(data),
        )
    upload.refresh_from_db()
    assert CHECKPOINT_BYTES <= upload.offset <= 45 * MiB
    assert upload.offset % (upload.part_segments * MiB) == 0 and bytes(upload.pending) == b""
    resumed = upload_append(
        upload_id=upload.id,
        dock=dock,
        offset=upload.offset,
        body=io.BytesIO(data[upload.offset :]),
        content_length=len(data) - upload.offset,
    )
    recording = Recording.objects.get(pk=resumed.recording_ref)
    assert recording.sha256 == hashlib.sha256(data).hexdigest()
    assert (
        hashlib.sha256(b"".join(plaintext_range(recording, 0, len(data)))).digest()
        == hashlib.sha256(data).digest()
    )


def test_the_embedded_claim_is_exclusive_and_freed_when_its_process_is_killed():
    """The embedded setup (SQLite) claims an upload with an flock: another process, or another
    thread of this one, is refused while it is held, and a holder killed with SIGKILL frees it at
    once (the kernel drops the lock with the process)."""
    import os
    import signal
    import subprocess
    import sys
    import uuid

    from evidence.ingest import _file_claim

    upload_id = uuid.uuid4()
    script = (
        "import django, time, uuid; django.setup()\n"
        "from evidence.ingest import _file_claim\n"
        f"assert _file_claim(uuid.UUID('{upload_id}')) is not None\n"
        "print('held', flush=True); time.sleep(600)\n"
    )
    holder = subprocess.Popen(
        [sys.executable, "-c", script],
        env={**os.environ, "DJANGO_SETTINGS_MODULE": "bwv.settings"},
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "held"
        assert _file_claim(upload_id) is None, "held by another process"
        holder.send_signal(signal.SIGKILL)
        holder.wait(timeout=30)
        release = _file_claim(upload_id)
        assert release is not None, "a killed holder frees the claim at once"
        assert _file_claim(upload_id) is None, "a second claim in this process is refused too"
        release()
        again = _file_claim(upload_id)
        assert again is not None
        again()
        from django.conf import settings

        assert not (settings.VAR_DIR / "ingest-claims" / f"{upload_id}.lock").exists()
    finally:
        holder.kill()
