"""Dispatch incidents through the real API, with real OAuth tokens from the real token endpoint on
the live server: scopes, boroughs, tagging of stored and new footage, versions, replays and bad
input, each call kept and audited with the client's name."""

from datetime import timedelta

import pytest
import requests
from django.utils import timezone
from rest_framework.authtoken.models import Token

from common.roles import Role
from custody.models import AuditEvent
from evidence.models import Incident, IncidentTag
from integrations.models import InboundCall, SourceRecord
from tests import factories as f
from tests.integrations.oauth import connect, token_for

pytestmark = pytest.mark.django_db(transaction=True)


def _incident(reference="CAD 1234/25NOV26", *, version=1, borough="QA", at=None, officers=()):
    at = at or timezone.now() - timedelta(hours=3)
    return {
        "reference": reference,
        "version": version,
        "borough": borough,
        "opened_at": at.isoformat(),
        "closed_at": (at + timedelta(hours=2)).isoformat(),
        "location": "Station Road, Harrow",
        "grade": "I",
        "officers": [
            {
                "collar_number": o.collar_number,
                "arrived_at": (at + timedelta(minutes=10)).isoformat(),
                "cleared_at": (at + timedelta(minutes=70)).isoformat(),
            }
            for o in officers
        ],
    }


def test_the_token_carries_only_the_scopes_of_the_connected_system(live_server):
    cad = connect(live_server.url, scopes=["incidents:write"])
    refused = token_for(live_server.url, cad.client_id, cad.secret, scope="outcomes:write")
    assert refused.status_code == 400 and refused.json()["error"] == "invalid_scope"
    granted = token_for(live_server.url, cad.client_id, cad.secret)
    assert granted.json()["scope"] == "incidents:write"
    wrong_secret = token_for(live_server.url, cad.client_id, "not-the-secret")
    assert wrong_secret.status_code == 401


@pytest.mark.parametrize(
    "who, expected",
    [
        ("anonymous", 401),
        ("staff token", 401),
        ("no scope", 403),
        ("right scope", 201),
        ("other borough", 403),
    ],
)
def test_the_incident_permission_matrix(live_server, who, expected):
    _cam, officer = f.issued_camera()
    body = _incident(officers=[officer])
    url = f"{live_server.url}/api/v1/incidents/"
    if who == "anonymous":
        response = requests.post(url, json=body, timeout=30)
    elif who == "staff token":
        token = Token.objects.create(user=f.user(Role.SYSTEM_ADMIN)).key
        response = requests.post(
            url, json=body, headers={"Authorization": f"Token {token}"}, timeout=30
        )
    elif who == "no scope":
        response = connect(live_server.url, scopes=["crime_reports:write"]).post("incidents/", body)
    elif who == "right scope":
        response = connect(live_server.url).post("incidents/", body)
    else:
        response = connect(live_server.url, boroughs=["EK"]).post("incidents/", body)
    assert response.status_code == expected, response.text
    assert Incident.objects.exists() == (expected == 201)


