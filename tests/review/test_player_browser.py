"""The player component in real Chromium: frame steps by the probed frame rate, speeds, the
keyboard shortcuts, the timeline's markers, the wall-clock time and an audited still."""

import os
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from django.utils import timezone

from common.roles import Role
from custody.models import AuditEvent
from custody.services import share_create
from evidence.sample_media import make_clip
from evidence.services import bookmark_add
from requests_portal.models import AccessRequest, RequestKind, RequestStatus
from review.services import case_add_recording, case_create, export_create, recording_flag
from tests import factories as f
from tests.a11y import DESKTOP, PHONE, axe_violations
from tests.browser import PASSWORD, sign_in

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

SHOTS = Path(os.environ.get("BWV_SCREENSHOTS", "test-artifacts/player"))
FPS = 30  # not the player's default of 25: the step must come from the probe


def _time(page) -> float:
    return page.evaluate("document.getElementById('player').currentTime")


def _settle(page) -> None:
    page.evaluate(
        """() => new Promise(done => { const v = document.getElementById('player');
             if (!v.seeking) return requestAnimationFrame(() => done());
             v.addEventListener('seeked', () => done(), {once: true}); })"""
    )


def test_the_player_steps_frames_changes_speed_obeys_the_keys_and_seeks_from_markers(
    live_server, browser_page
):
    page = browser_page
    page.set_viewport_size(DESKTOP)
    sergeant = f.user(Role.CUSTODY_SERGEANT, username="sgt.player", password=PASSWORD)
    cam, _officer = f.issued_camera(borough_code="QA")
    start = datetime(2026, 7, 1, 13, 0, 0, tzinfo=UTC)  # 14:00:00 in London (summer time)
    recording = f.ingested_recording(
        cam=cam, data=make_clip(seconds=12, width=640, height=360, fps=FPS), start=start
    )
    bookmark_add(recording=recording, actor=sergeant, at_seconds=7.5, note="The arrest")
    recording_flag(
        recording=recording,
        kind="evidence",
        actor=sergeant,
        reason="Shows the arrest",
        crime_reference="5201234/26",
    )

    sign_in(page, live_server, sergeant, next_path=f"/recordings/{recording.pk}/")
    page.fill("#purpose", "5201234/26 review of arrest")
    page.click("#purpose-form button[type=submit]")
    page.wait_for_selector(".bwv-player--ready")
    page.wait_for_function("document.getElementById('player').readyState >= 2", timeout=20000)
    # The script replaced the browser's own controls with the player's.
    assert page.evaluate("document.getElementById('player').controls") is False

    # One frame forward and back, by the button and by the keys: 1/30 s each, paused.
    page.evaluate("document.getElementById('player').currentTime = 3")
    _settle(page)
    page.click("[data-action=frame-forward]")
    _settle(page)
    assert _time(page) == pytest.approx(3 + 1 / FPS, abs=1e-3)
    page.focus("#player")
    page.keyboard.press("Period")
    _settle(page)
    assert _time(page) == pytest.approx(3 + 2 / FPS, abs=1e-3)
    page.keyboard.press("Comma")
    page.keyboard.press("Comma")
    page.keyboard.press("Comma")
    _settle(page)
    assert _time(page) == pytest.approx(3 - 1 / FPS, abs=1e-3)
    assert page.inner_text("[data-frame]") == str(3 * FPS - 1)
    # The wall-clock time beside it is the recording's start plus the position, in London.
    assert "14:00:02" in page.inner_text("[data-wall-time]")

    # Arrows move 5 s.
    page.keyboard.press("ArrowRight")
    _settle(page)
    assert _time(page) == pytest.approx(8 - 1 / FPS, abs=1e-3)
    page.keyboard.press("ArrowLeft")
    page.keyboard.press("ArrowLeft")
    _settle(page)
    assert _time(page) == pytest.approx(0, abs=1e-3)  # never before the start

    # Speed: the menu, then L faster and J slower; space and K play and pause.
    page.select_option("#player-rate", "0.25")
    assert page.evaluate("document.getElementById('player').playbackRate") == 0.25
    page.select_option("#player-rate", "1")
    page.focus("#player")
    page.evaluate("document.getElementById('player').muted = true")
    page.keyboard.press("Space")
    page.wait_for_function("!document.getElementById('player').paused", timeout=10000)
    page.wait_for_function(
        "document.querySelector('[data-action=play]').textContent === 'Pause'", timeout=5000
    )
    page.keyboard.press("l")
    page.keyboard.press("l")
    page.keyboard.press("l")
    page.keyboard.press("l")
    page.keyboard.press("l")
    assert page.evaluate("document.getElementById('player').playbackRate") == 4
    page.keyboard.press("j")
    assert page.evaluate("document.getElementById('player').playbackRate") == 2
    page.keyboard.press("k")
    assert page.evaluate("document.getElementById('player').paused") is True
    page.keyboard.press("Space")
    page.wait_for_function("!document.getElementById('player').paused", timeout=10000)
    page.keyboard.press("Space")
    assert page.evaluate("document.getElementById('player').paused") is True

    # Typing in the bookmark form is not taken for shortcuts.
    before = _time(page)
    page.fill("#bookmark-note", "")
    page.type("#bookmark-note", "l k j , .")
    assert page.evaluate("document.getElementById('player').paused") is True
    assert _time(page) == pytest.approx(before, abs=1e-3)

    # The help panel opens with "?".
    page.focus("#player")
    page.keyboard.press("?")
    assert page.is_visible("text=Play; again to go faster")

    # The bookmark's marker sits at 7.5 s of the timeline and seeks there; the flag's at 0.
    duration = page.evaluate("document.getElementById('player').duration")
    marker = page.locator(".bwv-player__marker--bookmark")
    assert marker.get_attribute("title") == "Bookmark at 7.5 s: The arrest"
    timeline = page.locator(".bwv-player__markers").bounding_box()
    box = marker.bounding_box()
    assert box["x"] + box["width"] / 2 == pytest.approx(
        timeline["x"] + timeline["width"] * 7.5 / duration, abs=2
    )
    marker.click()
    _settle(page)
    assert _time(page) == pytest.approx(7.5, abs=1e-3)
    page.locator(".bwv-player__marker--flag").click()
    _settle(page)
    assert _time(page) == pytest.approx(0, abs=1e-3)
    # The bookmark's own "Play from" button seeks the same player.
    page.click("button[data-seek][data-player=player]")
    _settle(page)
    assert _time(page) == pytest.approx(7.5, abs=1e-3)

    page.click(".bwv-player__seek")  # the focus on the timeline, as a person scrubbing leaves it
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / "recording-player-1366.png"), full_page=False)
    assert axe_violations(page) == []

    # A still of the frame shown: a PNG download, audited with the frame's time.
    page.evaluate("document.getElementById('player').currentTime = 2")
    _settle(page)
    with page.expect_download() as download:
        page.click("[data-still-form] button")
    png = Path(download.value.path()).read_bytes()
    assert png.startswith(b"\x89PNG\r\n\x1a\n")
    event = AuditEvent.objects.get(action="recording.still_taken", object_id=str(recording.pk))
    assert event.actor_user_id == sergeant.pk
    assert event.detail["at_seconds"] == pytest.approx(2, abs=1e-3)
    assert event.detail["frame_seconds"] == pytest.approx(2, abs=1 / FPS)


