"""The incident view in real Chromium: two recordings whose starts are 3 seconds apart play in
step on one wall-clock timeline (each video at the shared time less its own start, to a frame),
after playing and after a seek; one not started yet waits, one finished says so; and the page
passes axe on a desk and on a phone."""

import os
from datetime import timedelta
from pathlib import Path

import pytest
from django.utils import timezone

from common.roles import Role
from custody.models import AuditEvent
from evidence.incidents import Attendance, incident_record
from evidence.sample_media import make_clip
from tests import factories as f
from tests.a11y import DESKTOP, PHONE, axe_violations
from tests.browser import PASSWORD, sign_in

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

SHOTS = Path(os.environ.get("BWV_SCREENSHOTS", "test-artifacts/player"))
FPS = 25
APART = 3.0  # seconds between the two recordings' starts
FRAME = 1 / FPS


def _times(page) -> tuple[float, float]:
    """Both videos' positions, read in the same moment."""
    return tuple(
        page.evaluate("[1, 2].map(n => document.getElementById('player-' + n).currentTime)")
    )


def _settled(page) -> None:
    """Until neither video is seeking (a seek just asked for has landed)."""
    page.wait_for_function(
        "[1, 2].every(n => !document.getElementById('player-' + n).seeking)", timeout=10000
    )
    page.evaluate("() => new Promise(done => requestAnimationFrame(() => done()))")


def _shared_seek(page, seconds: float) -> None:
    """Drag the shared timeline to `seconds` from the first start (as the range input reports)."""
    page.evaluate(
        """(s) => { const bar = document.getElementById('multicam-seek');
                    bar.value = String(s);
                    bar.dispatchEvent(new Event('input', {bubbles: true}));
                    bar.dispatchEvent(new Event('change', {bubbles: true})); }""",
        seconds,
    )


def _clock(page) -> float:
    return page.evaluate("document.getElementById('multicam').bwvMulticam.time")


def test_two_recordings_play_in_step_on_one_timeline(live_server, browser_page):
    page = browser_page
    page.set_viewport_size(DESKTOP)
    sergeant = f.user(Role.CUSTODY_SERGEANT, username="sgt.multicam", password=PASSWORD)
    start = timezone.now().replace(microsecond=0) - timedelta(hours=2)
    cam_a, _ = f.issued_camera(borough_code="QA")
    cam_b, _ = f.issued_camera(borough_code="QA")
    first = f.ingested_recording(
        cam=cam_a, data=make_clip(seconds=8, fps=FPS, tone_hz=300), start=start, seconds=8
    )
    second = f.ingested_recording(
        cam=cam_b,
        data=make_clip(seconds=8, fps=FPS, tone_hz=500),
        start=start + timedelta(seconds=APART),
        seconds=8,
    )

    sign_in(page, live_server, sergeant, next_path=f"/recordings/{first.pk}/together")
    assert axe_violations(page) == []  # the question of the purpose
    page.fill("#purpose", "5201234/26 fight outside the station")
    page.click("#purpose-form button[type=submit]")
    page.wait_for_selector("[data-multicam-bar]:not([hidden])")
    page.wait_for_function(
        "[1, 2].every(n => document.getElementById('player-' + n).readyState >= 2)",
        timeout=20000,
    )
    viewed = AuditEvent.objects.filter(action="recording.viewed")
    assert {e.object_id for e in viewed} == {str(first.pk), str(second.pk)}
    assert {e.justification for e in viewed} == {"5201234/26 fight outside the station"}

    # At the start the second has not begun: it waits at its first frame and says when it starts.
    _settled(page)
    assert _times(page) == (0, 0)
    assert "Not started yet" in page.inner_text("li:nth-child(2) [data-multicam-state]")

    # A seek on the shared timeline: each video at the shared time less its own start.
    _shared_seek(page, 4.5)
    _settled(page)
    a, b = _times(page)
    assert a == pytest.approx(4.5, abs=FRAME) and b == pytest.approx(4.5 - APART, abs=FRAME)
    assert page.inner_text("li:nth-child(2) [data-multicam-state]") == ""

    # Playing: both move, and stay the starts' difference apart, to a frame, all the while.
    page.click("[data-multicam-action=play]")
    page.wait_for_function(
        "document.getElementById('multicam').bwvMulticam.time > 5.5", timeout=10000
    )
    samples = []
    for _ in range(6):
        page.wait_for_timeout(150)
        samples.append(_times(page))
    assert samples[-1][0] > 5.5, samples
    for a, b in samples:
        assert a - b == pytest.approx(APART, abs=FRAME), samples

    # A seek while playing, back to before the second began: it waits; when its time comes, it
    # plays in step.
    _shared_seek(page, 1.0)
    page.wait_for_function(
        "document.getElementById('multicam').bwvMulticam.time > 3.8", timeout=10000
    )
    page.wait_for_timeout(300)
    a, b = _times(page)
    assert a - b == pytest.approx(APART, abs=FRAME), (a, b)

    # A player's own control moves them all: its pause pauses both, in step.
    page.click("#player-2-player [data-action=play]")
    page.wait_for_function("!document.getElementById('multicam').bwvMulticam.playing")
    _settled(page)
    a, b = _times(page)
    assert page.evaluate("[1, 2].every(n => document.getElementById('player-' + n).paused)")
    assert a - b == pytest.approx(APART, abs=FRAME), (a, b)
    assert _clock(page) == pytest.approx(a, abs=FRAME)
    # A player's shortcut too: full stop, one frame on, for both.
    page.focus("#player-1")
    page.keyboard.press("Period")
    _settled(page)
    a2, b2 = _times(page)
    assert a2 == pytest.approx((round(a * FPS) + 1) / FPS, abs=1e-3)
    assert a2 - b2 == pytest.approx(APART, abs=1e-3)

    # Past the first one's end: it says it has ended, the second goes on.
    _shared_seek(page, 9.0)
    _settled(page)
    a, b = _times(page)
    assert b == pytest.approx(9.0 - APART, abs=FRAME)
    assert "Ended at" in page.inner_text("li:nth-child(1) [data-multicam-state]")

    SHOTS.mkdir(parents=True, exist_ok=True)
    _shared_seek(page, 5.0)
    _settled(page)
    for name, viewport in (("desktop-1366", DESKTOP), ("phone-390", PHONE)):
        page.set_viewport_size(viewport)
        page.evaluate("window.scrollTo(0, 0)")
        page.wait_for_timeout(200)
        assert axe_violations(page) == []
        page.screenshot(path=str(SHOTS / f"incident-view-{name}.png"), full_page=True)


