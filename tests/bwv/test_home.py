"""The home page is each role's work queue, scoped to the user's borough: a sergeant's footage about
to be deleted, recent footage and open cases; a borough admin's roll-out, undocked and lost
cameras; a disclosure officer's requests by due date; a system admin's sweep, audit verification,
storage and queue. Nobody sees another borough's work, and the page's queries do not grow with
the rows."""

import itertools
from datetime import timedelta

import pytest
from django.core.management import call_command
from django.utils import timezone

from common.roles import Role
from devices.models import CameraStatus
from requests_portal.deadlines import london_date
from requests_portal.models import AccessRequest, RequestKind, RequestStatus
from retention.models import SweepRun
from review.services import case_add_recording, case_close, case_create
from tests import factories as f
from tests.html import Page

pytestmark = pytest.mark.django_db

_refs = itertools.count(1)
PANELS = {
    Role.CUSTODY_SERGEANT: {"deletion-due", "recent-footage", "my-cases"},
    Role.BOROUGH_ADMIN: {"rollout", "undocked", "lost"},
    Role.DISCLOSURE_OFFICER: {"requests"},
    Role.SYSTEM_ADMIN: {"system"},
}
ALL_PANELS = set().union(*PANELS.values())


def _home(client) -> Page:
    response = client.get("/")
    assert response.status_code == 200
    return Page(response.content)


def _request(*, borough_code="QA", due_in_days: int | None, status=RequestStatus.RECEIVED):
    now = timezone.now()
    n = next(_refs)
    return AccessRequest.objects.create(
        reference=f"SAR-2026-{n:06d}",
        kind=RequestKind.RIGHT_OF_ACCESS,
        status=status,
        name="Sam",
        email="sam@example.org",
        incident_at=now - timedelta(days=3),
        borough=f.borough(borough_code),
        place="Station Road",
        description="I was stopped",
        received_at=now,
        due_at=None if due_in_days is None else london_date(now) + timedelta(days=due_in_days),
    )


def test_anonymous_is_sent_to_sign_in(client):
    response = client.get("/")
    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/login/")


@pytest.mark.parametrize("role", [Role.OFFICER, *PANELS], ids=str)
def test_each_role_sees_its_own_work_and_no_other_roles(client, role):
    f.signed_in(client, role)
    page = _home(client)
    assert ALL_PANELS & page.ids() == PANELS.get(role, set())
    if role == Role.OFFICER:
        assert "sections" in page.ids()


def test_sergeant_sees_what_will_be_deleted_within_three_days_unless_flagged(client):
    f.signed_in(client, Role.CUSTODY_SERGEANT)
    now = timezone.now()
    due = f.recording_row(delete_after=now + timedelta(days=2))
    f.recording_row(delete_after=now + timedelta(days=2), held=True)  # held: not deleted
    f.recording_row(delete_after=now + timedelta(days=5))  # not within 3 days
    other = f.recording_row(
        cam=f.camera(borough_code="EK"), delete_after=now + timedelta(days=1)
    )  # another borough's
    page = _home(client)
    text = page.words("deletion-due")
    assert "1 recording of your borough will be deleted" in text
    links = [a["href"] for _t, a in page.elements if a.get("href", "").startswith("/recordings/")]
    assert f"/recordings/{due.pk}/" in links
    assert f"/recordings/{other.pk}/" not in links


def test_sergeant_sees_recent_footage_of_their_borough_only(client):
    f.signed_in(client, Role.CUSTODY_SERGEANT)
    mine = f.recording_row()
    theirs = f.recording_row(cam=f.camera(borough_code="EK"))
    html = client.get("/").content.decode()
    assert f"/recordings/{mine.pk}/" in html
    assert f"/recordings/{theirs.pk}/" not in html


def test_sergeant_sees_their_open_cases_only(client):
    sergeant = f.signed_in(client, Role.CUSTODY_SERGEANT)
    colleague = f.user(Role.CUSTODY_SERGEANT)
    mine = case_create(
        crime_reference="1234567/26",
        title="Assault at the custody desk",
        borough=f.borough(),
        actor=sergeant,
    )
    case_add_recording(case=mine, recording=f.recording_row(), actor=sergeant)
    closed = case_create(
        crime_reference="7654321/26", title="Closed one", borough=f.borough(), actor=sergeant
    )
    case_close(case=closed, reason="No further action", actor=sergeant)
    case_create(
        crime_reference="5555555/26", title="A colleague's", borough=f.borough(), actor=colleague
    )
    text = _home(client).words("my-cases")
    assert "1 open case you opened" in text
    assert "1234567/26 Assault at the custody desk 1" in text
    assert "7654321/26" not in text and "5555555/26" not in text


