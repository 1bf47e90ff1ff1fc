"""Posters in lists and the player's filmstrip: who may see them, and what is audited.

A list's small poster is no consultation (review.views.recording_thumbnail_view): it is shown to
anyone whose scope covers the recording, with no purpose asked and nothing audited, and is 404
outside that scope. The filmstrip is footage: only once the purpose was given."""

import av
import pytest

from common.roles import Role
from custody.models import AuditEvent
from evidence.filmstrip import recording_filmstrip_make
from review.services import case_add_recording, case_create
from tests import factories as f

pytestmark = pytest.mark.django_db


@pytest.fixture
def recording(small_clip):
    cam, _officer = f.issued_camera(borough_code="QA")
    recording = f.ingested_recording(cam=cam, data=small_clip)
    assert recording_filmstrip_make(recording_id=recording.pk) == "made"
    recording.refresh_from_db()
    return recording


def _jpeg_width(data: bytes) -> int:
    return next(iter(av.CodecContext.create("mjpeg", "r").decode(av.Packet(data)))).width


def _consult(client, recording):
    response = client.post(f"/recordings/{recording.pk}/", {"purpose": "5201234/26 review"})
    assert response.status_code == 302


@pytest.mark.parametrize(
    "role, borough, thumbnail, filmstrip",
    [
        (Role.CUSTODY_SERGEANT, "QA", 200, 200),
        (Role.BOROUGH_ADMIN, "QA", 200, 200),
        (Role.DISCLOSURE_OFFICER, "QA", 200, 200),
        (Role.SYSTEM_ADMIN, "QA", 200, 200),
        (Role.CUSTODY_SERGEANT, "EK", 404, 404),  # another borough: as if it did not exist
        (Role.OFFICER, "QA", 404, 404),  # not their own footage
        (None, "QA", 404, 404),
    ],
)
def test_who_may_see_a_thumbnail_and_a_filmstrip(
    client, recording, role, borough, thumbnail, filmstrip
):
    f.signed_in(client, role, borough)
    small = client.get(f"/recordings/{recording.pk}/thumbnail")
    assert small.status_code == thumbnail
    # The filmstrip stays shut until the purpose is given, even in scope.
    assert client.get(f"/recordings/{recording.pk}/filmstrip").status_code == 404
    if thumbnail == 200:
        assert small["Content-Type"] == "image/jpeg" and _jpeg_width(small.content) == 160
        assert small["Cache-Control"] == "private, no-store"
        _consult(client, recording)
    strip = client.get(f"/recordings/{recording.pk}/filmstrip")
    assert strip.status_code == filmstrip
    if filmstrip == 200:
        assert (
            strip["Content-Type"] == "image/jpeg" and strip["Cache-Control"] == "private, no-store"
        )
        assert _jpeg_width(strip.content) == recording.filmstrip["columns"] * 160


def test_anonymous_is_sent_to_sign_in_for_a_thumbnail_and_a_filmstrip(client, recording):
    for url in ("thumbnail", "filmstrip"):
        response = client.get(f"/recordings/{recording.pk}/{url}")
        assert response.status_code == 302 and response["Location"].startswith("/accounts/login/")


def test_a_missing_recording_has_no_thumbnail_like_another_boroughs(client):
    f.signed_in(client, Role.SYSTEM_ADMIN)
    missing = "00000000-0000-4000-8000-000000000000"
    assert client.get(f"/recordings/{missing}/thumbnail").status_code == 404
    assert client.get(f"/recordings/{missing}/filmstrip").status_code == 404


def test_a_page_of_results_with_its_thumbnails_writes_no_audit_event(client, recording):
    others = [f.ingested_recording(cam=recording.camera) for _ in range(2)]
    f.signed_in(client, Role.CUSTODY_SERGEANT, "QA")
    before = AuditEvent.objects.count()
    page = client.get("/recordings/")
    for r in [recording, *others]:
        assert f'src="/recordings/{r.pk}/thumbnail"'.encode() in page.content
        assert client.get(f"/recordings/{r.pk}/thumbnail").status_code == 200
    assert AuditEvent.objects.count() == before


def test_a_recording_without_a_filmstrip_plays_without_one(client, small_clip):
    cam, _officer = f.issued_camera(borough_code="QA")
    recording = f.ingested_recording(cam=cam, data=small_clip)
    f.signed_in(client, Role.CUSTODY_SERGEANT, "QA")
    _consult(client, recording)
    page = client.get(f"/recordings/{recording.pk}/")
    assert b'<video id="player"' in page.content and b"data-filmstrip" not in page.content
    assert client.get(f"/recordings/{recording.pk}/filmstrip").status_code == 404


def test_the_recording_page_offers_the_filmstrip_once_the_purpose_is_given(client, recording):
    f.signed_in(client, Role.CUSTODY_SERGEANT, "QA")
    assert b"/filmstrip" not in client.get(f"/recordings/{recording.pk}/").content
    _consult(client, recording)
    page = client.get(f"/recordings/{recording.pk}/")
    assert f'data-filmstrip="/recordings/{recording.pk}/filmstrip"'.encode() in page.content


def test_the_case_page_shows_a_thumbnail_of_each_recording(client, recording):
    sergeant = f.signed_in(client, Role.CUSTODY_SERGEANT, "QA")
    case = case_create(
        crime_reference="5201234/26", title="R v Doe", borough=recording.borough, actor=sergeant
    )
    case_add_recording(case=case, recording=recording, actor=sergeant)
    page = client.get(f"/cases/{case.pk}/")
    assert f'src="/recordings/{recording.pk}/thumbnail"'.encode() in page.content
