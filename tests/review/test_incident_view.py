"""The incident view: a recording beside the footage of its borough recorded at the same time (and
nearby, where GPS says so), or a dispatch incident's footage, played together. Who may open it,
what it selects, and each recording it opens audited as a consultation."""

from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from common.roles import Role
from custody.models import AuditEvent
from evidence.incidents import Attendance, incident_record
from evidence.models import ClockSuspect, RecordingState
from review.selectors import metres_apart, recording_overlaps_for
from tests import factories as f

pytestmark = pytest.mark.django_db

AT = timezone.now().replace(microsecond=0) - timedelta(hours=3)


def _row(borough="QA", start=0, seconds=60, **kwargs):
    cam = f.camera(borough_code=borough)
    started = AT + timedelta(seconds=start)
    return f.recording_row(
        cam=cam, started=started, ended_at=started + timedelta(seconds=seconds), **kwargs
    )


def _viewed(recording):
    return AuditEvent.objects.filter(action="recording.viewed", object_id=str(recording.pk))


@pytest.fixture
def scene():
    """A clip of QA from AT to AT + 60 s, and others around it."""
    return {
        "anchor": _row(),
        "during": _row(start=30, seconds=120),  # starts during it
        "before": _row(start=-100, seconds=110),  # began before, still running at its start
        "inside": _row(start=10, seconds=5),
        "touching": _row(start=60, seconds=30),  # starts as it ends: not at the same time
        "earlier": _row(start=-200, seconds=100),  # ended before it began
        "elsewhere": _row(borough="EK", start=5),  # another borough at the same time
        "deleted": _row(start=20, state=RecordingState.DELETED),
        "suspect": _row(start=20, clock_suspect=True, clock_suspect_reason=ClockSuspect.AHEAD),
    }


def test_the_overlap_is_the_same_borough_at_the_same_time(scene):
    sergeant = f.user(Role.CUSTODY_SERGEANT, borough_code="QA")
    found = recording_overlaps_for(user=sergeant, recording=scene["anchor"], within_metres=500)
    names = {r.pk: name for name, r in scene.items()}
    assert [names[r.pk] for r in found] == ["before", "anchor", "inside", "during"]


def test_the_overlap_never_shows_what_the_user_may_not_see(scene):
    # A system admin sees every borough, but the view is of the recording's own borough.
    admin = f.user(Role.SYSTEM_ADMIN, borough_code="EK")
    found = recording_overlaps_for(user=admin, recording=scene["anchor"], within_metres=500)
    assert scene["elsewhere"] not in found and len(found) == 4
    # An officer's scope is their own footage: the others of the borough are not theirs.
    officer_user = f.user(Role.OFFICER, borough_code="QA")
    mine = _row(start=40, officer=officer_user.officer)
    assert recording_overlaps_for(user=officer_user, recording=mine, within_metres=500) == [mine]


def test_where_both_know_their_place_only_nearby_footage_is_shown():
    harrow = (51.5806, -0.3420)
    anchor = _row(gps_lat=harrow[0], gps_lon=harrow[1])
    near = _row(start=5, gps_lat=51.5830, gps_lon=-0.3420)  # about 270 m north
    far = _row(start=5, gps_lat=51.5900, gps_lon=-0.3420)  # about 1 km north
    east = _row(start=5, gps_lat=51.5806, gps_lon=-0.3350)  # about 480 m east
    # About 400 m north and 400 m east: inside a 500 m square around it, but 560 m away.
    corner = _row(start=5, gps_lat=51.5842, gps_lon=-0.3362)
    unknown = _row(start=5)  # no position: the place cannot rule it out
    assert 250 < metres_apart(harrow, (51.5830, -0.3420)) < 290
    assert 540 < metres_apart(harrow, (51.5842, -0.3362)) < 580
    sergeant = f.user(Role.CUSTODY_SERGEANT, borough_code="QA")
    found = recording_overlaps_for(user=sergeant, recording=anchor, within_metres=500)
    assert set(found) == {anchor, near, east, unknown}
    found = recording_overlaps_for(user=sergeant, recording=anchor, within_metres=300)
    assert set(found) == {anchor, near, unknown}
    # A clip without a position is shown everything of its time, whatever their place.
    found = recording_overlaps_for(user=sergeant, recording=anchor, within_metres=600)
    assert set(found) == {anchor, near, east, corner, unknown}
    found = recording_overlaps_for(user=sergeant, recording=unknown, within_metres=300)
    assert set(found) == {anchor, near, far, east, corner, unknown}


