"""Cross-borough access only through a time-limited, audited grant; bookmarks at timestamps."""

from datetime import timedelta

import pytest
from django.utils import timezone

from common.roles import Role
from custody.models import AuditEvent
from evidence.models import Bookmark, BoroughAccessGrant
from evidence.playback import CONSULTED
from evidence.services import GrantError, borough_grant_create
from tests import factories as f

pytestmark = pytest.mark.django_db


def test_a_grant_opens_another_borough_until_it_expires_or_is_revoked(client):
    camden_rec = f.recording_row(cam=f.camera(borough_code="EK"))
    sergeant = f.signed_in(client, Role.CUSTODY_SERGEANT, borough_code="QA")
    url = f"/recordings/{camden_rec.pk}/"
    assert client.get(url).status_code == 404
    admin = f.user(Role.SYSTEM_ADMIN)
    grant = borough_grant_create(
        user=sergeant, borough=f.borough("EK"), actor=admin, reason="joint investigation", hours=24
    )
    assert client.get(url).status_code == 200
    event = AuditEvent.objects.get(action="access.granted")
    assert event.recipient == sergeant.username and event.justification == "joint investigation"
    BoroughAccessGrant.objects.filter(pk=grant.pk).update(
        expires_at=timezone.now() - timedelta(seconds=1)
    )
    assert client.get(url).status_code == 404


def test_only_a_system_admin_grants_and_never_for_more_than_a_week():
    sergeant = f.user(Role.CUSTODY_SERGEANT)
    with pytest.raises(GrantError, match="only a system admin"):
        borough_grant_create(
            user=sergeant,
            borough=f.borough("EK"),
            actor=f.user(Role.BOROUGH_ADMIN),
            reason="x",
            hours=1,
        )
    with pytest.raises(GrantError, match="7 days"):
        borough_grant_create(
            user=sergeant,
            borough=f.borough("EK"),
            actor=f.user(Role.SYSTEM_ADMIN),
            reason="x",
            hours=24 * 8,
        )


def test_the_grants_page_is_for_system_admins_and_revokes_with_audit(client):
    f.signed_in(client, Role.BOROUGH_ADMIN)
    assert client.get("/grants/").status_code == 404
    client.logout()
    f.signed_in(client, Role.SYSTEM_ADMIN)
    target = f.user(Role.CUSTODY_SERGEANT, username="sgt.target")
    client.post(
        "/grants/", {"username": "sgt.target", "borough": "EK", "hours": "12", "reason": "op X"}
    )
    grant = BoroughAccessGrant.objects.get(user=target)
    assert (grant.expires_at - grant.starts_at) == timedelta(hours=12)
    client.post("/grants/", {"revoke": grant.pk, "reason": "operation closed"})
    grant.refresh_from_db()
    assert grant.revoked_at is not None
    assert AuditEvent.objects.filter(action="access.revoked").count() == 1


def test_bookmarks_need_the_purpose_a_note_and_a_time_inside_the_clip(client):
    f.signed_in(client, Role.CUSTODY_SERGEANT)
    recording = f.recording_row(cam=f.camera(borough_code="QA"), duration_seconds=60.0)
    url = f"/recordings/{recording.pk}/bookmarks"
    assert client.post(url, {"at_seconds": "5", "note": "x"}).status_code == 403
    session = client.session
    session[CONSULTED] = {str(recording.pk): "now"}
    session.save()
    client.post(url, {"at_seconds": "75", "note": "too late"})
    client.post(url, {"at_seconds": "5", "note": ""})
    assert not Bookmark.objects.exists()
    client.post(url, {"at_seconds": "12.5", "note": "arrest"})
    bookmark = Bookmark.objects.get()
    assert bookmark.at_seconds == 12.5 and bookmark.note == "arrest"
    page = client.get(f"/recordings/{recording.pk}/")
    assert b'data-seek="12.5"' in page.content
    assert AuditEvent.objects.filter(action="recording.bookmarked").count() == 1


def test_another_borough_cannot_bookmark(client):
    f.signed_in(client, Role.CUSTODY_SERGEANT, borough_code="EK")
    recording = f.recording_row(cam=f.camera(borough_code="QA"))
    response = client.post(
        f"/recordings/{recording.pk}/bookmarks", {"at_seconds": "1", "note": "x"}
    )
    assert response.status_code == 404
