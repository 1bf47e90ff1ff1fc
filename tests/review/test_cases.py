"""Cases and bulk flags: scope, permissions, audit."""

import pytest

from common.roles import Role
from custody.models import AuditEvent
from retention.models import Hold
from review.models import Case, EvidenceFlag
from review.services import case_add_recording, case_close, case_create
from tests import factories as f

pytestmark = pytest.mark.django_db


def test_a_sergeant_opens_a_case_adds_and_removes_a_recording(client):
    f.signed_in(client, Role.CUSTODY_SERGEANT)
    recording = f.recording_row(cam=f.camera(borough_code="QA"))
    response = client.post(
        "/cases/", {"crime_reference": "5201234/26", "title": "Assault, High St"}
    )
    case = Case.objects.get()
    assert response["Location"] == f"/cases/{case.pk}/" and case.borough.code == "QA"
    client.post(f"/recordings/{recording.pk}/case", {"case": case.pk})
    page = client.get(f"/cases/{case.pk}/")
    assert page.status_code == 200 and list(page.context["recordings"]) == [recording]
    client.post(f"/cases/{case.pk}/recordings/{recording.pk}/remove", {"reason": ""})
    assert case.recordings.count() == 1, "removing needs a reason"
    client.post(f"/cases/{case.pk}/recordings/{recording.pk}/remove", {"reason": "wrong incident"})
    assert case.recordings.count() == 0
    actions = set(AuditEvent.objects.values_list("action", flat=True))
    assert {"case.created", "case.recording_added", "case.recording_removed"} <= actions


def test_a_bad_crime_reference_opens_no_case(client):
    f.signed_in(client, Role.CUSTODY_SERGEANT)
    response = client.post("/cases/", {"crime_reference": "abc", "title": "x"}, follow=True)
    assert b"is not a crime reference" in response.content and not Case.objects.exists()


@pytest.mark.parametrize(
    "role, borough, list_status, detail_status",
    [
        (Role.CUSTODY_SERGEANT, "QA", 200, 200),
        (Role.DISCLOSURE_OFFICER, "QA", 200, 200),
        (Role.CUSTODY_SERGEANT, "EK", 200, 404),
        (Role.OFFICER, "QA", 200, 404),
    ],
)
def test_the_case_permission_matrix(client, role, borough, list_status, detail_status):
    owner = f.user(Role.CUSTODY_SERGEANT)
    case = Case.objects.create(
        crime_reference="5201234/26", title="t", borough=f.borough("QA"), created_by=owner
    )
    f.signed_in(client, role, borough)
    listing = client.get("/cases/")
    assert listing.status_code == list_status
    assert (case in list(listing.context["cases"])) == (detail_status == 200)
    assert client.get(f"/cases/{case.pk}/").status_code == detail_status


def test_only_roles_that_may_change_cases_can_open_one(client):
    f.signed_in(client, Role.DISCLOSURE_OFFICER)
    assert (
        client.post("/cases/", {"crime_reference": "5201234/26", "title": "t"}).status_code == 403
    )


def test_anonymous_is_sent_to_sign_in(client):
    assert client.get("/cases/").status_code == 302


def test_another_boroughs_recording_cannot_join_a_case(client):
    f.signed_in(client, Role.CUSTODY_SERGEANT)
    case = Case.objects.create(
        crime_reference="5201234/26",
        title="t",
        borough=f.borough("QA"),
        created_by=f.user(Role.CUSTODY_SERGEANT),
    )
    camden = f.recording_row(cam=f.camera(borough_code="EK"))
    assert client.post(f"/recordings/{camden.pk}/case", {"case": case.pk}).status_code == 404
    assert case.recordings.count() == 0


def test_bulk_flag_flags_what_is_in_scope_and_says_what_was_not(client):
    f.signed_in(client, Role.CUSTODY_SERGEANT)
    mine = [f.recording_row(cam=f.camera(borough_code="QA")) for _ in range(3)]
    theirs = f.recording_row(cam=f.camera(borough_code="EK"))
    response = client.post(
        "/recordings/bulk-flag",
        {
            "ids": [str(r.pk) for r in mine] + [str(theirs.pk)],
            "kind": "evidence",
            "crime_reference": "5201234/26",
            "reason": "same incident",
        },
        follow=True,
    )
    assert EvidenceFlag.objects.count() == 3
    assert not EvidenceFlag.objects.filter(recording=theirs).exists()
    assert b"Flagged 3 recordings as evidence, crime reference 5201234/26" in response.content
    assert b"Not flagged (1)" in response.content


