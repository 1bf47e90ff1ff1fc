"""The redaction editor's endpoints: face proposals, the tracker and the preview. They are for the
disclosure officers of the request's borough, read the original only through the decrypting
reader, answer bad input with a 400 that says what is wrong, and a preview is audited."""

import hashlib
import io
import json

import av
import numpy as np
import pytest

from common.roles import Role
from custody.models import AuditEvent
from evidence.redaction import RedactionError
from evidence.redaction_assist import track_box
from requests_portal.services import footage_attach
from tests import factories as f
from tests.requests_portal.moving_face import FPS, face_at, frame_at, moving_face_clip
from tests.requests_portal.test_disclosure import received_request

pytestmark = pytest.mark.django_db


@pytest.fixture
def footage():
    recording = f.ingested_recording(data=moving_face_clip())
    req = received_request(recording)
    return footage_attach(req=req, recording=recording, actor=f.user(Role.DISCLOSURE_OFFICER))


def _urls(footage) -> dict[str, str]:
    base = f"/disclosure/{footage.request_id}/footage/{footage.pk}/redact"
    return {"faces": f"{base}/faces", "track": f"{base}/track", "preview": f"{base}/preview"}


def _open_footage(client, footage):
    """The officer opens the footage on the redact page (a consultation, audited)."""
    base = f"/disclosure/{footage.request_id}/footage/{footage.pk}/redact"
    response = client.post(base, {"action": "consult"})
    assert response.status_code == 302


def _post(client, url, body):
    data = body if isinstance(body, str | bytes) else json.dumps(body)
    return client.post(url, data=data, content_type="application/json")


def _overlap(a, b) -> float:
    """Intersection over union of two (x, y, w, h) rectangles."""
    ax, ay, aw, ah = a
    bx, by, bw, bh = b
    iw = max(0, min(ax + aw, bx + bw) - max(ax, bx))
    ih = max(0, min(ay + ah, by + bh) - max(ay, by))
    inter = iw * ih
    return inter / (aw * ah + bw * bh - inter)


BOX = {
    "start": 0,
    "end": 3,
    "mode": "black",
    "keyframes": [{"t": 0, "x": 40, "y": 80, "w": 71, "h": 71}],
}


@pytest.mark.parametrize(
    ("role", "borough", "expected"),
    [
        (None, None, 302),
        (Role.OFFICER, "QA", 403),
        (Role.CUSTODY_SERGEANT, "QA", 403),
        (Role.DISCLOSURE_OFFICER, "QA", 200),
        (Role.DISCLOSURE_OFFICER, "EK", 404),
    ],
)
def test_editor_endpoints_permission_matrix(client, footage, role, borough, expected):
    if role is not None:
        f.signed_in(client, role, borough_code=borough)
    if expected == 200:
        _open_footage(client, footage)
    urls = _urls(footage)
    responses = {
        "faces": _post(client, urls["faces"], {}),
        "track": _post(
            client, urls["track"], {"t": 0, "x": 40, "y": 80, "w": 71, "h": 71, "until": 0.5}
        ),
        "preview": _post(client, urls["preview"], {"t": 1, "boxes": [BOX]}),
    }
    assert {name: r.status_code for name, r in responses.items()} == dict.fromkeys(
        responses, expected
    )
    previews = AuditEvent.objects.filter(action="recording.redaction_previewed").count()
    assert previews == (1 if expected == 200 else 0)
    if expected == 200:
        assert responses["preview"]["Content-Type"] == "image/png"
        assert responses["faces"].json()["proposals"]