def _ready(page) -> None:
    page.wait_for_selector(".bwv-player--ready")
    page.wait_for_function("document.getElementById('player').readyState >= 2", timeout=20000)


def test_the_share_page_plays_in_the_same_player_on_a_phone(live_server, browser_page):
    page = browser_page
    sergeant = f.user(Role.CUSTODY_SERGEANT, username="sgt.share", password=PASSWORD)
    cam, _officer = f.issued_camera(borough_code="QA")
    recordings = [
        f.ingested_recording(cam=cam, data=make_clip(seconds=4, width=640, height=360, tone_hz=hz))
        for hz in (440, 880)
    ]
    export = export_create(
        actor=sergeant,
        recordings=recordings,
        case=None,
        recipient="CPS London North",
        purpose="charging file R v Doe",
    )
    _link, token = share_create(
        export=export, actor=sergeant, recipient_email="lawyer@cps.gov.uk", days=7
    )
    SHOTS.mkdir(parents=True, exist_ok=True)
    for name, viewport in (("phone-390", PHONE), ("desktop-1366", DESKTOP)):
        page.set_viewport_size(viewport)
        page.goto(f"{live_server.url}/share/{token}/")
        _ready(page)
        page.keyboard.press("Tab")  # the focus into the page, as a keyboard user's would be
        page.focus("#player")
        page.keyboard.press("Period")
        _settle(page)
        assert _time(page) == pytest.approx(1 / 25, abs=1e-3)
        assert axe_violations(page) == []
        page.screenshot(path=str(SHOTS / f"share-player-{name}.png"), full_page=True)


def test_the_case_and_request_pages_play_in_the_same_player(live_server, browser_page):
    page = browser_page
    page.set_viewport_size(DESKTOP)
    officer = f.user(Role.DISCLOSURE_OFFICER, username="do.player", password=PASSWORD)
    cam, _officer = f.issued_camera(borough_code="QA")
    recording = f.ingested_recording(cam=cam, data=make_clip(seconds=4, width=640, height=360))
    case = case_create(
        crime_reference="5201234/26", title="R v Doe", borough=recording.borough, actor=officer
    )
    case_add_recording(case=case, recording=recording, actor=officer)
    req = AccessRequest.objects.create(
        reference="SAR-2026-000001",
        kind=RequestKind.RIGHT_OF_ACCESS,
        status=RequestStatus.IN_PROGRESS,
        name="Sam",
        email="sam@example.org",
        incident_at=recording.started_at,
        borough=recording.borough,
        place="Station Rd",
        description="stop and search",
        received_at=timezone.now(),
        clock_started_at=timezone.now(),
        due_at=timezone.now() + timedelta(days=30),
    )
    sign_in(page, live_server, officer, next_path=f"/cases/{case.pk}/")
    page.click("#case-recordings .bwv-play-form button")
    _ready(page)
    assert axe_violations(page) == []
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / "case-player-1366.png"), full_page=True)

    # Another recording of the incident, not yet opened in this session: its opening is recorded
    # with the request as its purpose.
    candidate = f.ingested_recording(
        cam=cam, data=make_clip(seconds=4, width=640, height=360, tone_hz=880)
    )
    page.goto(f"{live_server.url}/disclosure/{req.pk}/")
    page.click(f"#candidates .bwv-play-form:has(input[value='{candidate.pk}']) button")
    _ready(page)
    viewed = AuditEvent.objects.get(action="recording.viewed", object_id=str(candidate.pk))
    assert viewed.justification == "access request SAR-2026-000001"
    assert axe_violations(page) == []
    page.screenshot(path=str(SHOTS / "request-player-1366.png"), full_page=True)