def test_an_incident_tags_stored_footage_and_ingest_tags_new_footage(live_server, small_clip):
    cam, officer = f.issued_camera()
    other_cam, other = f.issued_camera()
    at = timezone.now().replace(microsecond=0) - timedelta(hours=3)
    during = f.recording_row(cam=cam, officer=officer, started=at + timedelta(minutes=20))
    # Started before the arrival, within the margin (10 minutes), and ran into the attendance.
    just_before = f.recording_row(cam=cam, officer=officer, started=at + timedelta(minutes=2))
    long_after = f.recording_row(cam=cam, officer=officer, started=at + timedelta(minutes=95))
    other_officer = f.recording_row(
        cam=other_cam, officer=other, started=at + timedelta(minutes=20)
    )
    suspect = f.recording_row(
        cam=cam,
        officer=officer,
        started=at + timedelta(minutes=25),
        clock_suspect=True,
        clock_suspect_reason="file_time",
    )
    cad = connect(live_server.url)

    response = cad.post("incidents/", _incident(at=at, officers=[officer]))

    assert response.status_code == 201, response.text
    assert response.json()["result"] == "created" and response.json()["detail"]["tags_added"] == 2
    incident = Incident.objects.get(reference="CAD 1234/25NOV26")
    tagged = set(incident.tags.values_list("recording_id", flat=True))
    assert tagged == {during.pk, just_before.pk}
    assert (
        long_after.pk not in tagged and other_officer.pk not in tagged and suspect.pk not in tagged
    )
    # A clip of the same attendance that reaches the server afterwards is tagged at ingest.
    new = f.ingested_recording(cam=cam, data=small_clip, start=at + timedelta(minutes=40))
    assert IncidentTag.objects.filter(recording=new, incident=incident).exists()
    assert AuditEvent.objects.filter(
        action="recording.incident_tagged", object_id=str(new.pk), actor_label__startswith="dock:"
    ).exists()
    assert (
        AuditEvent.objects.filter(
            action="recording.incident_tagged", actor_label=cad.system.user.username
        ).count()
        == 2
    )


def test_versions_replays_and_contradictions(live_server):
    cam, officer = f.issued_camera()
    _cam2, second = f.issued_camera()
    at = timezone.now().replace(microsecond=0) - timedelta(hours=3)
    recording = f.recording_row(cam=cam, officer=officer, started=at + timedelta(minutes=20))
    cad = connect(live_server.url)
    v2 = _incident(version=2, at=at, officers=[officer, second])
    assert cad.post("incidents/", v2).status_code == 201

    replay = cad.post("incidents/", v2)
    assert replay.status_code == 200 and replay.json()["result"] == "unchanged"
    older = cad.post("incidents/", _incident(version=1, at=at, officers=[second]))
    assert older.status_code == 409 and "stale" in older.json()["detail"]
    contradicting = cad.post("incidents/", _incident(version=2, at=at, officers=[second]))
    assert contradicting.status_code == 409 and "other content" in contradicting.json()["detail"]
    incident = Incident.objects.get()
    assert incident.attendances.count() == 2 and incident.tags.count() == 1
    assert SourceRecord.objects.get(key=incident.reference).version == 2

    # A newer version without the officer removes the tag, with a reason in the audit log.
    newer = cad.post("incidents/", _incident(version=3, at=at, officers=[second]))
    assert newer.status_code == 200 and newer.json()["result"] == "updated"
    assert newer.json()["detail"]["tags_removed"] == 1
    assert not IncidentTag.objects.filter(recording=recording).exists()
    untag = AuditEvent.objects.get(action="recording.incident_untagged")
    assert untag.object_id == str(recording.pk) and "changed" in untag.justification


def test_bad_input_is_a_clear_4xx_that_changes_nothing_and_loses_nothing(live_server, settings):
    _cam, officer = f.issued_camera()
    camden = f.officer(borough_code="EK")
    cad = connect(live_server.url)

    unknown = _incident(officers=[officer])
    unknown["officers"].append({**unknown["officers"][0], "collar_number": "99999ZZ"})
    response = cad.post("incidents/", unknown)
    assert response.status_code == 400 and "99999ZZ" in response.json()["officers"][0]
    # An officer of a borough the client may not send for is as unknown as one who is not.
    response = cad.post("incidents/", _incident(officers=[camden]))
    assert response.status_code == 400 and camden.collar_number in response.json()["officers"][0]

    naive = _incident(officers=[officer])
    naive["opened_at"] = "2026-11-25T10:00:00"
    assert "UTC offset" in cad.post("incidents/", naive).json()["opened_at"][0]
    backwards = _incident(officers=[officer])
    backwards["officers"][0]["cleared_at"] = "2001-01-01T00:00:00Z"
    assert cad.post("incidents/", backwards).status_code == 400
    assert cad.post("incidents/", {"reference": "CAD 1/1JAN26"}).status_code == 400
    not_json = requests.post(
        f"{live_server.url}/api/v1/incidents/",
        data=b"\xff\xfe{",
        headers={**cad.headers, "Content-Type": "application/json"},
        timeout=30,
    )
    assert not_json.status_code == 400
    nul = _incident(officers=[officer])
    nul["reference"] = "CAD 1\u0000/25NOV26"
    assert "Null characters" in cad.post("incidents/", nul).json()["reference"][0]
    form = requests.post(
        f"{live_server.url}/api/v1/incidents/",
        data={"reference": "CAD 1\x00/25NOV26"},
        headers=cad.headers,
        timeout=30,
    )
    assert form.status_code == 400 and "version" in form.json()

    settings.BWV_INTEGRATION_MAX_BYTES = 2048
    big = _incident(officers=[officer])
    big["location"] = "x" * 4000
    response = cad.post("incidents/", big)
    assert response.status_code == 413 and "at most 2048" in response.json()["detail"]

    assert not Incident.objects.exists() and not SourceRecord.objects.exists()
    refused = InboundCall.objects.filter(system=cad.system, result="refused")
    assert refused.count() == 9
    # The refused call's payload is kept to read and send again.
    assert "99999ZZ" in refused.get(status=400, payload__contains="99999ZZ").payload


