"""Helpers for the Chromium tests."""

import base64

from django_otp.oath import totp

PASSWORD = "correct-horse-battery-9"


def sign_in(page, live_server, user, next_path: str = "/") -> None:
    """Password, then enrol TOTP from the page and type the current code."""
    page.goto(f"{live_server.url}{next_path}")
    page.fill("#id_username", user.username)
    page.fill("#id_password", PASSWORD)
    page.click("#login-form button[type=submit]")
    page.wait_for_selector("#totp-secret")
    secret = page.inner_text("#totp-secret")
    key = base64.b32decode(secret + "=" * (-len(secret) % 8))
    page.fill("#id_token", f"{totp(key):06d}")
    page.click("#otp-form button[type=submit]")
