"""The redaction editor in Chromium, on a clip of a real face moving across the picture: boxes
drawn with the mouse at two moments, proposals accepted, the tracker, the preview, the keyboard,
and the copy made from what was drawn."""

import io
import json
from pathlib import Path

import av
import numpy as np
import pytest

from common.roles import Role
from custody.models import AuditEvent
from evidence.redaction import derived_bytes, parse_spec
from requests_portal.services import footage_attach
from tests import factories as f
from tests.a11y import DESKTOP, axe_violations
from tests.browser import PASSWORD, sign_in
from tests.requests_portal.moving_face import (
    FPS,
    HEIGHT,
    WIDTH,
    face_at,
    frame_at,
    moving_face_clip,
)
from tests.requests_portal.test_disclosure import received_request

SHOTS = Path("/tmp/bwv-redact-editor-shots")


@pytest.fixture
def editor(live_server, browser_page):
    """The redact page of a request's footage (the moving face), opened by a disclosure officer
    who gave the purpose of viewing it: the editor is ready and the video's metadata loaded."""
    page = browser_page
    page.set_viewport_size(DESKTOP)
    recording = f.ingested_recording(data=moving_face_clip())
    officer = f.user(Role.DISCLOSURE_OFFICER, username="disclosure.editor", password=PASSWORD)
    footage = footage_attach(req=received_request(recording), recording=recording, actor=officer)
    path = f"/disclosure/{footage.request_id}/footage/{footage.pk}/redact"
    sign_in(page, live_server, officer, next_path=path)
    page.click("#consult-form button[type=submit]")
    page.wait_for_selector(".bwv-redact--ready")
    page.wait_for_function("document.getElementById('redact-video').readyState >= 2")
    return page, footage


def seek(page, t: float) -> None:
    page.evaluate(
        """async (t) => {
             const v = document.getElementById('redact-video');
             v.pause();
             await new Promise((done) => {
               v.addEventListener('seeked', done, {once: true});
               v.currentTime = t;
             });
           }""",
        t,
    )


def to_page(page, x: float, y: float) -> tuple[float, float]:
    """A point of the picture (its pixels) on the page, through the drawing layer's scale."""
    r = page.locator(".bwv-redact__layer").bounding_box()
    return r["x"] + x * r["width"] / WIDTH, r["y"] + y * r["height"] / HEIGHT


def drag(page, start: tuple[float, float], end: tuple[float, float]) -> None:
    page.locator(".bwv-redact__layer").scroll_into_view_if_needed()
    page.mouse.move(*to_page(page, *start))
    page.mouse.down()
    page.mouse.move(*to_page(page, *end), steps=8)
    page.mouse.up()


def spec_boxes(page) -> list[dict]:
    return json.loads(page.input_value("#boxes"))


def frames(data: bytes) -> list[np.ndarray]:
    with av.open(io.BytesIO(data)) as container:
        return [fr.to_ndarray(format="rgb24").astype(int) for fr in container.decode(video=0)]


def test_a_box_drawn_at_two_moments_moves_between_them_in_the_copy(editor, eager_tasks):
    page, footage = editor
    first, second = 0.4, 2.4
    # At the first moment the officer draws a box around the face with the mouse...
    x, y, w, h = face_at(first)
    seek(page, first)
    drag(page, (x, y), (x + w, y + h))
    # ...and at the second moment drags it (by its middle) onto the face, which has moved on.
    seek(page, second)
    x2, y2, _w, _h = face_at(second)
    drag(page, (x + w / 2, y + h / 2), (x2 + w / 2, y2 + h / 2))
    [box] = spec_boxes(page)
    assert box["start"] == first and box["mode"] == "black"
    assert [k["t"] for k in box["keyframes"]] == [first, second]
    for k, t in zip(box["keyframes"], (first, second), strict=True):
        truth = face_at(t)
        assert all(
            abs(a - b) <= 2 for a, b in zip((k["x"], k["y"], k["w"], k["h"]), truth, strict=True)
        ), (k, truth)
    # Halfway, the box shown over the video is where the server's rule puts it.
    seek(page, 1.4)
    shown = page.locator(".bwv-redact__box").bounding_box()
    [parsed], _ = parse_spec(boxes=[box], mutes=[], width=WIDTH, height=HEIGHT, duration=3)
    px, py, pw, ph = parsed.rect_at(1.4)
    left, top = to_page(page, px, py)
    assert abs(shown["x"] - left) < 3 and abs(shown["y"] - top) < 3
    assert abs(face_at(1.4)[0] - px) <= 3  # the face moves in a straight line, so does the box

    page.click("#redact-form button[type=submit]")
    page.wait_for_url("**/disclosure/*/")
    footage.refresh_from_db()
    assert footage.derived.spec["boxes"] == [parsed.as_dict()]
    # The copy: from the in point on, each frame is blacked out inside the interpolated box and
    # the same picture outside it (up to the codec's noise, and the chroma's bleed at the edge).
    before, after = frames(moving_face_clip()), frames(derived_bytes(footage.derived))
    assert len(after) == len(before)
    for i, (a, b) in enumerate(zip(before, after, strict=True)):
        t = i / FPS
        rect = parsed.rect_at(t)
        mask = np.ones(a.shape[:2], dtype=bool)
        if rect is not None:
            rx, ry, rw, rh = rect
            assert b[ry + 2 : ry + rh - 2, rx + 2 : rx + rw - 2].mean() < 4, t
            mask[max(0, ry - 8) : ry + rh + 8, max(0, rx - 8) : rx + rw + 8] = False
        assert np.abs(a[mask] - b[mask]).mean() < 3.0, t