def test_borough_admin_sees_rollout_against_the_boroughs_target(client):
    f.signed_in(client, Role.BOROUGH_ADMIN)
    f.force(camera_target=22_000)
    f.issued_camera()
    f.issued_camera(borough_code="EK")
    text = _home(client).words("rollout")
    assert "1 camera issued of 270, Harrow's target (0%)" in text
    assert "22,000" not in text


def test_borough_admin_sees_undocked_and_lost_cameras_with_their_holders(client):
    f.signed_in(client, Role.BOROUGH_ADMIN)
    now = timezone.now()
    undocked, holder = f.issued_camera()
    undocked.status, undocked.last_docked_at = CameraStatus.ISSUED, now - timedelta(days=9)
    undocked.save()
    docked, _ = f.issued_camera()
    docked.status, docked.last_docked_at = CameraStatus.ISSUED, now - timedelta(hours=3)
    docked.save()
    lost = f.camera(status=CameraStatus.LOST, status_changed_at=now - timedelta(days=1))
    elsewhere = f.camera(borough_code="EK", status=CameraStatus.LOST)
    page = _home(client)
    undocked_text = page.words("undocked")
    assert "1 camera in use and not docked" in undocked_text
    assert undocked.serial in undocked_text and holder.display_name in undocked_text
    assert docked.serial not in undocked_text
    lost_text = page.words("lost")
    assert lost.serial in lost_text and elsewhere.serial not in lost_text


def test_disclosure_officer_sees_requests_by_due_date_overdue_first(client):
    f.signed_in(client, Role.DISCLOSURE_OFFICER)
    late = _request(due_in_days=-2)
    this_week = _request(due_in_days=3)
    later = _request(due_in_days=20)
    _request(due_in_days=-5, status=RequestStatus.CLOSED)
    _request(due_in_days=-5, status=RequestStatus.RELEASED)
    elsewhere = _request(borough_code="EK", due_in_days=-9)
    text = _home(client).words("requests")
    assert "3 open requests" in text
    assert "1 overdue" in text and "1 due by" in text
    assert (
        text.index(late.reference) < text.index(this_week.reference) < text.index(later.reference)
    )
    assert f"{late.reference}" in text and "Overdue" in text and "Due this week" in text
    assert elsewhere.reference not in text


def test_system_admin_sees_the_last_sweep_verification_storage_and_queue(client):
    f.signed_in(client, Role.SYSTEM_ADMIN)
    text = _home(client).words("system")
    assert "Never run" in text and "Never verified" in text
    now = timezone.now()
    SweepRun.objects.create(
        started_at=now - timedelta(hours=5), status=SweepRun.Status.COMPLETED, deleted=42
    )
    SweepRun.objects.create(started_at=now - timedelta(hours=1), dry_run=True, status="dry_run")
    call_command("audit_verify", workers=1)
    text = _home(client).words("system")
    assert "Completed 42 deleted" in text
    assert "Chain intact" in text
    assert "Media storage Answering" in text
    assert "Task queue Answering" in text


@pytest.mark.parametrize("role", list(PANELS), ids=str)
def test_home_queries_do_not_grow_with_the_rows(client, role, django_assert_max_num_queries):
    user = f.signed_in(client, role)
    now = timezone.now()

    def add_rows():
        cam, _ = f.issued_camera()
        cam.status, cam.last_docked_at = CameraStatus.ISSUED, now - timedelta(days=10)
        cam.save()
        f.camera(status=CameraStatus.LOST)
        rec = f.recording_row(cam=cam, delete_after=now + timedelta(days=1))
        if role == Role.CUSTODY_SERGEANT:
            case = case_create(
                crime_reference=f"{next(_refs):07d}/26",
                title="Case",
                borough=f.borough(),
                actor=user,
            )
            case_add_recording(case=case, recording=rec, actor=user)
        _request(due_in_days=-1)

    add_rows()
    client.get("/")
    with django_assert_max_num_queries(30) as one:
        client.get("/")
    for _ in range(8):
        add_rows()
    with django_assert_max_num_queries(len(one.captured_queries)):
        client.get("/")
