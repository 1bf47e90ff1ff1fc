"""Audit reports per recording, per case and per user, as pages and CSV, scoped like the rest."""

import csv
import io

import pytest

from common.roles import Role
from custody.services import audit_record
from evidence.services import recording_consult
from review.services import case_add_recording, case_create
from tests import factories as f
from tests.bwv.test_csp import assert_nothing_inline

pytestmark = pytest.mark.django_db


@pytest.fixture
def trail():
    sergeant = f.user(Role.CUSTODY_SERGEANT)
    recording = f.recording_row()
    recording_consult(recording=recording, actor=sergeant, purpose='=HYPERLINK("http://x")')
    case = case_create(
        crime_reference="5201234/26", title="R v Doe", borough=recording.borough, actor=sergeant
    )
    case_add_recording(case=case, recording=recording, actor=sergeant)
    return {"sergeant": sergeant, "recording": recording, "case": case}


def _urls(t):
    return [
        f"/audit/recordings/{t['recording'].pk}/",
        f"/audit/cases/{t['case'].pk}/",
        f"/audit/users/{t['sergeant'].pk}/",
    ]


@pytest.mark.parametrize(
    ("role", "borough", "expected"),
    [
        (None, None, 302),
        (Role.OFFICER, "QA", 403),
        (Role.CUSTODY_SERGEANT, "QA", 200),
        (Role.DISCLOSURE_OFFICER, "QA", 200),
        (Role.BOROUGH_ADMIN, "QA", 200),
        (Role.CUSTODY_SERGEANT, "EK", 404),
        (Role.SYSTEM_ADMIN, "QA", 200),
    ],
)
def test_audit_report_permission_matrix(client, trail, role, borough, expected):
    if role is not None:
        f.signed_in(client, role, borough_code=borough)
    for url in _urls(trail):
        assert client.get(url).status_code == expected, url
        assert client.get(url + "?format=csv").status_code == expected, url


def test_the_recording_report_lists_every_event_in_chain_order(client, trail):
    f.signed_in(client, Role.CUSTODY_SERGEANT)
    page = client.get(f"/audit/recordings/{trail['recording'].pk}/")
    events = list(page.context["events"])
    # Being put on a case holds the recording: the hold is placed first, in the same transaction.
    assert [e.action for e in events] == ["recording.viewed", "hold.placed", "case.recording_added"]
    assert [e.seq for e in events] == sorted(e.seq for e in events)
    assert b"HYPERLINK" in page.content
    assert_nothing_inline(page)  # the only scripts are the site's own files


def test_csv_reports_neutralise_spreadsheet_formulas(client, trail):
    f.signed_in(client, Role.CUSTODY_SERGEANT)
    response = client.get(f"/audit/recordings/{trail['recording'].pk}/?format=csv")
    assert response["Content-Type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(response.content.decode())))
    viewed = next(r for r in rows if r["action"] == "recording.viewed")
    assert viewed["justification"].startswith("'=HYPERLINK")
    assert viewed["actor"] == trail["sergeant"].username and len(viewed["hash"]) == 64


def test_the_case_report_includes_its_recordings_events(client, trail):
    f.signed_in(client, Role.DISCLOSURE_OFFICER)
    audit_record(actor="system", action="case.note", obj=trail["case"])
    page = client.get(f"/audit/cases/{trail['case'].pk}/")
    actions = [e.action for e in page.context["events"]]
    assert {"case.created", "case.note", "recording.viewed", "case.recording_added"} <= set(actions)


def test_a_user_report_shows_only_that_users_actions(client, trail):
    f.signed_in(client, Role.BOROUGH_ADMIN)
    audit_record(
        actor=f.user(Role.CUSTODY_SERGEANT), action="recording.viewed", obj=trail["recording"]
    )
    page = client.get(f"/audit/users/{trail['sergeant'].pk}/")
    assert {e.actor_user_id for e in page.context["events"]} == {trail["sergeant"].pk}
    assert client.get("/audit/users/999999/").status_code == 404
