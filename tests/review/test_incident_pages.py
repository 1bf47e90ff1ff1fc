"""Dispatch incidents on the staff site: the incident page (permission matrix), the recording
page's incidents, and the recording search by incident."""

from datetime import timedelta

import pytest
from django.utils import timezone

from common.roles import Role
from evidence.incidents import Attendance, incident_record
from tests import factories as f

pytestmark = pytest.mark.django_db


@pytest.fixture
def incident():
    """CAD 1234/25NOV26 in Harrow: two officers sent, each with a clip while there, and a clip of
    the first officer long after (not tagged)."""
    at = timezone.now().replace(microsecond=0) - timedelta(hours=5)
    cam_a, first = f.issued_camera()
    cam_b, second = f.issued_camera()
    tagged = [
        f.recording_row(cam=cam_a, officer=first, started=at + timedelta(minutes=15)),
        f.recording_row(cam=cam_b, officer=second, started=at + timedelta(minutes=20)),
    ]
    untagged = f.recording_row(cam=cam_a, officer=first, started=at + timedelta(hours=3))
    incident, _created, tags = incident_record(
        reference="CAD 1234/25NOV26",
        borough=f.borough("QA"),
        opened_at=at,
        closed_at=at + timedelta(hours=1),
        location="Station Road, Harrow",
        grade="I",
        attendances=[
            Attendance(first, at + timedelta(minutes=10), at + timedelta(minutes=50)),
            Attendance(second, at + timedelta(minutes=12), at + timedelta(minutes=55)),
        ],
        actor="system:test",
    )
    assert tags == (2, 0)
    return {
        "incident": incident,
        "tagged": tagged,
        "untagged": untagged,
        "first": first,
        "second": second,
    }


@pytest.mark.parametrize(
    "role, borough, expected",
    [
        (Role.CUSTODY_SERGEANT, "QA", 200),
        (Role.DISCLOSURE_OFFICER, "QA", 200),
        (Role.SYSTEM_ADMIN, "EK", 200),
        (Role.CUSTODY_SERGEANT, "EK", 404),  # another borough: as if it did not exist
        (Role.OFFICER, "QA", 404),  # an officer who was not sent
    ],
)
def test_who_may_open_an_incident(client, incident, role, borough, expected):
    f.signed_in(client, role, borough)
    response = client.get(f"/incidents/{incident['incident'].pk}/")
    assert response.status_code == expected
    if expected == 200:
        body = response.content.decode()
        assert "CAD 1234/25NOV26" in body and "Station Road, Harrow" in body
        for recording in incident["tagged"]:
            assert f"/recordings/{recording.pk}/" in body
        assert f"/recordings/{incident['untagged'].pk}/" not in body


def test_anonymous_is_sent_to_sign_in_and_a_missing_incident_is_404(client, incident):
    response = client.get(f"/incidents/{incident['incident'].pk}/")
    assert response.status_code == 302 and response["Location"].startswith("/accounts/login/")
    f.signed_in(client, Role.SYSTEM_ADMIN)
    assert client.get("/incidents/999999/").status_code == 404
    assert client.get(f"/incidents/{2**63}/").status_code == 404


def test_an_officer_who_was_sent_sees_the_incident_with_only_their_own_footage(client, incident):
    account = f.user(Role.OFFICER)
    account.officer.delete()  # the factory's own officer: this account is the first officer
    first = incident["first"]
    first.user = account
    first.save(update_fields=["user"])
    f.sign_in(client, account)
    response = client.get(f"/incidents/{incident['incident'].pk}/")
    assert response.status_code == 200
    body = response.content.decode()
    assert f"/recordings/{incident['tagged'][0].pk}/" in body
    assert f"/recordings/{incident['tagged'][1].pk}/" not in body


def test_the_recording_page_shows_its_incidents(client, incident):
    f.signed_in(client, Role.CUSTODY_SERGEANT)

    def page(recording) -> str:
        client.post(f"/recordings/{recording.pk}/", {"purpose": "5201234/26 review"})
        return client.get(f"/recordings/{recording.pk}/").content.decode()

    tagged = page(incident["tagged"][0])
    assert f"/incidents/{incident['incident'].pk}/" in tagged and "CAD 1234/25NOV26" in tagged
    untagged = page(incident["untagged"])
    assert "Tagged with no dispatch incident" in untagged
    assert f"/incidents/{incident['incident'].pk}/" not in untagged


def test_the_search_filters_by_incident(client, incident):
    f.signed_in(client, Role.CUSTODY_SERGEANT)
    # Spaces and case as a person types them.
    response = client.get("/recordings/", {"incident": " cad  1234/25nov26 "})
    assert response.status_code == 200
    found = {str(r.pk) for r in response.context["page"].recordings}
    assert found == {str(r.pk) for r in incident["tagged"]}
    none = client.get("/recordings/", {"incident": "CAD 9/1JAN26"})
    assert list(none.context["page"].recordings) == []
    # A Camden sergeant finds nothing of Harrow's incident.
    f.signed_in(client, Role.CUSTODY_SERGEANT, "EK")
    camden = client.get("/recordings/", {"incident": "CAD 1234/25NOV26"})
    assert list(camden.context["page"].recordings) == []
