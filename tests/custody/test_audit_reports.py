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
from tests.html import Page

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


def test_the_report_says_who_did_what_in_words_and_keeps_the_codes_in_the_csv(client, trail):
    f.signed_in(client, Role.CUSTODY_SERGEANT)
    dock, _key = f.dock()
    audit_record(actor=dock, action="recording.ingested", obj=trail["recording"])
    audit_record(actor="system:retention-sweep", action="hold.lifted", obj=trail["recording"])
    url = f"/audit/recordings/{trail['recording'].pk}/"
    text = Page(client.get(url).content).words("audit-events")
    sergeant = trail["sergeant"].officer.display_name
    assert f'{sergeant} viewed the recording: =HYPERLINK("http://x")' in text
    assert "Dock, Test station uploaded the recording Harrow" in text
    assert "The nightly retention sweep lifted a hold on the recording" in text
    for code in ("recording.viewed", "dock:", "system:", " QA "):
        assert code not in text
    rows = list(csv.DictReader(io.StringIO(client.get(url + "?format=csv").content.decode())))
    assert {r["action"] for r in rows} >= {"recording.viewed", "recording.ingested"}
    assert f"dock:{dock.key_id}" in {r["actor"] for r in rows}
    assert {r["borough"] for r in rows} == {"QA"}


def test_the_report_pages_by_a_hundred_and_its_queries_do_not_grow(
    client, trail, django_assert_max_num_queries
):
    f.signed_in(client, Role.CUSTODY_SERGEANT)
    url = f"/audit/recordings/{trail['recording'].pk}/"
    with django_assert_max_num_queries(30) as few:
        client.get(url)
    for n in range(150):
        audit_record(
            actor=f.user(Role.CUSTODY_SERGEANT) if n % 50 == 0 else trail["sergeant"],
            action="recording.viewed",
            obj=trail["recording"],
            justification=f"look {n}",
        )
    with django_assert_max_num_queries(len(few.captured_queries)):
        first = client.get(url)
    assert len(first.context["lines"]) == 100
    assert "Events 1 to 100 of 153" in Page(first.content).words("audit-events")
    last = client.get(url, {"page": "2"})
    assert len(last.context["lines"]) == 53
    assert 'rel="prev"' in last.content.decode()
    assert (
        len(list(csv.reader(io.StringIO(client.get(url + "?format=csv").content.decode())))) == 154
    )
