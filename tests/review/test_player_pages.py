"""The player on the case page, the access request page and the prosecutor's share page: who may
open footage there, and each opening audited (a consultation, or a disclosure for a share)."""

from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone

from common.roles import Role
from custody.models import AuditEvent, ShareLink
from custody.services import share_create
from requests_portal.deadlines import london_date, right_of_access_due
from requests_portal.models import AccessRequest, RequestKind, RequestStatus
from requests_portal.redaction_jobs import redaction_job_run
from requests_portal.services import footage_attach, footage_redact
from review.services import case_add_recording, case_create, export_create
from tests import factories as f

pytestmark = pytest.mark.django_db


@pytest.fixture
def recording(small_clip):
    cam, _officer = f.issued_camera(borough_code="QA")
    return f.ingested_recording(cam=cam, data=small_clip)


def _viewed(recording):
    return AuditEvent.objects.filter(action="recording.viewed", object_id=str(recording.pk))


# -- The case page ------------------------------------------------------------------------------


@pytest.fixture
def case(recording):
    sergeant = f.user(Role.CUSTODY_SERGEANT, borough_code="QA")
    case = case_create(
        crime_reference="5201234/26", title="R v Doe", borough=recording.borough, actor=sergeant
    )
    case_add_recording(case=case, recording=recording, actor=sergeant)
    return case


@pytest.mark.parametrize(
    "role, borough, expected",
    [
        (Role.CUSTODY_SERGEANT, "QA", 302),
        (Role.DISCLOSURE_OFFICER, "QA", 302),
        (Role.CUSTODY_SERGEANT, "EK", 404),  # another borough's case: as if it did not exist
        (Role.OFFICER, "QA", 404),
    ],
)
def test_who_may_play_a_recording_on_a_case_page(client, case, recording, role, borough, expected):
    f.signed_in(client, role, borough)
    response = client.post(f"/cases/{case.pk}/recordings/{recording.pk}/play")
    assert response.status_code == expected
    assert _viewed(recording).count() == (1 if expected == 302 else 0)
    if expected == 302:
        assert response["Location"] == f"/cases/{case.pk}/?play={recording.pk}#player"
        page = client.get(f"/cases/{case.pk}/?play={recording.pk}")
        assert b'<video id="player"' in page.content
        assert f'src="/recordings/{recording.pk}/media"'.encode() in page.content
        assert client.get(f"/recordings/{recording.pk}/media").status_code == 200
        # Once a session: playing it again records no second consultation.
        client.post(f"/cases/{case.pk}/recordings/{recording.pk}/play")
        assert _viewed(recording).get().justification == "case 5201234/26: R v Doe"


def test_anonymous_is_sent_to_sign_in_from_a_case_play(client, case, recording):
    response = client.post(f"/cases/{case.pk}/recordings/{recording.pk}/play")
    assert response.status_code == 302 and response["Location"].startswith("/accounts/login/")


def test_a_recording_not_on_the_case_is_not_played_there(client, case, recording):
    other = f.ingested_recording(cam=recording.camera)
    f.signed_in(client, Role.CUSTODY_SERGEANT)
    assert client.post(f"/cases/{case.pk}/recordings/{other.pk}/play").status_code == 404
    assert not _viewed(other).exists()
    # Nor does ?play= show footage whose opening was never recorded.
    page = client.get(f"/cases/{case.pk}/?play={recording.pk}")
    assert page.status_code == 200 and b"<video" not in page.content
    assert client.get(f"/cases/{case.pk}/recordings/{recording.pk}/play").status_code == 405


# -- The access request page --------------------------------------------------------------------


def _request(recording) -> AccessRequest:
    now = timezone.now()
    return AccessRequest.objects.create(
        reference="SAR-2026-000001",
        kind=RequestKind.RIGHT_OF_ACCESS,
        status=RequestStatus.IN_PROGRESS,
        name="Sam",
        email="sam@example.org",
        incident_at=recording.started_at,
        borough=recording.borough,
        place="Station Rd",
        description="stop and search",
        received_at=now,
        clock_started_at=now,
        due_at=right_of_access_due(london_date(now)),
    )


@pytest.mark.parametrize(
    "role, borough, expected",
    [
        (Role.DISCLOSURE_OFFICER, "QA", 302),
        (Role.CUSTODY_SERGEANT, "QA", 403),  # the request pages are the disclosure officers'
        (Role.DISCLOSURE_OFFICER, "EK", 404),
        (None, "QA", 302),  # to sign in
    ],
)
def test_who_may_play_a_candidate_on_a_request_page(client, recording, role, borough, expected):
    req = _request(recording)
    if role is not None:
        f.signed_in(client, role, borough)
    response = client.post(
        f"/disclosure/{req.pk}/", {"action": "play", "recording": str(recording.pk)}
    )
    assert response.status_code == expected
    assert _viewed(recording).count() == (
        1 if role == Role.DISCLOSURE_OFFICER and expected == 302 else 0
    )
    if role is None:
        assert response["Location"].startswith("/accounts/login/")
    elif expected == 302:
        assert _viewed(recording).get().justification == f"access request {req.reference}"
        page = client.get(response["Location"])
        assert b'<video id="player"' in page.content
        assert b"Redacted copy of the recording" not in page.content
        assert client.get(f"/recordings/{recording.pk}/media").status_code == 200