def test_editor_endpoints_need_the_purpose_of_viewing_first(client, footage):
    f.signed_in(client, Role.DISCLOSURE_OFFICER)
    response = _post(client, _urls(footage)["preview"], {"t": 1, "boxes": [BOX]})
    assert response.status_code == 403
    assert not AuditEvent.objects.filter(action="recording.redaction_previewed").exists()
    # The redact page offers to open the footage; opening it is a consultation for the request.
    page = client.get(f"/disclosure/{footage.request_id}/footage/{footage.pk}/redact")
    assert b'id="consult-form"' in page.content and b"data-redact-editor" not in page.content
    _open_footage(client, footage)
    event = AuditEvent.objects.filter(action="recording.viewed").latest("seq")
    assert footage.request.reference in event.justification
    page = client.get(f"/disclosure/{footage.request_id}/footage/{footage.pk}/redact")
    assert b"data-redact-editor" in page.content and b'id="consult-form"' not in page.content


@pytest.mark.parametrize(
    ("endpoint", "body", "message"),
    [
        ("preview", "not json", "not valid JSON"),
        ("preview", "[1, 2]", "JSON object"),
        ("preview", '{"t": NaN, "boxes": []}', "not valid JSON"),
        ("preview", '{"t": 1e999, "boxes": []}', "not valid JSON"),
        ("preview", {"t": "soon", "boxes": [BOX]}, "number of seconds"),
        ("preview", {"t": True, "boxes": [BOX]}, "number of seconds"),
        ("preview", {"t": -1, "boxes": [BOX]}, "within the clip"),
        ("preview", {"t": 99, "boxes": [BOX]}, "within the clip"),
        ("preview", {"t": 1}, "lists"),
        ("preview", {"t": 1, "boxes": []}, "at least one box"),
        ("preview", {"t": 1, "boxes": ["x"]}, "each box is an object"),
        ("preview", {"t": 1, "boxes": [{**BOX, "mode": "<script>"}]}, "not '<script>'"),
        (
            "preview",
            {
                "t": 1,
                "boxes": [{**BOX, "keyframes": [{"t": 0, "x": 300, "y": 0, "w": 71, "h": 71}]}],
            },
            "outside the 320x240 picture",
        ),
        (
            "preview",
            {"t": 1, "boxes": [{**BOX, "keyframes": [{"t": 0, "x": {"a": 1}}]}]},
            "keyframe needs",
        ),
        ("preview", "[" * 100000 + "]" * 100000, "not valid JSON"),
        ("track", {"t": 0, "x": 300, "y": 80, "w": 71, "h": 71, "until": 1}, "inside the 320x240"),
        ("track", {"t": 0, "x": 40, "y": 80, "w": 0, "h": 71, "until": 1}, "inside the 320x240"),
        ("track", {"t": 0, "x": "40", "y": 80, "w": 71, "h": 71, "until": 1}, "x, y, w and h"),
        ("track", {"t": 1, "x": 40, "y": 80, "w": 71, "h": 71, "until": 0.5}, "goes forward"),
        ("track", {"t": 0, "x": 40, "y": 80, "w": 71, "h": 71, "until": 60}, "within the clip"),
        ("track", {"t": 0, "x": 40, "y": 80, "w": 71, "h": 71}, "number of seconds"),
    ],
)
def test_bad_input_to_the_editor_is_a_clear_400(client, footage, endpoint, body, message):
    f.signed_in(client, Role.DISCLOSURE_OFFICER)
    _open_footage(client, footage)
    response = _post(client, _urls(footage)[endpoint], body)
    assert response.status_code == 400, response.content[:200]
    assert message.lower() in response.content.decode().lower()
    assert not AuditEvent.objects.filter(action="recording.redaction_previewed").exists()


def _decode(png: bytes) -> np.ndarray:
    with av.open(io.BytesIO(png)) as container:
        return next(container.decode(video=0)).to_ndarray(format="rgb24").astype(int)


