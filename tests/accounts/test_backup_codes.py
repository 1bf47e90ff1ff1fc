"""Backup codes (single use, shown once at enrolment) and a system admin's audited reset of someone's
second factor when their phone is lost."""

import re
import threading
import time

import pytest
from django.db import connection
from django.test import Client
from django_otp.oath import totp
from django_otp.plugins.otp_static.models import StaticDevice, StaticToken
from django_otp.plugins.otp_totp.models import TOTPDevice

from accounts.services import backup_codes_issue
from common.roles import Role
from custody.models import AuditEvent
from tests import factories as f

pytestmark = pytest.mark.django_db
PASSWORD = "correct-horse-battery-9"


def _code(device: TOTPDevice) -> str:
    return f"{totp(device.bin_key, step=device.step, t0=device.t0, digits=device.digits):06d}"


def _enrolled(role=Role.CUSTODY_SERGEANT):
    """A user with an authenticator and a set of backup codes (as after their first sign-in)."""
    user = f.user(role)
    device = TOTPDevice.objects.create(user=user, name="phone", confirmed=True)
    return user, device, backup_codes_issue(user=user, actor=user)


def _password(client, user) -> None:
    response = client.post("/accounts/login/", {"username": user.username, "password": PASSWORD})
    assert response.status_code == 302


def test_enrolment_shows_ten_backup_codes_once(client):
    user = f.user(Role.OFFICER)
    _password(client, user)
    page = client.get("/accounts/otp/")
    assert b"Set up your authenticator" in page.content
    device = TOTPDevice.objects.get(user=user)
    shown = client.post("/accounts/otp/", {"token": _code(device), "next": "/recordings/"})
    assert shown.status_code == 200
    assert b"Save your backup codes now" in shown.content and b"shown only once" in shown.content
    assert "no-store" in shown["Cache-Control"]
    codes = [c.replace(" ", "") for c in re.findall(r"<code>([a-z2-7 ]{9})</code>", shown.text)]
    assert len(codes) == 10 == len(set(codes))
    # Kept as django-otp keeps them, one static device with one token per code, and nowhere else.
    stored = StaticToken.objects.filter(device__user=user, device__confirmed=True)
    assert sorted(stored.values_list("token", flat=True)) == sorted(codes)
    assert not any(code in str(dict(client.session)) for code in codes)
    assert b'id="backup-codes-continue" href="/recordings/"' in shown.content

    # Shown once: a reload of that answer, or the page again, goes on without them.
    again = client.post("/accounts/otp/", {"token": _code(device), "next": "/recordings/"})
    assert again.status_code == 302 and again["Location"] == "/recordings/"
    assert client.get("/accounts/otp/?next=/cases/")["Location"] == "/cases/"
    assert StaticToken.objects.filter(device__user=user).count() == 10
    event = AuditEvent.objects.get(action="auth.backup_codes_issued")
    assert event.actor_user_id == user.pk and event.detail == {"count": 10}
    assert not any(code in event.body for code in codes)


def test_a_backup_code_signs_in_once_and_is_audited_as_such(client):
    user, _device, codes = _enrolled()
    _password(client, user)
    typed = f"{codes[0][:4].upper()} {codes[0][4:].upper()}"  # as printed, in capitals
    response = client.post("/accounts/otp/", {"token": typed, "next": "/cases/"})
    assert response.status_code == 302 and response["Location"] == "/cases/"
    assert client.get("/cases/").status_code == 200
    assert not StaticToken.objects.filter(token=codes[0]).exists()
    used = AuditEvent.objects.get(action="auth.backup_code_used")
    assert used.actor_user_id == user.pk and used.detail == {"left": 9}
    signed_in = AuditEvent.objects.filter(action="auth.signed_in").last()
    assert signed_in.detail["factor"] == "backup_code"

    # The same code a second time is refused, and that is audited too.
    client.post("/accounts/logout/")
    _password(client, user)
    reused = client.post("/accounts/otp/", {"token": codes[0], "next": "/cases/"})
    assert reused.status_code == 200 and b"used already" in reused.content
    assert client.get("/cases/")["Location"].startswith("/accounts/otp/")
    failed = AuditEvent.objects.filter(action="auth.sign_in_failed").last()
    assert failed.detail["step"] == "backup_code"
    # Another of the codes still works.
    time.sleep(1.1)
    assert client.post("/accounts/otp/", {"token": codes[1]})["Location"] == "/"


