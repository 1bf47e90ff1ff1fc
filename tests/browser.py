"""Helpers for the Chromium tests."""

import base64

from django_otp.oath import totp

PASSWORD = "correct-horse-battery-9"


def sign_in(page, live_server, user, next_path: str = "/") -> list[str]:
    """Password, then enrol TOTP from the page and type the current code; then the backup codes
    are shown once, and the page goes on to `next_path`. Returns the backup codes shown."""
    page.goto(f"{live_server.url}{next_path}")
    page.fill("#id_username", user.username)
    page.fill("#id_password", PASSWORD)
    page.click("#login-form button[type=submit]")
    page.wait_for_selector("#totp-secret")
    secret = page.inner_text("#totp-secret")
    key = base64.b32decode(secret + "=" * (-len(secret) % 8))
    page.fill("#id_token", f"{totp(key):06d}")
    page.click("#otp-form button[type=submit]")
    page.wait_for_selector("#backup-codes, main:not(:has(#otp-form))")
    if not page.locator("#backup-codes").count():
        return []
    codes = [c.replace(" ", "") for c in page.locator("#backup-codes code").all_inner_texts()]
    page.click("#backup-codes-continue")
    page.wait_for_load_state()
    return codes


def fill_incident_time(page, when) -> None:
    """The public form's date and time of the incident, in its day, month, year, hour and minute
    boxes."""
    page.fill("#id_incident_date_day", str(when.day))
    page.fill("#id_incident_date_month", str(when.month))
    page.fill("#id_incident_date_year", str(when.year))
    page.fill("#id_incident_time_hour", f"{when.hour:02d}")
    page.fill("#id_incident_time_minute", f"{when.minute:02d}")
