"""Crime reports open cases with their incidents' footage as candidates; outcomes set retention
through the one hold service, a due review waits in the officer in the case's work queue, and
nothing on an open case, or held by an outcome, is deleted. Through the real API with real OAuth
tokens, the real work-queue pages, and the real sweep on PostgreSQL and S3."""

from datetime import timedelta

import pytest
import requests
from django.conf import settings as django_settings
from django.test import Client
from django.utils import timezone

from blobstore import blob_store
from common.roles import Role
from custody.models import AuditEvent
from evidence.models import RecordingState
from integrations.models import CrimeReport, ReviewState, SourceRecord
from retention.models import Hold, HoldSource
from retention.sweep import sweep_expired_recordings
from review.models import CandidateState, Case, CaseCandidate, EvidenceFlag, FlagKind
from review.services import case_add_recording
from tests import factories as f
from tests.integrations.oauth import connect

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("outcome_table")]

REF = "5201234/26"
CAD = "CAD 1234/25OCT26"


@pytest.fixture
def scene(live_server):
    """An incident 40 days ago in Harrow with one officer's clip of it (already past its 31 days),
    the officer in the case with a staff account, and the two connected systems."""
    at = timezone.now().replace(microsecond=0) - timedelta(days=40)
    cam, officer = f.issued_camera(at=at - timedelta(days=90))
    clip = f.ingested_recording(cam=cam, start=at + timedelta(minutes=20))
    oic_user = f.user(Role.OFFICER)
    cad = connect(live_server.url, name="CAD", scopes=["incidents:write"])
    rms = connect(
        live_server.url,
        name="RMS",
        kind="crime_recording",
        scopes=["crime_reports:write", "outcomes:write", "evidence:read"],
    )
    incident = {
        "reference": CAD,
        "version": 1,
        "borough": "QA",
        "opened_at": at.isoformat(),
        "closed_at": (at + timedelta(hours=2)).isoformat(),
        "officers": [
            {
                "collar_number": officer.collar_number,
                "arrived_at": (at + timedelta(minutes=10)).isoformat(),
                "cleared_at": (at + timedelta(minutes=60)).isoformat(),
            }
        ],
    }
    assert cad.post("incidents/", incident).json()["detail"]["tags_added"] == 1
    return {
        "at": at,
        "cam": cam,
        "clip": clip,
        "oic": oic_user,
        "cad": cad,
        "rms": rms,
        "incident": incident,
    }


def _report(*, version=1, oic="", incidents=(CAD,), borough="QA"):
    return {
        "crime_reference": REF,
        "version": version,
        "borough": borough,
        "classification": "Assault occasioning actual bodily harm",
        "status": "under investigation",
        "officer_in_case": oic,
        "incidents": list(incidents),
    }


def _outcome(outcome, *, version=1, days_ago=1, group=0):
    return {
        "crime_reference": REF,
        "version": version,
        "outcome": outcome,
        "mopi_group": group,
        "decided_on": (timezone.localdate() - timedelta(days=days_ago)).isoformat(),
    }


def _staff(user) -> Client:
    client = Client()
    f.sign_in(client, user)
    return client


def _sweep():
    later = timezone.now() + timedelta(days=django_settings.BWV_MIN_REVIEW_DAYS + 1)
    return sweep_expired_recordings(now=later, override_reason="test: tiny estate")


def _kept(recording) -> bool:
    recording.refresh_from_db()
    exists = blob_store().size(recording.storage_key) is not None
    return recording.state == RecordingState.AVAILABLE and exists


@pytest.mark.parametrize(
    "who, expected",
    [("anonymous", 401), ("no scope", 403), ("right scope", 201), ("other borough", 403)],
)
def test_the_crime_report_and_outcome_permission_matrix(live_server, scene, who, expected):
    callers = iter(range(10))

    def caller(scopes, boroughs=("QA",)):
        name = f"Caller {next(callers)}"
        return connect(live_server.url, name=name, scopes=scopes, boroughs=boroughs)

    if who == "anonymous":
        report = requests.post(
            f"{live_server.url}/api/v1/crime-reports/", json=_report(), timeout=30
        )
    elif who == "no scope":
        report = caller(["outcomes:write", "evidence:read"]).post("crime-reports/", _report())
    elif who == "right scope":
        report = caller(["crime_reports:write"]).post("crime-reports/", _report())
    else:
        report = caller(["crime_reports:write"], boroughs=["EK"]).post("crime-reports/", _report())
    assert report.status_code == expected, report.text
    assert CrimeReport.objects.exists() == (expected == 201)

    # The outcome of a report that exists (sent by the crime recording system).
    if expected != 201:
        assert scene["rms"].post("crime-reports/", _report()).status_code == 201
    body = _outcome("charged")
    if who == "anonymous":
        outcome = requests.post(f"{live_server.url}/api/v1/outcomes/", json=body, timeout=30)
    elif who == "no scope":
        outcome = caller(["crime_reports:write", "evidence:read"]).post("outcomes/", body)
    elif who == "right scope":
        outcome = caller(["outcomes:write"]).post("outcomes/", body)
    else:
        outcome = caller(["outcomes:write"], boroughs=["EK"]).post("outcomes/", body)
    assert outcome.status_code == expected, outcome.text
    assert SourceRecord.objects.filter(kind="outcome").exists() == (expected == 201)


