"""The recording page: scope, the purpose asked once, Range playback, poster, flags."""

import subprocess

import pytest
from django.contrib.auth.models import Group

from common.roles import Role
from custody.models import AuditEvent
from review.models import EvidenceFlag
from tests import factories as f

pytestmark = pytest.mark.django_db


@pytest.fixture
def clip(small_clip):
    return small_clip


@pytest.fixture
def recording(clip):
    cam, _officer = f.issued_camera(borough_code="QA")
    return f.ingested_recording(cam=cam, data=clip)


def _open(client, recording, purpose="5201234/26 review"):
    return client.post(f"/recordings/{recording.pk}/", {"purpose": purpose})


@pytest.mark.parametrize(
    "role, borough, expected",
    [
        (Role.CUSTODY_SERGEANT, "QA", 200),
        (Role.BOROUGH_ADMIN, "QA", 200),
        (Role.DISCLOSURE_OFFICER, "QA", 200),
        (Role.SYSTEM_ADMIN, "QA", 200),
        (Role.CUSTODY_SERGEANT, "EK", 404),  # another borough: as if it did not exist
        (Role.OFFICER, "QA", 404),  # not their own footage
        (None, "QA", 404),
    ],
)
def test_who_may_open_a_recording(client, recording, role, borough, expected):
    f.signed_in(client, role, borough)
    statuses = [
        client.get(f"/recordings/{recording.pk}/{url}").status_code
        for url in ("", "media", "poster")
    ]
    if expected == 404:
        assert statuses == [404, 404, 404]
    else:
        # In scope: the page asks for the purpose; the footage stays shut until it is given.
        assert statuses == [200, 403, 404]


def test_anonymous_is_sent_to_sign_in(client, recording):
    for url in ("", "media", "poster"):
        response = client.get(f"/recordings/{recording.pk}/{url}")
        assert response.status_code == 302 and response["Location"].startswith("/accounts/login/")


def test_a_missing_recording_is_404_like_another_boroughs(client):
    f.signed_in(client, Role.SYSTEM_ADMIN)
    assert client.get("/recordings/00000000-0000-4000-8000-000000000000/").status_code == 404


def test_footage_opens_only_after_a_purpose_which_is_audited_once(client, recording, clip):
    user = f.signed_in(client, Role.CUSTODY_SERGEANT)
    page = client.get(f"/recordings/{recording.pk}/")
    assert b"Why are you viewing this footage?" in page.content
    assert client.get(f"/recordings/{recording.pk}/media").status_code == 403
    short = _open(client, recording, purpose="x")
    assert b"Say why you are viewing" in short.content
    assert _open(client, recording).status_code == 302
    event = AuditEvent.objects.get(action="recording.viewed", object_id=str(recording.pk))
    assert event.actor_user_id == user.pk and event.justification == "5201234/26 review"
    page = client.get(f"/recordings/{recording.pk}/")
    assert b'<video id="player"' in page.content and recording.sha256.encode() in page.content
    media = client.get(f"/recordings/{recording.pk}/media")
    assert media.status_code == 200 and b"".join(media.streaming_content) == clip
    # Asked once: seeking does not ask again nor write more consultation events.
    client.get(f"/recordings/{recording.pk}/media", HTTP_RANGE="bytes=10-20")
    assert AuditEvent.objects.filter(action="recording.viewed").count() == 1


@pytest.mark.parametrize(
    "header, start, end",
    [
        ("bytes=100-199", 100, 200),
        ("bytes=1000-", 1000, None),
        ("bytes=-500", -500, None),
        ("bytes=0-0", 0, 1),
    ],
)
def test_range_requests_return_exactly_those_bytes(client, recording, clip, header, start, end):
    f.signed_in(client, Role.CUSTODY_SERGEANT)
    _open(client, recording)
    response = client.get(f"/recordings/{recording.pk}/media", HTTP_RANGE=header)
    expected = clip[start:end]
    assert response.status_code == 206
    assert b"".join(response.streaming_content) == expected
    first = start if start >= 0 else len(clip) + start
    assert response["Content-Range"] == f"bytes {first}-{first + len(expected) - 1}/{len(clip)}"
    assert response["Content-Length"] == str(len(expected))
    assert response["Accept-Ranges"] == "bytes"