def test_proposals_tracker_preview_and_keyboard(editor):
    page, footage = editor
    # The face finder proposes; each proposal is a dashed outline until accepted or rejected.
    page.click("[data-do=faces]")
    page.wait_for_selector("[data-proposal-list] li")
    proposals = page.locator("[data-proposal-list] li").count()
    assert proposals >= 3
    seek(page, 0.0)
    assert page.locator(".bwv-redact__proposal").count() >= 1
    page.locator("[data-proposal-list] li").first.locator(".bwv-redact__reject").click()
    page.locator("[data-proposal-list] li").first.locator(".bwv-redact__accept").click()
    assert page.locator("[data-proposal-list] li").count() == proposals - 2
    [accepted] = spec_boxes(page)
    assert accepted["mode"] == "pixelate" and len(accepted["keyframes"]) == 1
    k = accepted["keyframes"][0]
    truth = face_at(accepted["end"] - 1.0)  # the frame the face was found in, a second apart
    assert k["x"] <= truth[0] + 4 and k["x"] + k["w"] >= truth[0] + truth[2] - 4

    # A box for the tracker, from the keyboard: N makes one in the middle, arrows move it onto
    # the face, Shift and arrows size it; I and O set its time range; T tracks it forward.
    seek(page, 0.2)
    page.locator(".bwv-redact__layer").focus()
    page.keyboard.press("n")
    [_, made] = spec_boxes(page)
    assert made["start"] == 0.2 and made["keyframes"][0]["w"] == WIDTH // 4
    start = made["keyframes"][0]
    fx, fy, fw, fh = face_at(0.2)
    step = WIDTH // 100
    for _ in range(abs(start["x"] - fx) // step):
        page.keyboard.press("ArrowLeft" if start["x"] > fx else "ArrowRight")
    for _ in range(abs(start["y"] - fy) // step):
        page.keyboard.press("ArrowUp" if start["y"] > fy else "ArrowDown")
    for _ in range(abs(start["h"] - fh) // step):
        page.keyboard.press("Shift+ArrowUp" if start["h"] > fh else "Shift+ArrowDown")
    for _ in range(abs(start["w"] - fw) // step):
        page.keyboard.press("Shift+ArrowLeft" if start["w"] > fw else "Shift+ArrowRight")
    assert page.evaluate("document.getElementById('redact-video').currentTime") == 0.2
    seek(page, 2.6)
    page.locator(".bwv-redact__layer").focus()
    page.keyboard.press("o")
    seek(page, 0.2)
    page.locator(".bwv-redact__layer").focus()
    page.keyboard.press("t")
    page.wait_for_selector("[data-status]:has-text('tracked')", timeout=60_000)
    tracked = spec_boxes(page)[1]
    placed = tracked["keyframes"][0]
    assert abs(placed["x"] - fx) <= step and abs(placed["y"] - fy) <= step
    assert tracked["end"] == pytest.approx(2.64)
    assert len(tracked["keyframes"]) >= 10
    for k in tracked["keyframes"][1:]:
        truth = face_at(k["t"])
        assert abs(k["x"] - truth[0]) <= 8 and abs(k["y"] - truth[1]) <= 8, (k, truth)
    assert tracked["keyframes"][-1]["x"] > placed["x"] + 120

    # M twice: the audio is muted between.
    seek(page, 0.5)
    page.locator(".bwv-redact__layer").focus()
    page.keyboard.press("m")
    seek(page, 1.0)
    page.keyboard.press("m")
    assert json.loads(page.input_value("#mutes")) == [{"start": 0.5, "end": 1.0}]

    # P: the preview of this frame, drawn by the server, differs from the original inside the
    # boxes only; it is audited.
    seek(page, 1.6)
    page.locator(".bwv-redact__layer").focus()
    page.keyboard.press("p")
    page.wait_for_selector("[data-preview]:not([hidden])")
    pixels = page.evaluate(
        """() => {
             const c = document.querySelector('[data-preview]');
             return Array.from(c.getContext('2d').getImageData(0, 0, c.width, c.height).data);
           }"""
    )
    shown = np.array(pixels, dtype=int).reshape(HEIGHT, WIDTH, 4)[:, :, :3]
    original = frame_at(1.6).astype(int)
    boxes, _ = parse_spec(boxes=spec_boxes(page), mutes=[], width=WIDTH, height=HEIGHT, duration=3)
    changed = np.abs(shown - original).max(axis=2) > 60
    covered = np.zeros(changed.shape, dtype=bool)
    for b in boxes:
        rect = b.rect_at(1.6)
        if rect:
            x, y, w, h = rect
            covered[y : y + h, x : x + w] = True
    assert changed[covered].mean() > 0.3  # the face is pixelated and the tracked box black
    assert changed[~covered].mean() < 0.001  # elsewhere the original, up to the codec's noise
    assert AuditEvent.objects.filter(action="recording.redaction_previewed").count() == 1

    # Delete removes the selected box; the list and the timeline follow.
    assert page.locator("[data-box-lane] .bwv-redact__range--box").count() == 2
    page.locator(".bwv-redact__layer").focus()

    SHOTS.mkdir(exist_ok=True)
    page.click("[data-redact-help] summary")
    page.click("[data-do=faces]")
    page.wait_for_selector("[data-proposal-list] li")
    seek(page, 1.6)
    page.locator(".bwv-redact__layer").focus()
    page.screenshot(path=str(SHOTS / "editor-desktop.png"), full_page=True)
    assert axe_violations(page) == []

    page.keyboard.press("Delete")
    assert len(spec_boxes(page)) == 1
    assert page.locator("[data-box-list] li").count() == 1