def test_a_report_opens_a_case_whose_officer_confirms_the_incident_footage(scene):
    oic = scene["oic"]
    response = scene["rms"].post("crime-reports/", _report(oic=oic.officer.collar_number))
    assert response.status_code == 201, response.text
    assert response.json()["detail"]["candidates_offered"] == 1
    case = Case.objects.get(pk=response.json()["detail"]["case"])
    assert case.crime_reference == REF and case.officer_in_case == oic.officer
    candidate = CaseCandidate.objects.get(case=case)
    assert candidate.recording == scene["clip"] and candidate.state == CandidateState.OFFERED
    # Held while it waits, though it is past its 31 days.
    assert Hold.objects.filter(
        recording=scene["clip"], source=HoldSource.CASE, active=True
    ).exists()
    _sweep()
    assert _kept(scene["clip"])

    # Nobody signed in is sent to sign in; another officer, and a Camden sergeant, cannot
    # decide (404: not theirs to see).
    anonymous = Client().post(f"/work/candidates/{candidate.pk}/confirm")
    assert anonymous.status_code == 302 and "/accounts/login/" in anonymous["Location"]
    for outsider in (f.user(Role.OFFICER), f.user(Role.CUSTODY_SERGEANT, borough_code="EK")):
        client = _staff(outsider)
        assert client.get("/work/").status_code == 200
        assert CAD not in client.get("/work/").content.decode()
        denied = client.post(f"/work/candidates/{candidate.pk}/confirm", {"reason": "mine"})
        assert denied.status_code == 404
    assert CaseCandidate.objects.get(pk=candidate.pk).state == CandidateState.OFFERED

    client = _staff(oic)
    queue = client.get("/work/").content.decode()
    assert f"candidate-{candidate.pk}" in queue and REF in queue
    assert client.post(f"/work/candidates/{candidate.pk}/confirm").status_code == 302
    candidate.refresh_from_db()
    assert candidate.state == CandidateState.CONFIRMED and candidate.decided_by == oic
    assert case.recordings.filter(pk=scene["clip"].pk).exists()
    flag = EvidenceFlag.objects.get(recording=scene["clip"], lifted_at__isnull=True)
    assert flag.kind == FlagKind.EVIDENCE and flag.crime_reference == REF
    confirmed = AuditEvent.objects.get(action="case.candidate_confirmed")
    assert confirmed.actor_user_id == oic.pk and confirmed.object_id == str(scene["clip"].pk)
    # The waiting hold gave way to the case's and the flag's.
    assert not Hold.objects.filter(
        recording=scene["clip"], source_ref__endswith=":candidate", active=True
    ).exists()
    # The crime recording system reads the case's footage.
    evidence = scene["rms"].get("evidence/", crime_reference=REF).json()
    assert [r["id"] for r in evidence] == [str(scene["clip"].pk)] and evidence[0]["evidence"]


def test_the_force_may_have_candidates_flagged_at_once(scene, settings):
    settings.BWV_CASE_CANDIDATES_AUTO_FLAG = True
    response = scene["rms"].post("crime-reports/", _report())
    assert response.status_code == 201, response.text
    candidate = CaseCandidate.objects.get()
    assert candidate.state == CandidateState.CONFIRMED
    assert EvidenceFlag.objects.filter(
        recording=scene["clip"], kind=FlagKind.EVIDENCE, crime_reference=REF
    ).exists()
    event = AuditEvent.objects.get(action="case.candidate_confirmed")
    assert event.actor_label == "client:rms"


