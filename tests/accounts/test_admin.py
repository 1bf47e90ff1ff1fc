"""The Django admin: both factors for every page, no secret on any page, tokens made with audit."""

import base64

import pytest
from django.contrib.admin.models import LogEntry
from django_otp.plugins.otp_static.models import StaticDevice, StaticToken
from django_otp.plugins.otp_totp.models import TOTPDevice
from rest_framework.authtoken.models import Token

from common.roles import Role
from custody.models import AuditEvent
from tests import factories as f

pytestmark = pytest.mark.django_db
PASSWORD = "correct-horse-battery-9"


def _deep_pages(user) -> list[str]:
    return ["/admin/", f"/admin/auth/user/{user.pk}/change/", "/admin/custody/auditevent/"]


def test_a_password_alone_opens_no_admin_page_and_is_sent_to_the_second_factor(client):
    admin = f.user(Role.SYSTEM_ADMIN)
    client.post("/accounts/login/", {"username": admin.username, "password": PASSWORD})
    for path in _deep_pages(admin):
        response = client.get(path)
        assert response.status_code == 302, path
        assert response["Location"].startswith("/accounts/otp/?next="), (path, response)
        assert path.replace("/", "%2F") in response["Location"]


def test_the_admins_own_login_form_signs_nobody_in(client):
    admin = f.user(Role.SYSTEM_ADMIN)
    response = client.post("/admin/login/", {"username": admin.username, "password": PASSWORD})
    assert response.status_code == 302 and response["Location"].startswith("/accounts/login/")
    assert "_auth_user_id" not in client.session
    assert client.get("/admin/")["Location"].startswith("/accounts/login/?next=%2Fadmin%2F")


def test_both_factors_open_the_admin_to_a_system_admin_only(client):
    admin = f.signed_in(client, Role.SYSTEM_ADMIN)
    for path in _deep_pages(admin):
        assert client.get(path).status_code == 200, path
    client.logout()
    f.signed_in(client, Role.CUSTODY_SERGEANT)
    response = client.get("/admin/", follow=True)
    assert response.status_code == 403


def test_no_admin_page_shows_a_totp_key_or_a_backup_code(client):
    f.signed_in(client, Role.SYSTEM_ADMIN)
    officer = f.user(Role.OFFICER)
    device = TOTPDevice.objects.create(user=officer, name="phone", confirmed=True)
    backup = StaticDevice.objects.create(user=officer, name="Backup codes", confirmed=True)
    StaticToken.objects.create(device=backup, token="k3jd7qpa")
    secrets = [device.key, base64.b32encode(device.bin_key).decode().rstrip("="), "k3jd7qpa"]
    pages = [
        "/admin/otp_totp/totpdevice/",
        f"/admin/otp_totp/totpdevice/{device.pk}/change/",
        "/admin/otp_static/staticdevice/",
        f"/admin/otp_static/staticdevice/{backup.pk}/change/",
    ]
    for path in pages:
        response = client.get(path)
        assert response.status_code == 200, path
        html = response.content.decode()
        assert officer.username in html
        for secret in secrets:
            assert secret not in html and secret.lower() not in html.lower(), path
    # django-otp's own pages that print the key or its QR code are gone.
    for path in (
        f"/admin/otp_totp/totpdevice/{device.pk}/config/",
        f"/admin/otp_totp/totpdevice/{device.pk}/qrcode/",
    ):
        assert client.get(path).status_code in (302, 404), path
        assert device.key not in client.get(path, follow=True).content.decode()
    # Nor can an authenticator be changed there (a reset is the audited staff page).
    deleted = client.post(f"/admin/otp_totp/totpdevice/{device.pk}/delete/", {"post": "yes"})
    assert deleted.status_code == 403
    assert TOTPDevice.objects.filter(pk=device.pk).exists()


def test_creating_an_api_token_in_the_admin_is_audited_and_shows_the_key_once(client):
    admin = f.signed_in(client, Role.SYSTEM_ADMIN)
    sergeant = f.user(Role.CUSTODY_SERGEANT)
    response = client.post("/admin/accounts/apitoken/add/", {"user": sergeant.pk})
    assert response.status_code == 200
    token = Token.objects.get(user=sergeant)
    assert token.key in response.content.decode()  # shown once, to the admin who made it
    event = AuditEvent.objects.get(action="auth.api_token_created")
    assert event.actor_user_id == admin.pk
    assert (event.object_type, event.object_id) == ("auth.user", str(sergeant.pk))
    assert event.recipient == sergeant.username
    # From then on no page shows it, and the admin's own log does not keep it either.
    for path in (
        "/admin/accounts/apitoken/",
        f"/admin/accounts/apitoken/{sergeant.pk}/change/",
        f"/admin/accounts/apitoken/{sergeant.pk}/delete/",
        "/admin/",
    ):
        page = client.get(path)
        assert page.status_code == 200, path
        assert token.key not in page.content.decode(), path
    assert not LogEntry.objects.filter(object_repr__contains=token.key).exists()
    assert not LogEntry.objects.filter(object_id=token.key).exists()
    # DRF's own token admin, which lists the keys, is not there.
    assert client.get("/admin/authtoken/tokenproxy/").status_code == 404


def test_a_second_token_for_the_same_user_is_refused_with_a_message(client):
    f.signed_in(client, Role.SYSTEM_ADMIN)
    sergeant = f.user(Role.CUSTODY_SERGEANT)
    client.post("/admin/accounts/apitoken/add/", {"user": sergeant.pk})
    again = client.post("/admin/accounts/apitoken/add/", {"user": sergeant.pk})
    assert again.status_code == 200 and b"already exists" in again.content
    assert Token.objects.filter(user=sergeant).count() == 1
    assert AuditEvent.objects.filter(action="auth.api_token_created").count() == 1


def test_revoking_an_api_token_in_the_admin_is_audited(client):
    admin = f.signed_in(client, Role.SYSTEM_ADMIN)
    sergeant = f.user(Role.CUSTODY_SERGEANT)
    client.post("/admin/accounts/apitoken/add/", {"user": sergeant.pk})
    response = client.post(f"/admin/accounts/apitoken/{sergeant.pk}/delete/", {"post": "yes"})
    assert response.status_code == 302
    assert not Token.objects.filter(user=sergeant).exists()
    event = AuditEvent.objects.get(action="auth.api_token_revoked")
    assert event.actor_user_id == admin.pk and event.object_id == str(sergeant.pk)


@pytest.mark.parametrize(
    "target", ["https://evil.example/", "//evil.example", "/\\evil.example", "javascript:alert(1)"]
)
def test_the_admin_sign_in_does_not_send_the_browser_to_another_site(client, target):
    response = client.get("/admin/login/", {"next": target})
    assert response.status_code == 302
    assert response["Location"] == "/accounts/login/?next=%2Fadmin%2F"
