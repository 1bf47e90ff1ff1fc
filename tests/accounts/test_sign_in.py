"""Staff sign-in: password, then TOTP (enrolled on first sign-in), lockout, audit, sign-out."""

import re
import time

import pytest
from django.contrib.sessions.backends.db import SessionStore
from django.test import Client
from django_otp.oath import totp
from django_otp.plugins.otp_totp.models import TOTPDevice

from accounts.services import backup_codes_issue
from common.roles import Role
from custody.models import AuditEvent
from tests import factories as f

pytestmark = pytest.mark.django_db
PASSWORD = "correct-horse-battery-9"


def _code(device: TOTPDevice) -> str:
    return f"{totp(device.bin_key, step=device.step, t0=device.t0, digits=device.digits):06d}"


def test_a_password_alone_does_not_open_staff_pages(client):
    user = f.user(Role.CUSTODY_SERGEANT)
    response = client.post("/accounts/login/", {"username": user.username, "password": PASSWORD})
    assert response.status_code == 302 and response["Location"].startswith("/accounts/otp/")
    home = client.get("/")
    assert home.status_code == 302 and home["Location"].startswith("/accounts/otp/")


def test_first_sign_in_enrols_totp_from_a_qr_code_then_opens_the_site(client):
    user = f.user(Role.CUSTODY_SERGEANT)
    client.post(
        "/accounts/login/", {"username": user.username, "password": PASSWORD, "next": "/retention/"}
    )
    page = client.get("/accounts/otp/?next=/retention/")
    assert page.status_code == 200
    assert b"<svg" in page.content and b"Set up your authenticator" in page.content
    secret = re.search(rb'id="totp-secret">([A-Z2-7]+)<', page.content).group(1)
    device = TOTPDevice.objects.get(user=user)
    assert not device.confirmed and len(secret) >= 32

    wrong = client.post("/accounts/otp/", {"token": "000000", "next": "/retention/"})
    assert wrong.status_code == 200 and b"not right" in wrong.content
    # Straight after a wrong code even the right one must wait (throttled guessing).
    throttled = client.post("/accounts/otp/", {"token": _code(device), "next": "/retention/"})
    assert b"Too many wrong codes" in throttled.content
    time.sleep(1.1)
    right = client.post("/accounts/otp/", {"token": _code(device), "next": "/retention/"})
    # Enrolled: the answer shows the backup codes, and leads on to the page asked for.
    assert right.status_code == 200 and b'id="backup-codes"' in right.content
    assert b'id="backup-codes-continue" href="/retention/"' in right.content
    device.refresh_from_db()
    assert device.confirmed
    assert client.get("/retention/").status_code == 200
    actions = list(
        AuditEvent.objects.filter(actor_user_id=user.pk).values_list("action", flat=True)
    )
    assert actions == [
        "auth.sign_in_failed",
        "auth.totp_enrolled",
        "auth.signed_in",
        "auth.backup_codes_issued",
    ]


def test_the_session_key_changes_when_the_second_factor_is_verified(client):
    user = f.user(Role.CUSTODY_SERGEANT)
    device = TOTPDevice.objects.create(user=user, name="phone", confirmed=True)
    backup_codes_issue(user=user, actor=user)
    client.post("/accounts/login/", {"username": user.username, "password": PASSWORD})
    before = client.cookies["sessionid"].value
    assert client.post("/accounts/otp/", {"token": _code(device)}).status_code == 302
    after = client.cookies["sessionid"].value
    assert after != before
    assert not SessionStore(session_key=before).exists(before)
    assert client.get("/").status_code == 200
    # Whoever held the old session id (fixed before the second factor) holds nothing now.
    stale = Client()
    stale.cookies["sessionid"] = before
    assert stale.get("/")["Location"].startswith("/accounts/login/")
    assert stale.get("/accounts/otp/")["Location"].startswith("/accounts/login/")


def test_a_later_sign_in_asks_for_the_code_without_showing_the_secret(client):
    user = f.user(Role.BOROUGH_ADMIN)
    device = TOTPDevice.objects.create(user=user, name="phone", confirmed=True)
    backup_codes_issue(user=user, actor=user)
    client.post("/accounts/login/", {"username": user.username, "password": PASSWORD})
    page = client.get("/accounts/otp/")
    assert b"Enter your code" in page.content and b"<svg" not in page.content
    assert client.post("/accounts/otp/", {"token": _code(device)}).status_code == 302
    assert client.get("/").status_code == 200


def test_an_open_redirect_through_next_is_refused(client):
    user = f.user(Role.BOROUGH_ADMIN)
    device = TOTPDevice.objects.create(user=user, name="phone", confirmed=True)
    backup_codes_issue(user=user, actor=user)
    client.post("/accounts/login/", {"username": user.username, "password": PASSWORD})
    response = client.post(
        "/accounts/otp/", {"token": _code(device), "next": "https://evil.example/"}
    )
    assert response["Location"] == "/"


def test_repeated_wrong_passwords_lock_the_account_and_are_audited(client):
    user = f.user(Role.CUSTODY_SERGEANT)
    for _ in range(5):
        response = client.post("/accounts/login/", {"username": user.username, "password": "wrong"})
    # Locked now: even the right password is refused, with a clear page.
    response = client.post("/accounts/login/", {"username": user.username, "password": PASSWORD})
    assert response.status_code == 429
    assert b"too many wrong attempts" in response.content
    assert (
        AuditEvent.objects.filter(action="auth.sign_in_failed", object_id=user.username).count()
        >= 4
    )


def test_sign_out_ends_the_session(client):
    user = f.user(Role.CUSTODY_SERGEANT)
    f.sign_in(client, user)
    assert client.get("/").status_code == 200
    assert client.post("/accounts/logout/").status_code == 200
    assert client.get("/").status_code == 302


def test_the_session_is_an_idle_timeout(settings):
    assert settings.SESSION_SAVE_EVERY_REQUEST and settings.SESSION_COOKIE_AGE <= 30 * 60
