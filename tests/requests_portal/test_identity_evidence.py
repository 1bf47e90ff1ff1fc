"""Identity evidence: the requester uploads it on the status page; the disclosure officers of the
request's borough, and nobody else, download it decrypted, streamed and audited, until it is
deleted after the check."""

import hashlib
import os
import re
import secrets
import uuid

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.utils import timezone

from blobstore import blob_store
from common.roles import Role
from custody.models import AuditEvent
from evidence.crypto import OVERHEAD, new_data_key, seal_blob, wrap_data_key
from requests_portal import services
from requests_portal.deadlines import london_date, right_of_access_due
from requests_portal.models import AccessRequest, IdentityDocument, RequestKind, RequestStatus
from requests_portal.services import identity_upload
from tests import factories as f

pytestmark = pytest.mark.django_db
VIEWED = "identity_document.viewed"


@pytest.fixture(autouse=True)
def _mail(settings):
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"


def awaiting_identity(borough_code: str = "QA") -> tuple[AccessRequest, str]:
    """A right of access request waiting for proof of identity, and its status link's token."""
    now = timezone.now()
    token = secrets.token_urlsafe(16)
    req = AccessRequest.objects.create(
        reference=f"SAR-2026-{AccessRequest.objects.count() + 1:06d}",
        kind=RequestKind.RIGHT_OF_ACCESS,
        status=RequestStatus.AWAITING_ID,
        name="Sam",
        email="sam@example.org",
        incident_at=now,
        borough=f.borough(borough_code),
        place="Station Rd",
        description="stop and search",
        received_at=now,
        clock_started_at=now,
        due_at=right_of_access_due(london_date(now)),
        id_requested_at=now,
        status_token_hash=hashlib.sha256(token.encode()).hexdigest(),
    )
    return req, token


def scan(size: int) -> bytes:
    """A JPEG-looking file of `size` bytes (the upload checks the first bytes only)."""
    return b"\xff\xd8\xff\xe0" + os.urandom(size - 4)


def uploaded(req: AccessRequest, data: bytes, name: str = "id.jpg") -> IdentityDocument:
    return identity_upload(req=req, upload=SimpleUploadedFile(name, data))


def link(req: AccessRequest, doc: IdentityDocument) -> str:
    return f"/disclosure/{req.pk}/identity/{doc.pk}"


def test_the_officer_downloads_exactly_the_bytes_the_requester_uploaded(client):
    req, token = awaiting_identity()
    segment = services.ID_SEGMENT_SIZE
    data = scan(2 * segment + 12345)  # two whole segments and a short last one
    sent = client.post(
        f"/requests/status/{token}/", {"identity": SimpleUploadedFile("me.jpg", data)}
    )
    assert sent.status_code == 302
    doc = IdentityDocument.objects.get(request=req)
    stored = blob_store().get(doc.storage_key)
    assert (
        data[:4096] not in stored and len(stored) == len(data) + 3 * OVERHEAD
    )  # sealed, segmented

    officer = f.signed_in(client, Role.DISCLOSURE_OFFICER)
    page = client.get(f"/disclosure/{req.pk}/").content.decode()
    href = re.search(r'href="(/disclosure/\d+/identity/[0-9a-f-]+)"', page).group(1)
    assert href == link(req, doc) and "Download JPEG image" in page

    response = client.get(href)
    assert response.status_code == 200 and response.streaming
    chunks = list(response.streaming_content)
    assert b"".join(chunks) == data
    # Streamed a segment at a time, never the whole document in one piece.
    assert len(chunks) == 3 and max(map(len, chunks)) <= segment
    assert response["Content-Type"] == "image/jpeg"
    assert response["Content-Length"] == str(len(data))
    assert response["Content-Disposition"] == (
        f'attachment; filename="{req.reference}-identity-{str(doc.pk)[:8]}.jpg"'
    )
    assert response["X-Content-Type-Options"] == "nosniff"
    assert "no-store" in response["Cache-Control"]
    assert "sandbox" in response["Content-Security-Policy"]

    event = AuditEvent.objects.get(action=VIEWED)
    assert event.actor_user_id == officer.pk and event.object_id == str(doc.pk)
    assert event.object_type == "requests_portal.identitydocument" and event.borough_code == "QA"
    assert req.reference in event.justification and "identity" in event.justification
    assert event.detail["request"] == req.reference and event.detail["size"] == len(data)
    assert req.steps.filter(title="Proof of identity opened", public=False).count() == 1
    # Each opening is a consultation of its own.
    assert b"".join(client.get(href).streaming_content) == data
    assert AuditEvent.objects.filter(action=VIEWED).count() == 2