def test_every_call_is_audited_with_the_client_name(live_server):
    _cam, officer = f.issued_camera()
    cad = connect(live_server.url, name="CAD Harrow", scopes=["incidents:write"])
    body = _incident(officers=[officer])
    cad.post("incidents/", body)
    cad.post("incidents/", body)  # a replay
    cad.get("evidence/", incident="CAD 1234/25NOV26")  # without the scope: 403, still a call
    events = AuditEvent.objects.filter(action="integration.call").order_by("seq")
    assert [e.actor_label for e in events] == ["client:cad-harrow"] * 3
    assert [e.detail["status"] for e in events] == [201, 200, 403]
    assert [e.detail["result"] for e in events] == ["created", "unchanged", "refused"]
    assert AuditEvent.objects.get(action="incident.recorded").actor_label == "client:cad-harrow"


def test_a_switched_off_system_is_refused(live_server):
    _cam, officer = f.issued_camera()
    cad = connect(live_server.url)
    type(cad.system).objects.filter(pk=cad.system.pk).update(active=False)
    assert cad.post("incidents/", _incident(officers=[officer])).status_code == 401
    assert (
        token_for(live_server.url, cad.client_id, cad.secret, "incidents:write").status_code == 400
    )


@pytest.mark.parametrize(
    "who, expected", [("anonymous", 401), ("right", 200), ("no scope", 403), ("other", 404)]
)
def test_reading_evidence_is_scoped_to_the_client_boroughs(live_server, who, expected):
    cam, officer = f.issued_camera()
    at = timezone.now().replace(microsecond=0) - timedelta(hours=3)
    recording = f.recording_row(cam=cam, officer=officer, started=at + timedelta(minutes=20))
    connect(live_server.url, name="CAD").post("incidents/", _incident(at=at, officers=[officer]))
    if who == "anonymous":
        response = requests.get(
            f"{live_server.url}/api/v1/evidence/",
            params={"incident": "CAD 1234/25NOV26"},
            timeout=30,
        )
        assert response.status_code == 401
        assert response.headers["WWW-Authenticate"].startswith('Bearer realm="integrations"')
        return
    reader = {
        "right": lambda: connect(live_server.url, name="RMS", scopes=["evidence:read"]),
        "no scope": lambda: connect(live_server.url, name="RMS", scopes=["incidents:write"]),
        "other": lambda: connect(
            live_server.url, name="RMS", scopes=["evidence:read"], boroughs=["EK"]
        ),
    }[who]()
    response = reader.get("evidence/", incident="CAD 1234/25NOV26")
    assert response.status_code == expected, response.text
    if expected == 200:
        assert [r["id"] for r in response.json()] == [str(recording.pk)]
        assert response.json()[0]["officer"] == officer.collar_number
