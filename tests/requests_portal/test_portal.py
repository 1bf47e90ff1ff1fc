"""The public portal: submission, abuse defences, verification, preservation, the status page."""

import base64
import json
import re
from datetime import timedelta

import altcha
import pytest
from django.core import mail
from django.core.cache import cache
from django.utils import timezone

from evidence.models import RecordingState
from requests_portal.models import AccessRequest, RequestStatus
from retention.models import Hold, HoldSource
from tests import factories as f

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _clean(settings):
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    settings.SITE_URL = "http://testserver"
    cache.clear()


def solved_pow(client) -> str:
    """Do what the browser's script does: take the page's challenge and find the number."""
    page = client.get("/requests/")
    challenge = json.loads(
        re.search(
            rb'<script id="altcha-challenge" type="application/json">(.*?)</script>',
            page.content,
            re.S,
        ).group(1)
    )
    solution = altcha.solve_challenge_v1(
        challenge["challenge"], challenge["salt"], max_number=challenge["maxnumber"]
    )
    payload = {
        "algorithm": challenge["algorithm"],
        "challenge": challenge["challenge"],
        "number": solution.number,
        "salt": challenge["salt"],
        "signature": challenge["signature"],
    }
    return base64.b64encode(json.dumps(payload).encode()).decode()


def when_fields(when) -> dict:
    """The incident's date and time as the form's boxes take them (day, month, year; hour, minute)."""
    local = timezone.localtime(when)
    return {
        "incident_date_day": str(local.day),
        "incident_date_month": str(local.month),
        "incident_date_year": str(local.year),
        "incident_time_hour": f"{local.hour:02d}",
        "incident_time_minute": f"{local.minute:02d}",
    }


def date_fields(day: str, month: str, year: str) -> dict:
    return {"incident_date_day": day, "incident_date_month": month, "incident_date_year": year}


def form_data(client, **overrides) -> dict:
    data = {
        "kind": "sar",
        "name": "Sam Public",
        "email": "sam@example.org",
        "postal_address": "1 High St, Harrow",
        **when_fields(timezone.now() - timedelta(days=2)),
        "borough": "QA",
        "place": "Station Road",
        "description": "I was stopped and searched.",
        "appearance": "Red coat, black hat",
        "collar_number": "",
        "declaration": "on",
        "website": "",
        "altcha": solved_pow(client),
    }
    data.update(overrides)
    return data


def submit(client, **overrides):
    return client.post("/requests/", form_data(client, **overrides))


def link_in(message, kind: str) -> str:
    return re.search(rf"http://testserver(/requests/{kind}/[^/\s]+/)", message.body).group(1)


def test_a_request_is_saved_then_verified_by_the_emailed_link(
    client, django_capture_on_commit_callbacks
):
    response = submit(client)
    assert response.status_code == 302
    req = AccessRequest.objects.get()
    assert req.status == RequestStatus.UNVERIFIED and req.reference.startswith("SAR-")
    assert len(mail.outbox) == 1 and req.reference in mail.outbox[0].subject
    assert mail.outbox[0].alternatives  # text and HTML
    verify = link_in(mail.outbox[0], "verify")
    with django_capture_on_commit_callbacks(execute=True):
        page = client.get(verify)
    assert page.status_code == 200 and req.reference.encode() in page.content
    req.refresh_from_db()
    assert req.status == RequestStatus.RECEIVED and req.due_at is not None
    status_link = link_in(mail.outbox[1], "status")
    status = client.get(status_link)
    assert status.status_code == 200 and b"We must answer by" in status.content
    # The link is the key: a guessed one is 404.
    assert client.get("/requests/status/guess/").status_code == 404


