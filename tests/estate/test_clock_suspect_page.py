"""The borough admin's list of clock-suspect recordings and the form that corrects a time."""

from datetime import UTC, datetime, timedelta

import pytest
from django.utils import timezone

from common.roles import Role
from custody.models import AuditEvent
from evidence.models import ClockSuspect, Recording
from tests import factories as f

pytestmark = pytest.mark.django_db
LIST = "/estate/clock/"
FLAT_BATTERY = datetime(1970, 1, 1, 0, 0, 5, tzinfo=UTC)


def _suspect(borough_code: str = "QA") -> Recording:
    """A clip from a camera with a flat clock battery, as ingest leaves it: held by the holder at
    arrival, kept 31 days from then."""
    cam, holder = f.issued_camera(borough_code=borough_code)
    arrived = timezone.now() - timedelta(hours=1)
    return f.recording_row(
        cam=cam,
        started=FLAT_BATTERY,
        officer=holder,
        clock_suspect=True,
        clock_suspect_reason=ClockSuspect.BEFORE_2000,
        available_at=arrived,
        delete_after=arrived + timedelta(days=31),
    )


@pytest.fixture
def harrow():
    return _suspect("QA")


@pytest.fixture
def camden():
    return _suspect("EK")


def _form(when: datetime, reason: str = "the custody suite clock in the footage") -> dict:
    return {"started_at": timezone.localtime(when).strftime("%Y-%m-%dT%H:%M:%S"), "reason": reason}


def _unchanged(recording: Recording) -> bool:
    fresh = Recording.objects.get(pk=recording.pk)
    return (
        fresh.started_at == recording.started_at
        and fresh.clock_suspect
        and not AuditEvent.objects.filter(action="recording.time_corrected").exists()
    )


# -- Permission matrix ------------------------------------------------------------------------------


def test_anonymous_is_sent_to_sign_in(client, harrow):
    for url in (LIST, f"{LIST}{harrow.pk}/"):
        response = client.get(url)
        assert response.status_code == 302 and "/accounts/login/" in response["Location"]
    assert client.post(f"{LIST}{harrow.pk}/", _form(timezone.now())).status_code == 302
    assert _unchanged(harrow)


@pytest.mark.parametrize("role", [Role.OFFICER, Role.CUSTODY_SERGEANT, Role.DISCLOSURE_OFFICER])
def test_other_roles_are_refused(client, harrow, role):
    f.signed_in(client, role)
    assert client.get(LIST).status_code == 403
    assert client.get(f"{LIST}{harrow.pk}/").status_code == 403
    when = timezone.now() - timedelta(days=2)
    assert client.post(f"{LIST}{harrow.pk}/", _form(when)).status_code == 403
    assert _unchanged(harrow)


def test_a_borough_admin_sees_their_own_boroughs_suspect_clocks_only(client, harrow, camden):
    f.signed_in(client, Role.BOROUGH_ADMIN, borough_code="QA")
    response = client.get(LIST)
    assert response.status_code == 200
    page = response.content.decode()
    assert harrow.camera.serial in page and camden.camera.serial not in page
    assert harrow.officer.display_name in page  # who held it at ingest
    assert "1 Jan 1970" in page  # the start the camera claimed
    assert "Before 2000" in page


def test_another_boroughs_admin_gets_404_and_changes_nothing(client, harrow):
    f.signed_in(client, Role.BOROUGH_ADMIN, borough_code="EK")
    assert harrow.camera.serial not in client.get(LIST).content.decode()
    assert client.get(f"{LIST}{harrow.pk}/").status_code == 404
    when = timezone.now() - timedelta(days=2)
    assert client.post(f"{LIST}{harrow.pk}/", _form(when)).status_code == 404
    assert _unchanged(harrow)


def test_a_system_admin_sees_every_borough_and_may_correct(client, harrow, camden):
    f.signed_in(client, Role.SYSTEM_ADMIN)
    page = client.get(LIST).content.decode()
    assert harrow.camera.serial in page and camden.camera.serial in page
    when = (timezone.now() - timedelta(days=2)).replace(microsecond=0)
    assert client.post(f"{LIST}{camden.pk}/", _form(when)).status_code == 302
    camden.refresh_from_db()
    assert camden.started_at == when and not camden.clock_suspect


# -- Correcting ---------------------------------------------------------------------------------------


def test_the_boroughs_admin_corrects_the_time_and_it_leaves_the_list(client, harrow):
    admin = f.signed_in(client, Role.BOROUGH_ADMIN, borough_code="QA")
    holder = harrow.camera.assignments.get().officer
    when = (timezone.now() - timedelta(days=3)).replace(microsecond=0)

    response = client.post(f"{LIST}{harrow.pk}/", _form(when), follow=True)

    assert response.redirect_chain[-1][0] == LIST
    page = response.content.decode()
    assert "Time corrected" in page
    assert harrow.camera.serial not in page.split("<table")[1]
    harrow.refresh_from_db()
    assert harrow.started_at == when
    assert harrow.ended_at == when + timedelta(seconds=30)
    assert not harrow.clock_suspect and harrow.clock_corrected_at is not None
    assert harrow.delete_after == when + timedelta(days=31)
    assert harrow.officer == holder  # who held the camera three days ago
    event = AuditEvent.objects.get(action="recording.time_corrected")
    assert event.object_id == str(harrow.pk) and event.actor_label == admin.get_username()
    assert event.justification == "the custody suite clock in the footage"


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"started_at": "", "reason": "footage"}, "Enter the date and time the recording started"),
        ({"started_at": "2026-02-30T10:00", "reason": "footage"}, "Enter a real date and time"),
        ({"started_at": "2026-11-01T10:00", "reason": ""}, "Say how the correct time is known"),
    ],
)
def test_a_bad_form_is_shown_again_with_its_errors_and_changes_nothing(
    client, harrow, data, message
):
    f.signed_in(client, Role.BOROUGH_ADMIN, borough_code="QA")
    response = client.post(f"{LIST}{harrow.pk}/", data)
    assert response.status_code == 400
    page = response.content.decode()
    assert 'id="error-summary"' in page and page.count(message) == 2  # summary and field
    assert _unchanged(harrow)


def test_a_time_after_the_clip_arrived_is_refused_with_the_reason(client, harrow):
    f.signed_in(client, Role.BOROUGH_ADMIN, borough_code="QA")
    response = client.post(f"{LIST}{harrow.pk}/", _form(timezone.now()))
    assert response.status_code == 400
    assert "must have ended by then" in response.content.decode()
    assert _unchanged(harrow)


def test_a_recording_with_a_trusted_clock_has_no_correction_page(client, harrow):
    f.signed_in(client, Role.BOROUGH_ADMIN, borough_code="QA")
    trusted = f.recording_row(cam=f.camera(), available_at=timezone.now())
    assert client.get(f"{LIST}{harrow.pk}/").status_code == 200
    assert client.get(f"{LIST}{trusted.pk}/").status_code == 404


def test_the_list_costs_the_same_queries_however_many_recordings(
    client, harrow, django_assert_max_num_queries
):
    f.signed_in(client, Role.BOROUGH_ADMIN, borough_code="QA")
    client.get(LIST)
    for _ in range(15):
        _suspect("QA")
    with django_assert_max_num_queries(12):
        response = client.get(LIST)
    assert response.status_code == 200 and len(response.context["page"]) == 16
