"""Posters in the search results and the filmstrip on the player's timeline, in real Chromium."""

import os
from pathlib import Path

import pytest

from common.roles import Role
from evidence.filmstrip import recording_filmstrip_make
from evidence.sample_media import make_clip
from tests import factories as f
from tests.a11y import DESKTOP
from tests.browser import PASSWORD, sign_in

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

SHOTS = Path(os.environ.get("BWV_SCREENSHOTS", "test-artifacts/filmstrip"))


def _loaded(page, selector: str) -> list[int]:
    """The natural widths of the images `selector` finds, once each has finished loading."""
    page.wait_for_function(
        f"[...document.querySelectorAll({selector!r})].every(i => i.complete)", timeout=20000
    )
    return page.evaluate(f"[...document.querySelectorAll({selector!r})].map(i => i.naturalWidth)")


def test_search_results_show_a_poster_of_each_recording(live_server, browser_page):
    page = browser_page
    page.set_viewport_size(DESKTOP)
    sergeant = f.user(Role.CUSTODY_SERGEANT, username="sgt.thumbs", password=PASSWORD)
    cam, _officer = f.issued_camera(borough_code="QA")
    recordings = [f.ingested_recording(cam=cam) for _ in range(3)]
    sign_in(page, live_server, sergeant, next_path="/recordings/")
    page.wait_for_selector("#results")
    widths = _loaded(page, "#results img.bwv-thumbnail")
    assert widths == [160, 160, 160]
    assert page.locator("#results tbody tr").count() == len(recordings)
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / "search.png"), full_page=True)


def test_pointing_at_the_timeline_shows_the_filmstrips_frame_for_that_time(
    live_server, browser_page
):
    page = browser_page
    page.set_viewport_size(DESKTOP)
    sergeant = f.user(Role.CUSTODY_SERGEANT, username="sgt.strip", password=PASSWORD)
    cam, _officer = f.issued_camera(borough_code="QA")
    recording = f.ingested_recording(cam=cam, data=make_clip(seconds=12, width=640, height=360))
    assert recording_filmstrip_make(recording_id=recording.pk) == "made"
    sign_in(page, live_server, sergeant, next_path=f"/recordings/{recording.pk}/")
    page.fill("#purpose", "5201234/26 review")
    page.click("#purpose-form button[type=submit]")
    page.wait_for_selector(".bwv-player--ready")
    strip = page.locator(".bwv-filmstrip")
    assert strip.is_hidden()
    # Nothing is fetched before the timeline is pointed at.
    assert (
        page.evaluate("document.querySelector('.bwv-filmstrip__sprite').getAttribute('src')")
        is None
    )

    page.locator(".bwv-player__seek").scroll_into_view_if_needed()
    seek = page.locator(".bwv-player__seek").bounding_box()
    # Three quarters along a 12-second clip: 9 s, the frame taken at 8 s (the fifth, index 4).
    page.mouse.move(seek["x"] + seek["width"] * 0.75, seek["y"] + seek["height"] / 2)
    page.wait_for_selector(".bwv-filmstrip:not([hidden])")
    assert _loaded(page, ".bwv-filmstrip__sprite") == [6 * 160]  # a row of six frames
    assert page.inner_text("[data-filmstrip-time]") in {"0:08", "0:09"}
    shown = page.evaluate(
        """() => { const s = document.querySelector('.bwv-filmstrip__sprite');
                   const box = document.querySelector('.bwv-filmstrip__frame').getBoundingClientRect();
                   return {transform: s.style.transform, width: box.width, height: box.height}; }"""
    )
    assert shown == {"transform": "translate(-640px, 0px)", "width": 160, "height": 90}
    # The preview sits over the timeline's place for that time, above the bar.
    preview = strip.bounding_box()
    assert preview["y"] + preview["height"] <= seek["y"]
    assert abs(preview["x"] + preview["width"] / 2 - (seek["x"] + seek["width"] * 0.75)) < 20
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / "recording-filmstrip.png"), full_page=False)

    page.mouse.move(0, 0)
    page.wait_for_selector(".bwv-filmstrip", state="hidden")