def test_verification_preserves_candidate_footage_and_a_replayed_link_does_nothing_more(
    client, django_capture_on_commit_callbacks
):
    incident = timezone.now() - timedelta(days=2)
    near = f.recording_row(started=incident + timedelta(minutes=30))
    far = f.recording_row(started=incident + timedelta(hours=5))
    elsewhere = f.recording_row(cam=f.camera(borough_code="EK"), started=incident)
    local = timezone.localtime(incident)
    submit(client, **when_fields(local))
    verify = link_in(mail.outbox[0], "verify")
    with django_capture_on_commit_callbacks(execute=True):
        client.get(verify)
    holds = Hold.objects.filter(source=HoldSource.ACCESS_REQUEST, active=True)
    assert [h.recording_id for h in holds] == [near.pk]
    assert far.pk not in [h.recording_id for h in holds] and elsewhere.held is False
    with django_capture_on_commit_callbacks(execute=True):
        again = client.get(verify)
    assert again.status_code == 200 and b"already been used" in again.content
    assert Hold.objects.filter(source=HoldSource.ACCESS_REQUEST).count() == 1
    assert len(mail.outbox) == 2  # no second status mail


def test_an_expired_verification_link_is_refused_clearly(client):
    submit(client)
    AccessRequest.objects.update(verify_expires_at=timezone.now() - timedelta(minutes=1))
    response = client.get(link_in(mail.outbox[0], "verify"))
    assert response.status_code == 410 and b"expired" in response.content
    assert AccessRequest.objects.get().status == RequestStatus.UNVERIFIED


def test_script_in_every_field_comes_back_escaped(client):
    evil = '<script>alert("x")</script>'
    submit(
        client,
        name=evil,
        place=evil,
        description=evil,
        appearance=evil,
        postal_address=evil,
        collar_number="<b>1</b>",
    )
    req = AccessRequest.objects.get()
    assert req.name == evil  # kept as written
    client.get(link_in(mail.outbox[0], "verify"))
    staff = f.user("disclosure_officer")
    f.sign_in(client, staff)
    page = client.get(f"/disclosure/{req.pk}/").content.decode()
    assert evil not in page and "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;" in page
    assert "<b>1</b>" not in page
    html_mail = mail.outbox[0].alternatives[0][0]
    assert evil not in html_mail and "&lt;script&gt;" in html_mail


@pytest.mark.parametrize(
    ("overrides", "error"),
    [
        ({"name": "x" * 201}, b"at most 200 characters"),
        ({"description": "x" * 4001}, b"at most 4000 characters"),
        ({"email": "not-an-address"}, b"Enter an e-mail address in the right format"),
        (date_fields("30", "2", "2026"), b"Date of the incident must be a real date"),
        (date_fields("3", "", "2026"), b"Date of the incident must include a month"),
        (date_fields("", "", ""), b"Enter the date of the incident"),
        ({"incident_time_hour": "25"}, b"Enter a real time on the 24-hour clock"),
        ({"incident_time_minute": ""}, b"The time must include a minute"),
        (when_fields(timezone.now() + timedelta(days=3)), b"cannot be in the future"),
        (date_fields("1", "1", "1999"), b"no footage that old"),
        ({"declaration": ""}, b"Confirm the information is true"),
        ({"borough": "ZZ"}, b"Select a valid choice"),
        ({"website": "http://spam.example"}, b"must be left empty"),  # the honeypot
        ({"altcha": ""}, b"not a robot"),
    ],
)
def test_bad_input_gets_a_clear_answer_and_saves_nothing(client, overrides, error):
    response = submit(client, **overrides)
    assert response.status_code == 400
    assert error in response.content, response.content.decode()[:3000]
    assert not AccessRequest.objects.exists() and not mail.outbox


def _b64(value) -> str:
    raw = value if isinstance(value, bytes) else json.dumps(value).encode()
    return base64.b64encode(raw).decode()


def _solved_with(client, **changes) -> str:
    """A real solution of the page's challenge, with some fields replaced."""
    payload = json.loads(base64.b64decode(solved_pow(client)))
    return _b64(payload | changes)


MALFORMED_POW = {
    "not base64": lambda client: "%%% not base64 %%%",
    "base64 of bytes that are not text": lambda client: _b64(b"\xff\xfe\x00\x81"),
    "base64 of text that is not JSON": lambda client: _b64(b"hello, world"),
    "JSON of the wrong shape": lambda client: _b64({"hello": "world"}),
    "a list": lambda client: _b64(["SHA-256", "abc", 1, "salt", "sig"]),
    "a number": lambda client: _b64(12345),
    "null": lambda client: _b64(None),
    "numbers where strings go": lambda client: _b64(
        {"algorithm": "SHA-256", "challenge": 1, "number": 2, "salt": 3, "signature": 4}
    ),
    "a solved challenge with a number as its salt": lambda client: _solved_with(client, salt=7),
    "a solved challenge with a list as its salt": lambda client: _solved_with(client, salt=["a"]),
    "a solved challenge with an object as its salt": lambda client: _solved_with(
        client, salt={"expires": "1"}
    ),
    "a solved challenge with a list as its algorithm": lambda client: _solved_with(
        client, algorithm=["SHA-256"]
    ),
    "a solved challenge with an object as its number": lambda client: _solved_with(
        client, number={"n": 1}
    ),
    "too long": lambda client: "A" * 2001,
}