@pytest.mark.parametrize(
    ("role", "borough", "expected"),
    [
        (None, None, 302),
        (Role.OFFICER, "QA", 403),
        (Role.CUSTODY_SERGEANT, "QA", 403),
        (Role.BOROUGH_ADMIN, "QA", 403),
        (Role.DISCLOSURE_OFFICER, "EK", 404),
        (Role.DISCLOSURE_OFFICER, "QA", 200),
        (Role.SYSTEM_ADMIN, "QA", 200),
    ],
)
def test_identity_evidence_permission_matrix(client, role, borough, expected):
    req, _token = awaiting_identity()
    data = scan(5000)
    doc = uploaded(req, data)
    if role is not None:
        f.signed_in(client, role, borough_code=borough)
    response = client.get(link(req, doc))
    assert response.status_code == expected
    if expected == 200:
        assert b"".join(response.streaming_content) == data
    else:
        assert data not in response.content
    assert AuditEvent.objects.filter(action=VIEWED).count() == (1 if expected == 200 else 0)


def test_a_document_is_reached_only_through_its_own_request(client):
    req, _token = awaiting_identity()
    other, _other_token = awaiting_identity()
    doc = uploaded(other, scan(5000))
    f.signed_in(client, Role.DISCLOSURE_OFFICER)
    assert client.get(link(req, doc)).status_code == 404
    assert client.get(f"/disclosure/{req.pk}/identity/{uuid.uuid4()}").status_code == 404
    assert client.get(f"/disclosure/{req.pk}/identity/not-a-uuid").status_code == 404
    assert client.post(link(other, doc)).status_code == 405
    assert not AuditEvent.objects.filter(action=VIEWED).exists()


def test_once_checked_and_deleted_the_link_answers_410_and_the_page_says_so(client):
    req, _token = awaiting_identity()
    doc = uploaded(req, scan(5000))
    f.signed_in(client, Role.DISCLOSURE_OFFICER)
    assert client.get(link(req, doc)).status_code == 200
    checked = client.post(
        f"/disclosure/{req.pk}/", {"action": "identity_checked", "accepted": "yes", "note": "ok"}
    )
    assert checked.status_code == 302
    doc.refresh_from_db()
    assert doc.deleted_at is not None and blob_store().size(doc.storage_key) is None
    gone = client.get(link(req, doc))
    assert gone.status_code == 410 and b"has been deleted" in gone.content
    page = client.get(f"/disclosure/{req.pk}/").content.decode()
    assert "after the check" in page and link(req, doc) not in page
    assert 'id="identity-check"' not in page  # nothing left to check
    assert AuditEvent.objects.filter(action=VIEWED).count() == 1  # the opening before, only


def test_a_document_whose_stored_object_is_already_gone_answers_410(client):
    """Deleted from storage a moment before its row was marked (the check is running)."""
    req, _token = awaiting_identity()
    doc = uploaded(req, scan(5000))
    blob_store().delete_many([doc.storage_key])
    f.signed_in(client, Role.DISCLOSURE_OFFICER)
    assert client.get(link(req, doc)).status_code == 410
    assert not AuditEvent.objects.filter(action=VIEWED).exists()


def test_a_stored_type_that_is_not_an_accepted_one_is_served_as_bytes(client):
    req, _token = awaiting_identity()
    data = scan(5000)
    doc = uploaded(req, data)
    IdentityDocument.objects.filter(pk=doc.pk).update(content_type="text/html")
    f.signed_in(client, Role.DISCLOSURE_OFFICER)
    response = client.get(link(req, doc))
    assert response["Content-Type"] == "application/octet-stream"
    assert response["Content-Disposition"].startswith("attachment;")
    assert response["Content-Disposition"].endswith('.bin"')
    assert response["X-Content-Type-Options"] == "nosniff"
    assert b"".join(response.streaming_content) == data


def test_a_document_sealed_in_one_piece_before_segments_still_downloads(client):
    req, _token = awaiting_identity()
    data = b"%PDF-1.4 " + os.urandom(70000)
    doc_id = uuid.uuid4()
    key = new_data_key()
    kek_id, wrapped = wrap_data_key(key, object_id=doc_id)
    blob_store().put(
        f"identity/{doc_id}", seal_blob(key, object_id=doc_id, purpose="identity", data=data)
    )
    doc = IdentityDocument.objects.create(
        id=doc_id,
        request=req,
        storage_key=f"identity/{doc_id}",
        kek_id=kek_id,
        wrapped_key=wrapped,
        content_type="application/pdf",
        size_bytes=len(data),
        uploaded_at=timezone.now(),
    )
    f.signed_in(client, Role.DISCLOSURE_OFFICER)
    response = client.get(link(req, doc))
    assert response.status_code == 200 and response["Content-Type"] == "application/pdf"
    assert b"".join(response.streaming_content) == data