def test_a_range_request_costs_a_fixed_few_queries(
    client, recording, clip, django_assert_num_queries
):
    # The player sends a Range request at every seek: session, user with its roles, second
    # factor, and the recording with its scope (officer's borough, grants) in one query; the idle
    # timeout's session refresh is written at most once a minute (common/sessions.py), not here.
    # Never a query per segment nor an audit write once the consultation is recorded.
    f.signed_in(client, Role.CUSTODY_SERGEANT)
    _open(client, recording)
    for header in ("bytes=0-", f"bytes={len(clip) // 2}-{len(clip) // 2 + 99}"):
        with django_assert_num_queries(4):
            response = client.get(f"/recordings/{recording.pk}/media", HTTP_RANGE=header)
            assert response.status_code == 206 and b"".join(response.streaming_content)


def test_roles_taken_away_close_the_footage_at_the_next_range_request(client, recording):
    # The roles are read with the user, once per request: never remembered from one request to
    # the next, so a sergeant who loses the role loses the footage at once.
    user = f.signed_in(client, Role.CUSTODY_SERGEANT)
    _open(client, recording)
    media = f"/recordings/{recording.pk}/media"
    assert client.get(media, HTTP_RANGE="bytes=0-9").status_code == 206
    user.groups.clear()
    assert client.get(media, HTTP_RANGE="bytes=0-9").status_code == 404
    user.groups.add(Group.objects.get(name=Role.CUSTODY_SERGEANT))
    assert client.get(media, HTTP_RANGE="bytes=0-9").status_code == 206


def test_an_unsatisfiable_range_is_416(client, recording, clip):
    f.signed_in(client, Role.CUSTODY_SERGEANT)
    _open(client, recording)
    response = client.get(f"/recordings/{recording.pk}/media", HTTP_RANGE=f"bytes={len(clip)}-")
    assert response.status_code == 416 and response["Content-Range"] == f"bytes */{len(clip)}"


def test_the_poster_is_a_decrypted_jpeg(client, recording):
    f.signed_in(client, Role.CUSTODY_SERGEANT)
    _open(client, recording)
    poster = client.get(f"/recordings/{recording.pk}/poster")
    assert poster.status_code == 200 and poster.content[:3] == b"\xff\xd8\xff"


def test_a_sergeant_flags_with_a_valid_crime_reference_and_lifts_with_a_reason(client, recording):
    f.signed_in(client, Role.CUSTODY_SERGEANT)
    _open(client, recording)
    url = f"/recordings/{recording.pk}/flag"
    bad = client.post(
        url, {"kind": "evidence", "crime_reference": "12/34", "reason": "assault"}, follow=True
    )
    assert b"is not a crime reference" in bad.content and not EvidenceFlag.objects.exists()
    client.post(url, {"kind": "evidence", "crime_reference": "5201234/26", "reason": "assault"})
    flag = EvidenceFlag.objects.get()
    recording.refresh_from_db()
    assert recording.held and recording.holds.get().active
    lift = f"/recordings/{recording.pk}/flags/{flag.pk}/lift"
    assert b"needs a reason" in client.post(lift, {"reason": " "}, follow=True).content
    client.post(lift, {"reason": "no further action"})
    flag.refresh_from_db()
    recording.refresh_from_db()
    assert flag.lifted_at and not recording.held
    actions = set(
        AuditEvent.objects.filter(object_id=str(recording.pk)).values_list("action", flat=True)
    )
    assert {"recording.flagged", "recording.unflagged", "hold.placed", "hold.lifted"} <= actions


def test_a_borough_admin_may_view_but_not_flag(client, recording):
    f.signed_in(client, Role.BOROUGH_ADMIN)
    response = client.post(
        f"/recordings/{recording.pk}/flag", {"kind": "policing_purpose", "reason": "x"}
    )
    assert response.status_code == 403 and not EvidenceFlag.objects.exists()


def test_a_camden_sergeant_cannot_flag_harrow_footage(client, recording):
    f.signed_in(client, Role.CUSTODY_SERGEANT, borough_code="EK")
    response = client.post(
        f"/recordings/{recording.pk}/flag", {"kind": "policing_purpose", "reason": "x"}
    )
    assert response.status_code == 404 and not EvidenceFlag.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_curl_fetches_exactly_the_middle_bytes(live_server, client, recording, clip):
    from evidence.playback import CONSULTED

    f.signed_in(client, Role.CUSTODY_SERGEANT)
    session = client.session
    session[CONSULTED] = {str(recording.pk): "now"}
    session.save()
    cookie = f"sessionid={client.cookies['sessionid'].value}"
    middle = len(clip) // 2
    out = subprocess.run(
        [
            "curl",
            "-sf",
            "-H",
            f"Cookie: {cookie}",
            "-r",
            f"{middle}-{middle + 999}",
            f"{live_server.url}/recordings/{recording.pk}/media",
        ],
        capture_output=True,
        timeout=60,
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout == clip[middle : middle + 1000]
