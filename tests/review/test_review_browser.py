"""A custody sergeant's review in real Chromium (Playwright driving Debian's /usr/bin/chromium)."""

from pathlib import Path

import pytest

from common.roles import Role
from evidence.sample_media import make_clip
from tests import factories as f
from tests.browser import PASSWORD, sign_in

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_sign_in_search_play_seek_and_flag(live_server, browser_page):
    page = browser_page
    user = f.user(Role.CUSTODY_SERGEANT, username="sgt.browser", password=PASSWORD)
    cam, _officer = f.issued_camera(borough_code="QA")
    clip = make_clip(seconds=12, width=640, height=360)
    recording = f.ingested_recording(cam=cam, data=clip)
    ranges = []
    page.on(
        "request", lambda r: ranges.append(r.headers.get("range")) if "/media" in r.url else None
    )

    # Sign in: password, then enrol TOTP from the page and type the current code.
    sign_in(page, live_server, user, next_path="/recordings/")

    # Search lands on the list (the original destination), then filter by camera.
    page.wait_for_selector("#search")
    page.fill("#id_camera", cam.serial)
    page.click("#search button[type=submit]")
    page.click(f"a[href='/recordings/{recording.pk}/']")

    # The purpose is asked once, then the player appears.
    page.fill("#purpose", "5201234/26 review of arrest")
    page.click("#purpose-form button[type=submit]")
    page.wait_for_selector("#player")
    page.wait_for_function("document.getElementById('player').readyState >= 1", timeout=20000)
    duration = page.evaluate("document.getElementById('player').duration")
    assert abs(duration - 12) < 1
    page.evaluate(
        "(() => { const v = document.getElementById('player'); v.muted = true; return v.play(); })()"
    )
    page.wait_for_function("document.getElementById('player').currentTime > 0.3", timeout=20000)

    # Seek to the middle: currentTime lands there, and the bytes came by Range requests.
    page.evaluate(
        """() => new Promise(done => { const v = document.getElementById('player');
             v.pause(); v.addEventListener('seeked', () => done(), {once: true});
             v.currentTime = v.duration / 2; })"""
    )
    current = page.evaluate("document.getElementById('player').currentTime")
    assert abs(current - duration / 2) < 0.5
    assert any(r and r.startswith("bytes=") for r in ranges), ranges

    # Flag it as evidence with a crime reference; the hold shows.
    page.select_option("#kind", "evidence")
    page.fill("#crime_reference", "5201234/26")
    page.fill("#reason", "Shows the arrest")
    page.click("#flag-form button[type=submit]")
    page.wait_for_selector("#holds")
    assert "Evidence flag" in page.inner_text("#holds")
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "review-flagged.png"), full_page=True)