def test_bulk_flag_needs_the_flag_permission(client):
    f.signed_in(client, Role.BOROUGH_ADMIN)
    recording = f.recording_row(cam=f.camera(borough_code="QA"))
    response = client.post(
        "/recordings/bulk-flag", {"ids": [str(recording.pk)], "kind": "evidence", "reason": "x"}
    )
    assert response.status_code == 403 and not EvidenceFlag.objects.exists()


def _case_with_recording(borough_code="QA"):
    owner = f.user(Role.CUSTODY_SERGEANT, borough_code=borough_code)
    case = case_create(
        crime_reference="5201234/26",
        title="Assault, High St",
        borough=f.borough(borough_code),
        actor=owner,
    )
    recording = f.recording_row(cam=f.camera(borough_code=borough_code))
    case_add_recording(case=case, recording=recording, actor=owner)
    return case, recording


@pytest.mark.parametrize(
    "role, borough, status, closed",
    [
        (None, "QA", 302, False),  # anonymous: sent to sign in
        (Role.OFFICER, "QA", 404, False),
        (Role.BOROUGH_ADMIN, "QA", 403, False),
        (Role.DISCLOSURE_OFFICER, "QA", 403, False),
        (Role.CUSTODY_SERGEANT, "EK", 404, False),
        (Role.CUSTODY_SERGEANT, "QA", 302, True),
        (Role.SYSTEM_ADMIN, "QA", 302, True),
    ],
)
def test_the_close_case_permission_matrix(client, role, borough, status, closed):
    case, recording = _case_with_recording()
    if role is not None:
        f.signed_in(client, role, borough)
    response = client.post(f"/cases/{case.pk}/close", {"reason": "no further action"})
    assert response.status_code == status
    if role is None:
        assert "/accounts/login/" in response["Location"]
    case.refresh_from_db()
    recording.refresh_from_db()
    assert case.is_open is not closed
    assert recording.held is not closed
    assert AuditEvent.objects.filter(action="case.closed").exists() is closed


def test_a_sergeant_closes_a_case_from_its_page(client):
    case, recording = _case_with_recording()
    sergeant = f.signed_in(client, Role.CUSTODY_SERGEANT)
    page = client.get(f"/cases/{case.pk}/")
    assert b'id="case-close-form"' in page.content
    response = client.post(f"/cases/{case.pk}/close", {"reason": "sentenced"}, follow=True)
    assert response.status_code == 200 and b"closed" in response.content
    assert b'id="case-closed"' in response.content and b"sentenced" in response.content
    assert b'id="case-close-form"' not in response.content
    case.refresh_from_db()
    assert case.closed_by == sergeant and case.close_reason == "sentenced"
    hold = Hold.objects.get(recording=recording)
    assert not hold.active and "sentenced" in hold.lift_reason


def test_closing_without_a_reason_says_so_at_the_field_and_changes_nothing(client):
    case, recording = _case_with_recording()
    f.signed_in(client, Role.CUSTODY_SERGEANT)
    response = client.post(f"/cases/{case.pk}/close", {"reason": "  "})
    assert response.status_code == 400
    assert (
        b'id="error-summary"' in response.content and b'id="close-reason-error"' in response.content
    )
    assert b"Closing a case needs a reason" in response.content
    case.refresh_from_db()
    recording.refresh_from_db()
    assert case.is_open and recording.held and Hold.objects.filter(active=True).count() == 1


def test_a_closed_case_is_not_offered_and_refuses_new_recordings(client):
    case, _recording = _case_with_recording()
    sergeant = f.signed_in(client, Role.CUSTODY_SERGEANT)
    case_close(case=case, actor=sergeant, reason="sentenced")
    other = f.recording_row(cam=f.camera(borough_code="QA"))
    session = client.session
    session["bwv_consulted"] = {str(other.pk): "now"}
    session.save()
    page = client.get(f"/recordings/{other.pk}/")
    assert page.status_code == 200 and case not in list(page.context["open_cases"])
    response = client.post(f"/recordings/{other.pk}/case", {"case": case.pk}, follow=True)
    assert b"is closed: it takes no new recordings" in response.content
    assert not case.recordings.filter(pk=other.pk).exists()
    listing = client.get("/cases/")
    assert b"Closed " in listing.content