def test_a_recording_that_is_no_candidate_is_not_played_on_a_request_page(client, recording):
    req = _request(recording)
    elsewhere = f.ingested_recording(
        cam=recording.camera, start=recording.started_at - timedelta(days=5)
    )
    f.signed_in(client, Role.DISCLOSURE_OFFICER)
    for value in (str(elsewhere.pk), "not-a-uuid", ""):
        response = client.post(f"/disclosure/{req.pk}/", {"action": "play", "recording": value})
        assert response.status_code == 302 and "play=" not in response["Location"]
    assert not AuditEvent.objects.filter(action="recording.viewed").exists()


def test_the_redacted_copy_plays_on_the_request_page_with_its_ranges(client, recording):
    req = _request(recording)
    officer = f.signed_in(client, Role.DISCLOSURE_OFFICER)
    footage = footage_attach(req=req, recording=recording, actor=officer)
    box = {"start": 0.5, "end": 1.5, "x": 8, "y": 8, "w": 32, "h": 32, "mode": "black"}
    job = footage_redact(footage=footage, boxes=[box], mutes=[], actor=officer)
    assert redaction_job_run(job_id=job.pk).status == "done"  # the worker's part, run here
    page = client.get(f"/disclosure/{req.pk}/?copy={footage.pk}")
    assert b"Redacted copy of the recording of" in page.content
    assert f'src="/disclosure/{req.pk}/footage/{footage.pk}/derived"'.encode() in page.content
    assert b'bwv-player__marker--redaction" data-seek="0.5" data-end="1.5"' in page.content
    assert client.get(f"/disclosure/{req.pk}/?copy=999999").content.count(b"<video") == 0


# -- The prosecutor's share page ----------------------------------------------------------------


@pytest.fixture
def shared(recording):
    sergeant = f.user(Role.CUSTODY_SERGEANT, borough_code="QA")
    other = f.ingested_recording(cam=recording.camera)
    export = export_create(
        actor=sergeant,
        recordings=[recording, other],
        case=None,
        recipient="CPS London North",
        purpose="charging file R v Doe",
    )
    link, token = share_create(
        export=export, actor=sergeant, recipient_email="lawyer@cps.gov.uk", days=7
    )
    return {"link": link, "token": token, "recordings": [recording, other]}


def _disclosed() -> list:
    events = AuditEvent.objects.filter(
        action="recording.disclosed", actor_label__startswith="share:"
    ).order_by("seq")
    return [e for e in events if e.detail.get("via") == "share link, played"]


def test_a_shared_recording_plays_by_range_and_each_is_audited_once(shared, small_clip):
    token, (first, second) = shared["token"], shared["recordings"]
    outsider = Client()  # no account: the link's secret is the key
    page = outsider.get(f"/share/{token}/?play={first.pk}")
    assert f'src="/share/{token}/recordings/{first.pk}/media"'.encode() in page.content
    assert not _disclosed()  # the page alone plays nothing
    url = f"/share/{token}/recordings/{first.pk}/media"
    response = outsider.get(url, HTTP_RANGE="bytes=0-99", REMOTE_ADDR="198.51.100.7")
    assert response.status_code == 206
    assert b"".join(response.streaming_content) == small_clip[:100]
    outsider.get(url, HTTP_RANGE="bytes=100-")
    (event,) = _disclosed()
    assert event.object_id == str(first.pk) and event.recipient == "lawyer@cps.gov.uk"
    assert event.detail["ip"] == "198.51.100.7"
    outsider.get(f"/share/{token}/recordings/{second.pk}/media", HTTP_RANGE="bytes=0-9")
    assert len(_disclosed()) == 2
    page = outsider.get(f"/share/{token}/?play={second.pk}")
    assert f'src="/share/{token}/recordings/{second.pk}/media"'.encode() in page.content


def test_a_share_link_plays_only_its_own_recordings_and_only_while_usable(shared, recording):
    token = shared["token"]
    outsider = Client()
    stranger = f.ingested_recording(cam=recording.camera)
    assert outsider.get(f"/share/{token}/recordings/{stranger.pk}/media").status_code == 404
    assert outsider.get(f"/share/wrong-secret/recordings/{recording.pk}/media").status_code == 404
    ShareLink.objects.filter(pk=shared["link"].pk).update(revoked_at=timezone.now())
    assert outsider.get(f"/share/{token}/recordings/{recording.pk}/media").status_code == 410
    assert not _disclosed()