@pytest.mark.parametrize(
    "role, borough, expected",
    [
        (Role.CUSTODY_SERGEANT, "QA", 200),
        (Role.DISCLOSURE_OFFICER, "QA", 200),
        (Role.SYSTEM_ADMIN, "EK", 200),
        (Role.CUSTODY_SERGEANT, "EK", 404),  # another borough's recording: as if it did not exist
        (Role.OFFICER, "QA", 403),  # the incident view is a reviewer's
    ],
)
def test_who_may_open_the_incident_view_of_a_recording(client, scene, role, borough, expected):
    f.signed_in(client, role, borough)
    response = client.get(f"/recordings/{scene['anchor'].pk}/together")
    assert response.status_code == expected
    if expected == 200:
        body = response.content.decode()
        assert 'id="purpose-form"' in body and "<video" not in body
        for name in ("anchor", "during", "before", "inside"):
            assert f'value="{scene[name].pk}"' in body
        for name in ("touching", "earlier", "elsewhere", "deleted", "suspect"):
            assert str(scene[name].pk) not in body
    # Nor may the page be sent: nothing is recorded as opened.
    client.post(
        f"/recordings/{scene['anchor'].pk}/together",
        {"purpose": "5201234/26", "recording": [str(scene["elsewhere"].pk)]},
    )
    assert not AuditEvent.objects.filter(action="recording.viewed").exists()


def test_anonymous_is_sent_to_sign_in_from_the_incident_view(client, scene):
    for path in (f"/recordings/{scene['anchor'].pk}/together", "/incidents/1/together"):
        response = client.get(path)
        assert response.status_code == 302 and response["Location"].startswith("/accounts/login/")


def test_each_recording_shown_is_a_consultation_with_the_purpose_given(client, scene):
    f.signed_in(client, Role.CUSTODY_SERGEANT, "QA")
    path = f"/recordings/{scene['anchor'].pk}/together"
    shown = [scene[n] for n in ("before", "anchor", "inside", "during")]
    ids = [str(r.pk) for r in shown]
    # Too short a purpose: said at the field, nothing recorded, nothing playable.
    response = client.post(path, {"purpose": "x", "recording": ids})
    assert response.status_code == 400 and b"say why you are viewing" in response.content.lower()
    assert not AuditEvent.objects.filter(action="recording.viewed").exists()
    assert client.get(f"/recordings/{scene['during'].pk}/media").status_code == 403

    response = client.post(path, {"purpose": "5201234/26 fight outside", "recording": ids})
    assert response.status_code == 302 and response["Location"] == path
    for recording in shown:
        event = _viewed(recording).get()
        assert event.justification == "5201234/26 fight outside"
    for name in ("touching", "elsewhere", "deleted", "suspect"):
        assert not _viewed(scene[name]).exists()

    page = client.get(path).content.decode()
    for n, recording in enumerate(shown, start=1):
        assert f'<video id="player-{n}"' in page
        assert f'src="/recordings/{recording.pk}/media"' in page
        assert f'href="/recordings/{recording.pk}/"' in page  # each still opens alone
    assert "/static/js/multicam." in page
    # Opened once in the session: the page again, or a recording alone, records nothing more.
    client.get(path)
    assert client.get(f"/recordings/{scene['during'].pk}/").status_code == 200
    assert AuditEvent.objects.filter(action="recording.viewed").count() == len(shown)


def test_only_the_recordings_the_form_named_are_opened(client, scene):
    f.signed_in(client, Role.CUSTODY_SERGEANT, "QA")
    path = f"/recordings/{scene['anchor'].pk}/together"
    named = [str(scene["anchor"].pk), str(scene["elsewhere"].pk)]
    response = client.post(path, {"purpose": "5201234/26 fight outside", "recording": named})
    assert response.status_code == 302
    assert _viewed(scene["anchor"]).count() == 1
    assert AuditEvent.objects.filter(action="recording.viewed").count() == 1
    # The others are still to be asked for: the form lists them, and only them.
    body = client.get(path).content.decode()
    assert 'id="purpose-form"' in body
    assert f'value="{scene["during"].pk}"' in body and f'value="{scene["anchor"].pk}"' not in body


def test_the_recording_page_links_to_the_incident_view_for_reviewers_only(client, scene):
    anchor = scene["anchor"]
    for role, shown in ((Role.CUSTODY_SERGEANT, True), (Role.OFFICER, False)):
        officer_user = f.signed_in(client, role, "QA")
        if role == Role.OFFICER:
            anchor.officer = officer_user.officer
            anchor.save()
        client.post(f"/recordings/{anchor.pk}/", {"purpose": "5201234/26"})
        body = client.get(f"/recordings/{anchor.pk}/").content.decode()
        assert (f'href="/recordings/{anchor.pk}/together"' in body) is shown


# -- From a dispatch incident ----------------------------------------------------------------


