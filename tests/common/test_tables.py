"""The staff lists page by 50 with a count, sort on the server by the columns that help (the
filters kept, back to page one), and name people, docks and boroughs in words: the cameras list
says who holds each camera, the officers list each officer's camera."""

import itertools
from datetime import timedelta

import pytest
from django.utils import timezone

from common.roles import Role
from devices.models import Dock, LostCameraAlert, Unit
from evidence.models import BoroughAccessGrant
from requests_portal.models import AccessRequest, RequestKind, RequestStatus
from review.models import Case
from tests import factories as f
from tests.html import Page

pytestmark = pytest.mark.django_db

_n = itertools.count(1)


def _cases(user, n):
    borough = f.borough()
    Case.objects.bulk_create(
        Case(crime_reference=f"{i:07d}/26", title=f"Case {i}", borough=borough, created_by=user)
        for i in range(1, n + 1)
    )


def _docks(n):
    borough = f.borough()
    Dock.objects.bulk_create(
        Dock(
            name=f"Dock {i}",
            station="Harrow police station",
            borough=borough,
            key_id=f"k{next(_n):015d}",
            key_hash="0" * 64,
        )
        for i in range(1, n + 1)
    )


def _alerts(n):
    cam = f.camera()
    LostCameraAlert.objects.bulk_create(
        LostCameraAlert(camera=cam, borough=cam.borough, raised_at=timezone.now(), reason="lost")
        for _ in range(n)
    )


def _units(n):
    Unit.objects.bulk_create(Unit(name=f"Unit {i}", borough=f.borough()) for i in range(n))


def _requests(n):
    now = timezone.now()
    AccessRequest.objects.bulk_create(
        AccessRequest(
            reference=f"SAR-2026-{next(_n):06d}",
            kind=RequestKind.RIGHT_OF_ACCESS,
            status=RequestStatus.RECEIVED,
            name="Sam",
            email="sam@example.org",
            incident_at=now,
            borough=f.borough(),
            place="Station Road",
            description="stopped",
            due_at=(now + timedelta(days=i)).date(),
        )
        for i in range(n)
    )


def _grants(n):
    admin = f.user(Role.SYSTEM_ADMIN)
    now = timezone.now()
    BoroughAccessGrant.objects.bulk_create(
        BoroughAccessGrant(
            user=f.user(Role.CUSTODY_SERGEANT),
            borough=f.borough("EK"),
            reason="inquiry",
            granted_by=admin,
            starts_at=now,
            expires_at=now + timedelta(days=2),
        )
        for _ in range(n)
    )


LISTS = [
    ("/cases/", Role.CUSTODY_SERGEANT, lambda user: _cases(user, 51), "cases"),
    ("/estate/docks/", Role.BOROUGH_ADMIN, lambda user: _docks(51), "docks"),
    ("/estate/alerts/", Role.BOROUGH_ADMIN, lambda user: _alerts(51), "alerts"),
    ("/estate/units/", Role.BOROUGH_ADMIN, lambda user: _units(51), "units"),
    ("/disclosure/", Role.DISCLOSURE_OFFICER, lambda user: _requests(51), "queue"),
    ("/grants/", Role.SYSTEM_ADMIN, lambda user: _grants(51), "grants"),
]


@pytest.mark.parametrize(("url", "role", "make", "table"), LISTS, ids=[x[0] for x in LISTS])
def test_a_list_of_51_shows_50_counts_all_and_links_the_next_page(client, url, role, make, table):
    user = f.signed_in(client, role)
    make(user)
    first = client.get(url).content.decode()
    assert _rows(first, table) == 1 + 50  # the header row and 50
    assert "51" in Page(first).words(table).split(" ")[:4]  # the caption counts them all
    nexts = [a["href"] for t, a in Page(first).elements if t == "a" and a.get("rel") == "next"]
    assert nexts == ["?page=2"]
    assert _rows(client.get(url + "?page=2").content.decode(), table) == 1 + 1


def _rows(html: str, table: str) -> int:
    start = html.index(f'id="{table}"')
    return html[start : html.index("</table>", start)].count("<tr")


def test_cases_sort_by_a_column_both_ways_keeping_the_filter(client):
    user = f.signed_in(client, Role.CUSTODY_SERGEANT)
    _cases(user, 3)
    page = Page(client.get("/cases/", {"sort": "reference", "show": "open"}).content)
    text = page.words("cases")
    assert text.index("0000001/26") < text.index("0000002/26") < text.index("0000003/26")
    headers = {a.get("aria-sort") for t, a in page.elements if t == "th" and "aria-sort" in a}
    assert headers == {"ascending", "none"}
    turn = next(
        a["href"] for t, a in page.elements if t == "a" and "sort=-reference" in a.get("href", "")
    )
    assert "show=open" in turn and "page" not in turn
    text = Page(client.get("/cases/", {"sort": "-reference"}).content).words("cases")
    assert text.index("0000003/26") < text.index("0000001/26")
    # A sort the page does not offer is the default, not an error.
    assert client.get("/cases/", {"sort": "title; drop table"}).status_code == 200


def test_the_cameras_list_says_who_holds_each_camera_and_the_officers_list_their_camera(
    client, django_assert_max_num_queries
):
    f.signed_in(client, Role.BOROUGH_ADMIN)
    cam, officer = f.issued_camera()
    spare = f.camera()
    cameras = Page(client.get("/estate/cameras/").content).words("cameras")
    assert f"{cam.serial} Body-worn" in cameras and officer.display_name in cameras
    assert spare.serial in cameras and "Nobody" in cameras
    officers = Page(client.get("/estate/officers/").content).words("officers")
    assert f"{officer.last_name}, {officer.first_name}" in officers and cam.serial in officers
    with django_assert_max_num_queries(40) as few:
        client.get("/estate/cameras/")
        client.get("/estate/officers/")
    for _ in range(5):
        f.issued_camera()
    with django_assert_max_num_queries(len(few.captured_queries)):
        client.get("/estate/cameras/")
        client.get("/estate/officers/")


def test_people_and_docks_are_named_not_coded(client):
    sergeant = f.signed_in(client, Role.CUSTODY_SERGEANT)
    _docks(1)
    case = Case.objects.create(
        crime_reference="1234567/26", title="R v Doe", borough=f.borough(), created_by=sergeant
    )
    assert sergeant.officer.display_name in client.get(f"/cases/{case.pk}/").content.decode()
    dock = Dock.objects.get()
    assert str(dock) == "Dock 1, Harrow police station"