@pytest.mark.parametrize("payload", list(MALFORMED_POW), ids=list(MALFORMED_POW))
def test_a_malformed_proof_of_work_is_a_failed_check_and_saves_nothing(client, payload):
    response = submit(client, altcha=MALFORMED_POW[payload](client))
    assert response.status_code == 400
    assert b"not a robot" in response.content
    assert not AccessRequest.objects.exists() and not mail.outbox


def test_a_proof_of_work_solution_is_good_for_one_submission_only(client):
    data = form_data(client)
    assert client.post("/requests/", data).status_code == 302
    data["email"] = "other@example.org"
    response = client.post("/requests/", data)
    assert response.status_code == 400 and b"not a robot" in response.content
    assert AccessRequest.objects.count() == 1


def test_a_flood_from_one_address_is_refused_and_nothing_before_it_is_lost(client, settings):
    settings.BWV_REQUEST_LIMIT_EMAIL_PER_DAY = 3
    statuses = [submit(client).status_code for _ in range(5)]
    assert statuses == [302, 302, 302, 429, 429]
    assert AccessRequest.objects.count() == 3
    page = submit(client)
    assert b"Nothing you sent before is lost" in page.content


def test_a_failing_mail_server_loses_nothing_and_beat_sends_later(client, settings):
    # Fault injection: a mail backend that fails, as an SMTP server that is down would.
    settings.EMAIL_BACKEND = "tests.requests_portal.failing_mail.FailingBackend"
    assert submit(client).status_code == 302
    req = AccessRequest.objects.get()
    assert req.verification_mailed_at is None and req.verify_token_hash
    from requests_portal.services import verification_retry_unsent

    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    assert verification_retry_unsent() == 1
    req.refresh_from_db()
    assert req.verification_mailed_at is not None
    client.get(link_in(mail.outbox[0], "verify"))
    assert AccessRequest.objects.get().status == RequestStatus.RECEIVED


def test_an_old_incident_is_warned_about_and_still_accepted(client):
    old = timezone.localtime(timezone.now() - timedelta(days=60))
    page = client.get("/requests/")
    assert b"old-incident-warning" in page.content and b"already been deleted" in page.content
    assert submit(client, **when_fields(old)).status_code == 302


def test_a_request_arriving_on_day_25_keeps_its_footage_through_days_31_to_60(client):
    """Recorded on day 0, asked for on day 25: the sweep on every night from day 31 to 60 keeps
    it; the request closes on day 45 and the next sweep deletes it."""
    from retention.sweep import sweep_expired_recordings

    now = timezone.now()
    day0 = now - timedelta(days=25)
    recording = f.recording_row(started=day0, delete_after=day0 + timedelta(days=31))
    local = timezone.localtime(day0)
    submit(client, **when_fields(local))
    client.get(link_in(mail.outbox[0], "verify"))
    recording.refresh_from_db()
    assert recording.held
    for day in range(31, 61):
        sweep_expired_recordings(now=day0 + timedelta(days=day, hours=2, minutes=30))
        recording.refresh_from_db()
        assert recording.state == RecordingState.AVAILABLE, f"deleted on day {day}"
        if day == 45:
            from requests_portal.services import request_close

            request_close(
                req=AccessRequest.objects.get(),
                actor=f.user("disclosure_officer"),
                reason="footage released, nothing further",
            )
            recording.refresh_from_db()
            assert not recording.held
            break
    sweep_expired_recordings(now=day0 + timedelta(days=46, hours=2, minutes=30))
    recording.refresh_from_db()
    assert recording.state == RecordingState.DELETED