@pytest.mark.django_db(transaction=True)
def test_one_backup_code_sent_twice_at_once_signs_in_once(monkeypatch):
    user, _device, codes = _enrolled()
    first, second = Client(), Client()
    _password(first, user)
    _password(second, user)
    # Fault injection: both requests are held until both reach the code check, an interleaving
    # real traffic produces only by chance. The hold gives up after a second, as it must when the
    # device's row lock makes the second request wait for the first.
    barrier = threading.Barrier(2, timeout=1)
    check = StaticDevice.verify_is_allowed

    def together(device):
        try:
            barrier.wait()
        except threading.BrokenBarrierError:
            pass
        return check(device)

    monkeypatch.setattr(StaticDevice, "verify_is_allowed", together)
    answers = []

    def send(client):
        try:
            answers.append(client.post("/accounts/otp/", {"token": codes[0]}).status_code)
        finally:
            connection.close()

    threads = [threading.Thread(target=send, args=(c,)) for c in (first, second)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert sorted(answers) == [200, 302]
    assert AuditEvent.objects.filter(action="auth.backup_code_used").count() == 1
    assert not StaticToken.objects.filter(token=codes[0]).exists()


def test_wrong_backup_codes_are_throttled_like_wrong_totp_codes(client):
    user, _device, codes = _enrolled()
    _password(client, user)
    wrong = client.post("/accounts/otp/", {"token": "aaaa-bbbb"})
    assert b"used already" in wrong.content
    throttled = client.post("/accounts/otp/", {"token": codes[0]})
    assert b"Too many wrong codes" in throttled.content
    assert StaticToken.objects.filter(token=codes[0]).exists()  # not spent by a refused try


def test_a_new_set_follows_a_totp_sign_in_once_every_code_is_used(client):
    user, device, codes = _enrolled()
    StaticToken.objects.filter(device__user=user).delete()
    _password(client, user)
    shown = client.post("/accounts/otp/", {"token": _code(device)})
    assert len(re.findall(r"<code>[a-z2-7 ]{9}</code>", shown.text)) == 10
    assert StaticToken.objects.filter(device__user=user).count() == 10
    # The same device is kept (a session verified by it stays verified); only its codes change.
    assert StaticDevice.objects.filter(user=user).count() == 1


def test_a_user_with_codes_left_goes_straight_on(client):
    user, device, _codes = _enrolled()
    _password(client, user)
    assert client.post("/accounts/otp/", {"token": _code(device)})["Location"] == "/"


# -- The reset by a system admin -------------------------------------------------------------------

RESET = "/accounts/reset-second-factor/"


def test_the_reset_page_is_for_system_admins_with_both_factors_only(client):
    target, _device, _codes = _enrolled(Role.OFFICER)
    post = {"username": target.username, "reason": "phone lost"}
    # Anonymous: to the password step.
    assert client.get(RESET)["Location"].startswith("/accounts/login/")
    assert client.post(RESET, post)["Location"].startswith("/accounts/login/")
    # A system admin with a password only: to the second factor.
    sysadmin = f.user(Role.SYSTEM_ADMIN)
    _password(client, sysadmin)
    assert client.get(RESET)["Location"].startswith("/accounts/otp/")
    assert client.post(RESET, post)["Location"].startswith("/accounts/otp/")
    client.logout()
    # Every other role, of the target's own borough or another: no such page.
    for role, borough in [
        (Role.OFFICER, "QA"),
        (Role.CUSTODY_SERGEANT, "QA"),
        (Role.BOROUGH_ADMIN, "QA"),
        (Role.BOROUGH_ADMIN, "EK"),
        (Role.DISCLOSURE_OFFICER, "QA"),
    ]:
        other = Client()
        f.signed_in(other, role, borough_code=borough)
        assert other.get(RESET).status_code == 404, role
        assert other.post(RESET, post).status_code == 404, role
    assert TOTPDevice.objects.filter(user=target).exists()
    assert not AuditEvent.objects.filter(action="auth.second_factor_reset").exists()
    # A system admin with both factors.
    f.sign_in(client, sysadmin)
    page = client.get(RESET)
    assert page.status_code == 200 and b'id="reset-form"' in page.content


def test_a_reset_removes_every_device_ends_every_session_and_enrolment_starts_again(client):
    target, device, codes = _enrolled(Role.CUSTODY_SERGEANT)
    # The target is signed in twice: fully on one machine, with a password only on another.
    full, half = Client(), Client()
    _password(full, target)
    full.post("/accounts/otp/", {"token": _code(device)})
    assert full.get("/cases/").status_code == 200
    _password(half, target)
    bystander = Client()
    f.signed_in(bystander, Role.CUSTODY_SERGEANT)

    sysadmin = f.signed_in(client, Role.SYSTEM_ADMIN)
    reason = "Phone lost on 3 March; identity checked in person at Harrow"
    response = client.post(RESET, {"username": target.username, "reason": reason}, follow=True)
    assert response.status_code == 200
    assert f"The second factor of {target.username} was reset" in response.text

    assert not TOTPDevice.objects.filter(user=target).exists()
    assert not StaticDevice.objects.filter(user=target).exists()
    assert not StaticToken.objects.filter(token__in=codes).exists()
    # Both of the target's sessions are over: back to the password, not just to the code.
    assert full.get("/cases/")["Location"].startswith("/accounts/login/")
    assert half.get("/accounts/otp/")["Location"].startswith("/accounts/login/")
    # Nobody else's session is touched.
    assert bystander.get("/cases/").status_code == 200
    assert client.get(RESET).status_code == 200
    event = AuditEvent.objects.get(action="auth.second_factor_reset")
    assert event.actor_user_id == sysadmin.pk and event.object_id == str(target.pk)
    assert event.justification == reason
    assert event.detail["devices_removed"] == 2 and event.detail["sessions_ended"] == 2

    # The next sign-in enrols a new authenticator from the QR code; the old codes are dead.
    fresh = Client()
    _password(fresh, target)
    page = fresh.get("/accounts/otp/")
    assert b"Set up your authenticator" in page.content and b"<svg" in page.content
    refused = fresh.post("/accounts/otp/", {"token": codes[1]})
    assert refused.status_code == 200
    assert fresh.get("/cases/")["Location"].startswith("/accounts/otp/")


def test_a_reset_needs_a_reason_and_a_known_user_and_is_not_for_oneself(client):
    target, _device, _codes = _enrolled(Role.OFFICER)
    sysadmin = f.signed_in(client, Role.SYSTEM_ADMIN)
    for post, message in [
        ({"username": target.username, "reason": "   "}, "Enter the reason for the reset"),
        ({"username": "nobody.here", "reason": "phone lost"}, "There is no user with that name"),
        ({"username": sysadmin.username, "reason": "phone lost"}, "cannot reset your own"),
    ]:
        response = client.post(RESET, post)
        assert response.status_code == 200 and message in response.text, post
        assert 'id="error-summary"' in response.text
    assert TOTPDevice.objects.filter(user=target).exists()
    assert TOTPDevice.objects.filter(user=sysadmin).exists()
    assert not AuditEvent.objects.filter(action="auth.second_factor_reset").exists()