def test_out_of_order_and_repeated_calls_are_refused_or_answered_without_change(scene):
    rms = scene["rms"]
    early = rms.post("outcomes/", _outcome("nfa"))
    assert early.status_code == 409 and "has not been received" in early.json()["detail"]
    unknown = rms.post("crime-reports/", _report(incidents=["CAD 9999/1JAN26"]))
    assert unknown.status_code == 409 and "CAD 9999/1JAN26" in unknown.json()["detail"]
    assert not CrimeReport.objects.exists() and not Case.objects.exists()

    assert rms.post("crime-reports/", _report(version=5)).status_code == 201
    replay = rms.post("crime-reports/", _report(version=5))
    assert replay.status_code == 200 and replay.json()["result"] == "unchanged"
    stale = rms.post("crime-reports/", _report(version=4, incidents=()))
    assert stale.status_code == 409 and "stale" in stale.json()["detail"]
    assert CrimeReport.objects.get().incidents.count() == 1
    assert Case.objects.count() == 1 and CaseCandidate.objects.count() == 1

    future = rms.post("outcomes/", _outcome("nfa", days_ago=-5))
    assert future.status_code == 400 and "future" in future.json()["decided_on"][0]
    bad_code = rms.post("outcomes/", {**_outcome("nfa"), "outcome": "hanged"})
    assert bad_code.status_code == 400
    assert not Hold.objects.filter(source=HoldSource.OUTCOME).exists()


def test_an_outcome_holds_the_case_footage_until_a_person_releases_the_review(scene):
    """No further action: the case closes, its footage is held by the outcome with a review date;
    the sweep deletes nothing; the due review waits in the officer in the case's work queue, and
    only their release lets footage that nothing else holds go."""
    oic = scene["oic"]
    rms = scene["rms"]
    rms.post("crime-reports/", _report(oic=oic.officer.collar_number))
    case = Case.objects.get()
    # A second clip, put on the case by a sergeant (held by the case only, no flag).
    sergeant = f.user(Role.CUSTODY_SERGEANT)
    extra = f.ingested_recording(cam=scene["cam"], start=scene["at"] + timedelta(minutes=30))
    case_add_recording(case=case, recording=extra, actor=sergeant)
    _staff(oic).post(f"/work/candidates/{CaseCandidate.objects.get().pk}/confirm")

    # Decided 181 days ago: the table's review after 180 days is already due.
    response = rms.post("outcomes/", _outcome("nfa", days_ago=181))
    assert response.status_code == 201, response.text
    assert response.json()["detail"]["recordings_held"] == 2
    case.refresh_from_db()
    assert not case.is_open
    review = case.retention_review
    assert review.state == ReviewState.SCHEDULED and review.due_at <= timezone.now()
    assert Hold.objects.filter(recording=extra, source=HoldSource.OUTCOME, active=True).exists()
    _sweep()
    assert _kept(extra) and _kept(scene["clip"])

    # Someone else cannot release it; the officer in the case sees it due and releases it.
    outsider = _staff(f.user(Role.OFFICER))
    assert f"review-{review.pk}" not in outsider.get("/work/").content.decode()
    assert outsider.post(f"/work/reviews/{review.pk}/release", {"reason": "x"}).status_code == 404
    client = _staff(oic)
    assert f"review-{review.pk}" in client.get("/work/").content.decode()
    # Without a reason nothing happens.
    client.post(f"/work/reviews/{review.pk}/release", {"reason": " "})
    review.refresh_from_db()
    assert review.state == ReviewState.SCHEDULED
    client.post(f"/work/reviews/{review.pk}/release", {"reason": "NFA confirmed, not needed"})
    review.refresh_from_db()
    assert review.state == ReviewState.RELEASED and review.decided_by == oic
    released = AuditEvent.objects.get(action="retention_review.released")
    assert released.actor_user_id == oic.pk and released.justification == (
        "NFA confirmed, not needed"
    )

    _sweep()
    # The clip only the case and the outcome held is gone; the one flagged as evidence stays.
    extra.refresh_from_db()
    assert extra.state == RecordingState.DELETED
    assert _kept(scene["clip"])


def test_charged_holds_the_open_case_until_a_later_outcome(scene):
    rms = scene["rms"]
    rms.post("crime-reports/", _report())
    case = Case.objects.get()
    charged = rms.post("outcomes/", _outcome("charged", version=1))
    assert charged.status_code == 201, charged.text
    case.refresh_from_db()
    assert case.is_open and case.retention_review.state == ReviewState.WAITING
    assert case.retention_review.due_at is None

    convicted = rms.post("outcomes/", _outcome("convicted", version=2, group=1))
    assert convicted.status_code == 200 and convicted.json()["result"] == "updated"
    case.refresh_from_db()
    review = case.retention_review
    assert review.state == ReviewState.SCHEDULED
    assert (review.due_at.date() - timezone.localdate()).days in range(3650, 3653)
    assert not case.is_open
    # An older outcome arriving late changes nothing.
    late = rms.post("outcomes/", _outcome("nfa", version=1))
    assert late.status_code == 409
    case.retention_review.refresh_from_db()
    assert case.retention_review.state == ReviewState.SCHEDULED
