"""The review REST API: the permission matrix, search, detail, flag and lift."""

from datetime import timedelta

import pytest
from django.utils import timezone
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from common.roles import Role
from review.models import EvidenceFlag
from tests import factories as f

pytestmark = pytest.mark.django_db


@pytest.fixture
def api():
    return APIClient()


@pytest.fixture
def rows():
    cam_h, officer_h = f.issued_camera(borough_code="QA")
    cam_c, officer_c = f.issued_camera(borough_code="EK")
    now = timezone.now()
    harrow = [
        f.recording_row(cam=cam_h, officer=officer_h, started=now - timedelta(hours=i))
        for i in range(1, 4)
    ]
    camden = [f.recording_row(cam=cam_c, officer=officer_c, started=now - timedelta(hours=1))]
    return harrow, camden


def _verified(api, role, borough="QA"):
    user = f.user(role, borough_code=borough)
    f.sign_in(api, user)
    return user


def test_anonymous_and_password_only_sessions_are_refused(api, rows):
    assert api.get("/api/v1/recordings/").status_code in (401, 403)
    user = f.user(Role.CUSTODY_SERGEANT)
    api.force_login(user)  # password only, no second factor
    response = api.get("/api/v1/recordings/")
    assert response.status_code == 403 and "second factor" in response.json()["detail"]


def test_search_is_scoped_to_the_borough(api, rows):
    harrow, camden = rows
    _verified(api, Role.CUSTODY_SERGEANT)
    data = api.get("/api/v1/recordings/").json()
    assert {r["id"] for r in data["results"]} == {str(r.pk) for r in harrow}
    assert api.get(f"/api/v1/recordings/{camden[0].pk}/").status_code == 404
    assert api.get(f"/api/v1/recordings/{harrow[0].pk}/").json()["borough"] == "QA"


def test_keyset_pagination_through_the_api(api, rows):
    _verified(api, Role.SYSTEM_ADMIN)
    first = api.get("/api/v1/recordings/", {"limit": 2}).json()
    second = api.get("/api/v1/recordings/", {"limit": 2, "cursor": first["next_cursor"]}).json()
    assert (
        len(first["results"]) == 2 and len(second["results"]) == 2 and second["next_cursor"] is None
    )
    assert not {r["id"] for r in first["results"]} & {r["id"] for r in second["results"]}


def test_a_token_works_without_a_session(api, rows):
    user = f.user(Role.CUSTODY_SERGEANT)
    token = Token.objects.create(user=user)
    api.credentials(HTTP_AUTHORIZATION=f"Token {token.key}")
    assert len(api.get("/api/v1/recordings/").json()["results"]) == 3


def test_bad_filters_are_a_400_with_reasons(api, rows):
    _verified(api, Role.CUSTODY_SERGEANT)
    response = api.get("/api/v1/recordings/", {"started_from": "soon", "limit": 10_000})
    assert response.status_code == 400
    assert {"started_from", "limit"} <= set(response.json())


@pytest.mark.parametrize(
    "role, borough, expected",
    [
        (Role.CUSTODY_SERGEANT, "QA", 201),
        (Role.SYSTEM_ADMIN, "QA", 201),
        (Role.BOROUGH_ADMIN, "QA", 403),
        (Role.DISCLOSURE_OFFICER, "QA", 403),
        (Role.CUSTODY_SERGEANT, "EK", 404),
        (Role.OFFICER, "QA", 404),
    ],
)
def test_the_flag_permission_matrix(api, rows, role, borough, expected):
    harrow, _ = rows
    _verified(api, role, borough)
    response = api.post(
        f"/api/v1/recordings/{harrow[0].pk}/flags/",
        {"kind": "policing_purpose", "reason": "intelligence"},
        format="json",
    )
    assert response.status_code == expected
    assert EvidenceFlag.objects.exists() == (expected == 201)


