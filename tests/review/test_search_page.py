"""The recording search page: scope (permission matrix), filters, keyset pagination, query count."""

from datetime import timedelta

import pytest
from django.utils import timezone

from common.roles import Role
from evidence.models import RecordingState
from review.models import EvidenceFlag
from tests import factories as f

pytestmark = pytest.mark.django_db
URL = "/recordings/"


@pytest.fixture
def estate():
    now = timezone.now()
    harrow_officer = f.officer(borough_code="QA")
    cam_h, _ = f.issued_camera(officer_obj=harrow_officer)
    cam_c, camden_officer = f.issued_camera(borough_code="EK")
    harrow = [
        f.recording_row(cam=cam_h, officer=harrow_officer, started=now - timedelta(hours=i))
        for i in range(1, 8)
    ]
    camden = [
        f.recording_row(cam=cam_c, officer=camden_officer, started=now - timedelta(hours=i))
        for i in range(1, 4)
    ]
    f.recording_row(cam=cam_h, officer=harrow_officer, state=RecordingState.DELETED)
    return {"harrow": harrow, "camden": camden, "harrow_officer": harrow_officer}


def _ids(response):
    return {str(r.pk) for r in response.context["page"].recordings}


def _as(client, role, borough="QA", user=None):
    user = user or f.user(role, borough_code=borough)
    f.sign_in(client, user)
    return user


def test_anonymous_is_sent_to_sign_in(client, estate):
    response = client.get(URL)
    assert response.status_code == 302 and response["Location"].startswith("/accounts/login/")


def test_a_harrow_sergeant_sees_harrow_only(client, estate):
    _as(client, Role.CUSTODY_SERGEANT)
    response = client.get(URL)
    assert _ids(response) == {str(r.pk) for r in estate["harrow"]}


def test_a_camden_sergeant_sees_no_harrow_footage(client, estate):
    _as(client, Role.CUSTODY_SERGEANT, borough="EK")
    assert _ids(client.get(URL)) == {str(r.pk) for r in estate["camden"]}
    # Filtering for a Harrow camera finds nothing rather than an error that would reveal it.
    harrow_cam = estate["harrow"][0].camera.serial
    assert _ids(client.get(URL, {"camera": harrow_cam})) == set()


def test_an_officer_sees_only_their_own_footage(client, estate):
    from devices.models import Officer

    officer = estate["harrow_officer"]
    user = f.user(Role.OFFICER, rank="pc")
    Officer.objects.filter(user=user).delete()  # the factory's own record: this user is `officer`
    officer.user = user
    officer.save()
    # A colleague's clip in the same borough: an officer must not see it.
    colleague_cam, colleague = f.issued_camera(borough_code="QA")
    colleagues = f.recording_row(cam=colleague_cam, officer=colleague)
    _as(client, Role.OFFICER, user=user)
    seen = _ids(client.get(URL))
    assert seen == {str(r.pk) for r in estate["harrow"]}
    assert str(colleagues.pk) not in seen


def test_a_user_with_no_role_sees_nothing(client, estate):
    _as(client, None)
    assert _ids(client.get(URL)) == set()


def test_a_system_admin_sees_every_borough(client, estate):
    _as(client, Role.SYSTEM_ADMIN)
    assert len(_ids(client.get(URL))) == 10


def test_filters_by_officer_flag_crime_reference_and_deletion(client, estate):
    user = _as(client, Role.CUSTODY_SERGEANT)
    target = estate["harrow"][2]
    EvidenceFlag.objects.create(
        recording=target,
        kind="evidence",
        crime_reference="5201234/26",
        reason="x",
        flagged_by=user,
        flagged_at=timezone.now(),
    )
    collar = estate["harrow_officer"].collar_number
    assert len(_ids(client.get(URL, {"officer": collar}))) == 7
    assert _ids(client.get(URL, {"flagged": "yes"})) == {str(target.pk)}
    assert len(_ids(client.get(URL, {"flagged": "no"}))) == 6
    assert _ids(client.get(URL, {"crime_reference": "5201234/26"})) == {str(target.pk)}
    assert _ids(client.get(URL, {"deleting_within_days": "29"})) == set()
    assert len(_ids(client.get(URL, {"deleting_within_days": "31"}))) == 7


def test_each_row_says_whether_a_standing_flag_keeps_it(client, estate):
    """A row is marked flagged by a flag that stands, not by a lifted one, nor by another row's;
    and a camera is found whatever the case of its serial."""
    user = _as(client, Role.CUSTODY_SERGEANT)
    standing, lifted = estate["harrow"][1], estate["harrow"][4]
    for recording, lifted_at in ((standing, None), (lifted, timezone.now())):
        EvidenceFlag.objects.create(
            recording=recording,
            kind="evidence",
            crime_reference="5201234/26",
            reason="x",
            flagged_by=user,
            flagged_at=timezone.now() - timedelta(minutes=5),
            lifted_at=lifted_at,
            lifted_by=user if lifted_at else None,
        )
    serial = standing.camera.serial.lower()
    response = client.get(URL, {"camera": serial})
    rows = {str(r.pk): r.flagged for r in response.context["page"].recordings}
    assert len(rows) == 7
    assert [pk for pk, flagged in rows.items() if flagged] == [str(standing.pk)]


def test_keyset_pages_walk_everything_once_in_order(client, estate, monkeypatch):
    _as(client, Role.SYSTEM_ADMIN)
    from review import views

    real = views.recording_search
    monkeypatch.setattr(views, "recording_search", lambda **kw: real(**{**kw, "limit": 3}))
    seen, url, pages = [], URL, 0
    while url:
        response = client.get(url if url == URL else URL + url)
        seen += [r.started_at for r in response.context["page"].recordings]
        url = response.context["next_url"]
        pages += 1
    assert pages == 4 and len(seen) == 10 and seen == sorted(seen, reverse=True)


def test_bad_filter_values_get_a_clear_error_not_a_crash(client, estate):
    _as(client, Role.CUSTODY_SERGEANT)
    response = client.get(URL, {"started_from": "yesterday", "deleting_within_days": "-4"})
    assert response.status_code == 200 and response.context["page"] is None
    assert b"Enter a valid date/time" in response.content


def test_the_list_costs_the_same_queries_for_10_or_60_rows(
    client, estate, django_assert_max_num_queries
):
    _as(client, Role.SYSTEM_ADMIN)
    client.get(URL)
    cam, officer = f.issued_camera()
    for i in range(50):
        f.recording_row(cam=cam, officer=officer, started=timezone.now() - timedelta(minutes=i))
    with django_assert_max_num_queries(10):
        assert client.get(URL).status_code == 200