def test_the_preview_differs_from_the_original_only_inside_the_box_and_is_audited(client, footage):
    officer = f.signed_in(client, Role.DISCLOSURE_OFFICER)
    _open_footage(client, footage)
    box = {
        "start": 0,
        "end": 3,
        "mode": "black",
        "keyframes": [
            {"t": 0, "x": 30, "y": 70, "w": 90, "h": 90},
            {"t": 2, "x": 150, "y": 70, "w": 90, "h": 90},
        ],
    }
    t = 1.0  # halfway between the keyframes: the box is at x = 90
    response = _post(client, _urls(footage)["preview"], {"t": t, "boxes": [box]})
    assert response.status_code == 200 and response["Content-Type"] == "image/png"
    shown = _decode(response.content)
    original = frame_at(t).astype(int)
    inside = (slice(70, 160), slice(90, 180))
    assert shown[inside].max() == 0  # blacked out: the preview is drawn losslessly
    mask = np.ones(shown.shape[:2], dtype=bool)
    mask[inside] = False
    # Elsewhere the frame decoded from the clip: the original, up to the codec's noise.
    assert np.abs(shown[mask] - original[mask]).mean() < 3
    event = AuditEvent.objects.get(action="recording.redaction_previewed")
    assert event.actor_user_id == officer.pk and event.object_id == str(footage.recording_id)
    assert event.detail["sha256"] == hashlib.sha256(response.content).hexdigest()
    assert (
        event.detail["at_seconds"] == 1.0 and event.detail["boxes"][0]["keyframes"][1]["x"] == 150
    )
    assert footage.request.reference in event.justification


def test_the_tracker_follows_a_moving_face(footage):
    start = face_at(0.0)
    keyframes = track_box(recording=footage.recording, t=0.0, rect=start, until=2.9)
    assert len(keyframes) >= 12  # every fifth frame of 2.9 seconds at 25 fps
    assert all(0 < k["t"] < 2.9 for k in keyframes)
    assert keyframes[-1]["t"] >= 2.9 - 2 / FPS  # up to the end asked for
    for k in keyframes:
        truth = face_at(k["t"])
        place = (k["x"], k["y"], k["w"], k["h"])
        assert _overlap(place, truth) > 0.6, (k, truth)
        assert abs(k["x"] - truth[0]) <= 8 and abs(k["y"] - truth[1]) <= 8, (k, truth)
    assert keyframes[-1]["x"] > start[0] + 140  # it went with the face, not stayed behind


def test_the_tracker_endpoint_answers_keyframes_inside_the_picture(client, footage):
    f.signed_in(client, Role.DISCLOSURE_OFFICER)
    _open_footage(client, footage)
    x, y, w, h = face_at(1.0)
    response = _post(
        client, _urls(footage)["track"], {"t": 1.0, "x": x, "y": y, "w": w, "h": h, "until": 2.0}
    )
    assert response.status_code == 200
    keyframes = response.json()["keyframes"]
    assert keyframes and all(1.0 < k["t"] < 2.0 for k in keyframes)
    for k in keyframes:
        assert 0 <= k["x"] and k["x"] + k["w"] <= 320 and 0 <= k["y"] and k["y"] + k["h"] <= 240
        assert _overlap((k["x"], k["y"], k["w"], k["h"]), face_at(k["t"])) > 0.6


def test_the_tracker_refuses_a_box_outside_the_picture(footage):
    with pytest.raises(RedactionError, match="inside the 320x240"):
        track_box(recording=footage.recording, t=0.0, rect=(300, 0, 71, 71), until=1.0)


def test_the_face_proposals_cover_the_real_face_as_keyframed_boxes(client, footage):
    f.signed_in(client, Role.DISCLOSURE_OFFICER)
    _open_footage(client, footage)
    proposals = _post(client, _urls(footage)["faces"], {}).json()["proposals"]
    assert len(proposals) >= 3  # one a second
    for p in proposals:
        assert set(p) == {"start", "end", "mode", "keyframes"} and len(p["keyframes"]) == 1
        k = p["keyframes"][0]
        assert k["t"] == p["start"]
        truth = face_at(p["end"] - 1.0)  # the frame the face was found in: one a second
        assert k["x"] <= truth[0] + 4 and k["x"] + k["w"] >= truth[0] + truth[2] - 4, (p, truth)
        assert k["y"] <= truth[1] and k["y"] + k["h"] >= truth[1] + truth[3], (p, truth)