def test_flag_and_lift_through_the_api(api, rows):
    harrow, _ = rows
    _verified(api, Role.CUSTODY_SERGEANT)
    url = f"/api/v1/recordings/{harrow[0].pk}/flags/"
    bad = api.post(
        url, {"kind": "evidence", "crime_reference": "nope", "reason": "x"}, format="json"
    )
    assert bad.status_code == 400 and "crime reference" in bad.json()["detail"]
    flag = api.post(
        url,
        {"kind": "evidence", "crime_reference": "5201234/26", "reason": "assault"},
        format="json",
    ).json()
    assert flag["crime_reference"] == "5201234/26" and flag["lifted_at"] is None
    lift = f"/api/v1/recordings/{harrow[0].pk}/flags/{flag['id']}/lift"
    lifted = api.post(lift, {"reason": "no further action"}, format="json").json()
    assert lifted["lifted_at"] is not None


def test_the_openapi_schema_describes_the_api(api):
    response = api.get("/api/schema/")
    assert response.status_code == 200
    body = response.content.decode()
    assert "/api/v1/recordings/" in body and "/api/v1/ingest/" in body


def test_cases_through_the_api_with_their_permission_matrix(api, rows):
    harrow, camden = rows
    _verified(api, Role.CUSTODY_SERGEANT)
    created = api.post(
        "/api/v1/cases/", {"crime_reference": "5201234/26", "title": "Assault"}, format="json"
    )
    assert created.status_code == 201
    case_id = created.json()["id"]
    assert api.put(f"/api/v1/cases/{case_id}/recordings/{harrow[0].pk}").status_code == 204
    assert api.put(f"/api/v1/cases/{case_id}/recordings/{camden[0].pk}").status_code == 404
    detail = api.get(f"/api/v1/cases/{case_id}/").json()
    assert [r["id"] for r in detail["recordings"]] == [str(harrow[0].pk)]
    assert (
        api.delete(
            f"/api/v1/cases/{case_id}/recordings/{harrow[0].pk}", {}, format="json"
        ).status_code
        == 400
    )  # a reason is needed
    assert (
        api.delete(
            f"/api/v1/cases/{case_id}/recordings/{harrow[0].pk}",
            {"reason": "wrong incident"},
            format="json",
        ).status_code
        == 204
    )
    other = APIClient()
    _verified(other, Role.CUSTODY_SERGEANT, borough="EK")
    assert other.get(f"/api/v1/cases/{case_id}/").status_code == 404
    assert other.get("/api/v1/cases/").json() == []
    admin = APIClient()
    _verified(admin, Role.BOROUGH_ADMIN)
    assert (
        admin.post(
            "/api/v1/cases/", {"crime_reference": "5201234/26", "title": "x"}, format="json"
        ).status_code
        == 403
    )


@pytest.mark.parametrize(
    "params, field",
    [
        ({"deleting_within_days": "9" * 20}, "deleting_within_days"),
        ({"deleting_within_days": "36501"}, "deleting_within_days"),
        ({"case": "9" * 20}, "case"),
    ],
)
def test_numbers_and_dates_out_of_range_in_filters_are_a_400(api, rows, params, field):
    _verified(api, Role.CUSTODY_SERGEANT)
    response = api.get("/api/v1/recordings/", params)
    assert response.status_code == 400
    assert field in response.json()


def test_ids_no_database_column_holds_and_paths_that_are_no_ids_are_a_json_404(api, rows):
    harrow, _ = rows
    _verified(api, Role.CUSTODY_SERGEANT)
    huge = "9" * 20
    for method, url in [
        ("get", f"/api/v1/cases/{huge}/"),
        ("put", f"/api/v1/cases/{huge}/recordings/{harrow[0].pk}"),
        ("post", f"/api/v1/recordings/{harrow[0].pk}/flags/{huge}/lift"),
        ("get", "/api/v1/cases/-1.5/"),
        ("get", "/api/v1/recordings/not-a-uuid/"),
        ("patch", "/api/v1/ingest/not-a-uuid"),
    ]:
        response = getattr(api, method)(url, {"reason": "x"}, format="json")
        assert response.status_code == 404, url
        assert "detail" in response.json(), url
