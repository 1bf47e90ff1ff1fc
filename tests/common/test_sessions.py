"""The idle timeout's refresh is written at most once a BWV_SESSION_REFRESH_SECONDS; a session
still ends after SESSION_COOKIE_AGE idle, never later; a change to a session is written at once."""

from datetime import timedelta

import pytest
from django.contrib.sessions.models import Session
from django.utils import timezone

from common.roles import Role
from evidence.playback import CONSULTED
from tests import factories as f

pytestmark = pytest.mark.django_db


def _stored(client) -> Session:
    return Session.objects.get(session_key=client.cookies["sessionid"].value)


def _age_back(client, seconds: int) -> None:
    """As if the session's last write were `seconds` ago."""
    Session.objects.filter(session_key=client.cookies["sessionid"].value).update(
        expire_date=_stored(client).expire_date - timedelta(seconds=seconds)
    )


def test_an_unchanged_session_is_not_rewritten_on_every_request(client, settings):
    f.signed_in(client, Role.CUSTODY_SERGEANT)
    assert client.get("/").status_code == 200
    before = _stored(client)
    for _ in range(3):
        assert client.get("/").status_code == 200
    after = _stored(client)
    assert after.expire_date == before.expire_date and after.session_data == before.session_data


def test_the_expiry_moves_on_once_the_refresh_interval_has_passed(client, settings):
    f.signed_in(client, Role.CUSTODY_SERGEANT)
    assert client.get("/").status_code == 200
    _age_back(client, settings.BWV_SESSION_REFRESH_SECONDS + 1)
    lagging = _stored(client).expire_date
    t0 = timezone.now()
    assert client.get("/").status_code == 200
    moved = _stored(client).expire_date
    assert moved > lagging and moved >= t0 + timedelta(seconds=settings.SESSION_COOKIE_AGE)


def test_the_stored_expiry_is_never_later_than_the_idle_timeout(client, settings):
    f.signed_in(client, Role.CUSTODY_SERGEANT)
    for _ in range(3):
        assert client.get("/").status_code == 200
    now = timezone.now()
    expiry = _stored(client).expire_date
    age, refresh = settings.SESSION_COOKIE_AGE, settings.BWV_SESSION_REFRESH_SECONDS
    assert now + timedelta(seconds=age - refresh) <= expiry <= now + timedelta(seconds=age)


def test_a_session_idle_past_its_expiry_has_ended(client):
    f.signed_in(client, Role.CUSTODY_SERGEANT)
    assert client.get("/").status_code == 200
    Session.objects.filter(session_key=client.cookies["sessionid"].value).update(
        expire_date=timezone.now() - timedelta(seconds=1)
    )
    response = client.get("/")
    assert response.status_code == 302 and response["Location"].startswith("/accounts/login/")


def test_a_change_to_the_session_is_written_at_once(client, small_clip):
    f.signed_in(client, Role.CUSTODY_SERGEANT)
    cam, _officer = f.issued_camera(borough_code="QA")
    recording = f.ingested_recording(cam=cam, data=small_clip)
    assert client.get("/").status_code == 200  # a fresh refresh: only a change is written now
    opened = client.post(f"/recordings/{recording.pk}/", {"purpose": "5201234/26 review"})
    assert opened.status_code == 302
    assert str(recording.pk) in _stored(client).get_decoded()[CONSULTED]