@pytest.fixture
def incident():
    at = timezone.now().replace(microsecond=0) - timedelta(hours=5)
    cam_a, first = f.issued_camera()
    cam_b, second = f.issued_camera()
    tagged = [
        f.recording_row(cam=cam_a, officer=first, started=at + timedelta(minutes=15)),
        f.recording_row(cam=cam_b, officer=second, started=at + timedelta(minutes=16)),
    ]
    untagged = f.recording_row(cam=cam_a, officer=first, started=at + timedelta(hours=3))
    incident, _created, tags = incident_record(
        reference="CAD 1234/25NOV26",
        borough=f.borough("QA"),
        opened_at=at,
        closed_at=at + timedelta(hours=1),
        location="Station Road, Harrow",
        grade="I",
        attendances=[
            Attendance(first, at + timedelta(minutes=10), at + timedelta(minutes=50)),
            Attendance(second, at + timedelta(minutes=12), at + timedelta(minutes=55)),
        ],
        actor="system:test",
    )
    assert tags == (2, 0)
    return incident, tagged, untagged


@pytest.mark.parametrize(
    "role, borough, expected",
    [
        (Role.CUSTODY_SERGEANT, "QA", 200),
        (Role.SYSTEM_ADMIN, "EK", 200),
        (Role.CUSTODY_SERGEANT, "EK", 404),
        (Role.OFFICER, "QA", 403),
    ],
)
def test_who_may_watch_an_incident_together(client, incident, role, borough, expected):
    incident, tagged, untagged = incident
    f.signed_in(client, role, borough)
    path = f"/incidents/{incident.pk}/together"
    assert client.get(path).status_code == expected
    response = client.post(
        path, {"purpose": "CAD 1234 review", "recording": [str(r.pk) for r in tagged]}
    )
    assert response.status_code == (302 if expected == 200 else expected)
    assert AuditEvent.objects.filter(action="recording.viewed").count() == (
        2 if expected == 200 else 0
    )
    if expected == 200:
        for recording in tagged:
            assert _viewed(recording).get().justification == "CAD 1234 review"
        body = client.get(path).content.decode()
        assert body.count("<video ") == 2 and str(untagged.pk) not in body
        # The incident's page links to it.
        page = client.get(f"/incidents/{incident.pk}/").content.decode()
        assert f'href="/incidents/{incident.pk}/together"' in page and "Watch together" in page


def test_an_incident_with_no_footage_says_so(client):
    incident, _created, _tags = incident_record(
        reference="CAD 9/25NOV26",
        borough=f.borough("QA"),
        opened_at=AT,
        closed_at=None,
        location="",
        grade="",
        attendances=[],
        actor="system:test",
    )
    f.signed_in(client, Role.CUSTODY_SERGEANT, "QA")
    response = client.get(f"/incidents/{incident.pk}/together")
    assert response.status_code == 200 and b'id="no-footage"' in response.content


def test_the_queries_do_not_grow_with_the_recordings_shown(client):
    anchor = _row()
    f.signed_in(client, Role.CUSTODY_SERGEANT, "QA")
    path = f"/recordings/{anchor.pk}/together"
    counts = []
    for more in (1, 4):
        for n in range(more):
            _row(start=n + 1, officer=f.officer(borough_code="QA"))
        ids = [
            str(r.pk)
            for r in recording_overlaps_for(
                user=f.user(Role.SYSTEM_ADMIN), recording=anchor, within_metres=500
            )
        ]
        client.post(path, {"purpose": "5201234/26", "recording": ids})
        with CaptureQueriesContext(connection) as queries:
            assert client.get(path).content.count(b"<video ") == len(ids)
        counts.append(len(queries))
    assert counts[0] == counts[1], counts


def test_when_too_many_overlap_the_recording_itself_is_among_those_played(client, settings):
    settings.BWV_INCIDENT_VIEW_MAX = 2
    early = [_row(start=-50 + n, seconds=200) for n in range(3)]
    anchor = _row(start=0)
    near = _row(start=2)
    f.signed_in(client, Role.CUSTODY_SERGEANT, "QA")
    path = f"/recordings/{anchor.pk}/together"
    body = client.get(path).content.decode()
    assert f'value="{anchor.pk}"' in body and f'value="{near.pk}"' in body
    client.post(path, {"purpose": "5201234/26", "recording": [str(anchor.pk), str(near.pk)]})
    body = client.get(path).content.decode()
    assert body.count("<video ") == 2
    assert f'src="/recordings/{anchor.pk}/media"' in body
    assert f'src="/recordings/{near.pk}/media"' in body
    # The others are listed, each a link to its own page, and were not opened.
    for r in early:
        assert f'href="/recordings/{r.pk}/"' in body and not _viewed(r).exists()