def test_the_incident_page_opens_its_footage_together(live_server, browser_page):
    page = browser_page
    page.set_viewport_size(DESKTOP)
    sergeant = f.user(Role.CUSTODY_SERGEANT, username="sgt.incident", password=PASSWORD)
    at = timezone.now().replace(microsecond=0) - timedelta(hours=2)
    recordings = [f.issued_camera(borough_code="QA") for _ in range(2)]
    clips = [
        f.ingested_recording(
            cam=cam, data=make_clip(seconds=4, fps=FPS), start=at + timedelta(seconds=2 * n)
        )
        for n, (cam, _officer) in enumerate(recordings)
    ]
    incident, _created, tags = incident_record(
        reference="CAD 4321/25NOV26",
        borough=f.borough("QA"),
        opened_at=at - timedelta(minutes=5),
        closed_at=None,
        location="High Street, Harrow",
        grade="I",
        attendances=[
            Attendance(officer, at - timedelta(minutes=3), None) for _cam, officer in recordings
        ],
        actor="system:test",
    )
    assert tags == (2, 0)

    sign_in(page, live_server, sergeant, next_path=f"/incidents/{incident.pk}/")
    assert axe_violations(page) == []
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / "incident-page-desktop-1366.png"), full_page=True)
    page.click("#watch-together")
    page.fill("#purpose", "CAD 4321 review of the arrest")
    page.click("#purpose-form button[type=submit]")
    page.wait_for_selector("[data-multicam-bar]:not([hidden])")
    assert page.locator("video").count() == 2
    for clip in clips:
        assert page.locator(f'a[href="/recordings/{clip.pk}/"]').count() == 1
    viewed = AuditEvent.objects.filter(action="recording.viewed")
    assert sorted(e.object_id for e in viewed) == sorted(str(c.pk) for c in clips)
    assert {e.justification for e in viewed} == {"CAD 4321 review of the arrest"}
    assert axe_violations(page) == []
