"""Cases and bulk flags: scope, permissions, audit."""

import pytest

from bwv.roles import Role
from evidence.models import AuditEvent, Case, EvidenceFlag
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
    ],  # fmt: skip
)
def test_the_case_permission_matrix(client, role, borough, list_status, detail_status):
    owner = f.user(Role.CUSTODY_SERGEANT)
    case = Case.objects.create(crime_reference="5201234/26", title="t", borough=f.borough("QA"),
                               created_by=owner)  # fmt: skip
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
    case = Case.objects.create(crime_reference="5201234/26", title="t", borough=f.borough("QA"),
                               created_by=f.user(Role.CUSTODY_SERGEANT))  # fmt: skip
    camden = f.recording_row(cam=f.camera(borough_code="EK"))
    assert client.post(f"/recordings/{camden.pk}/case", {"case": case.pk}).status_code == 404
    assert case.recordings.count() == 0


def test_bulk_flag_flags_what_is_in_scope_and_says_what_was_not(client):
    f.signed_in(client, Role.CUSTODY_SERGEANT)
    mine = [f.recording_row(cam=f.camera(borough_code="QA")) for _ in range(3)]
    theirs = f.recording_row(cam=f.camera(borough_code="EK"))
    response = client.post("/recordings/bulk-flag", {
        "ids": [str(r.pk) for r in mine] + [str(theirs.pk)], "kind": "evidence",
        "crime_reference": "5201234/26", "reason": "same incident"}, follow=True)  # fmt: skip
    assert EvidenceFlag.objects.count() == 3
    assert not EvidenceFlag.objects.filter(recording=theirs).exists()
    assert b"Flagged 3 recording(s)." in response.content and b"Not flagged (1)" in response.content


def test_bulk_flag_needs_the_flag_permission(client):
    f.signed_in(client, Role.BOROUGH_ADMIN)
    recording = f.recording_row(cam=f.camera(borough_code="QA"))
    response = client.post("/recordings/bulk-flag", {"ids": [str(recording.pk)], "kind": "evidence",
                                                     "reason": "x"})  # fmt: skip
    assert response.status_code == 403 and not EvidenceFlag.objects.exists()
