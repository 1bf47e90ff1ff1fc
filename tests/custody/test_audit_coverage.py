"""Every URL that touches footage leaves exactly one matching audit event per recording it touches
(DPA 2018 s.62: collection, alteration, consultation, disclosure, erasure).

Collection (ingest) is proved in test_ingest_api, erasure (the sweep) in retention/test_sweep and
sign-in in bwv/test_sign_in; this walks the staff and public URLs. Playback (media and poster) is
part of a consultation: those URLs answer only after the purpose was given, which is the one
"recording.viewed" event, so they must add none of their own (a player makes dozens of range
requests per viewing).
"""

import pytest

from common.roles import Role
from custody.models import AuditEvent, ShareLink
from review.models import EvidenceFlag
from review.services import case_add_recording, case_create
from tests import factories as f

pytestmark = pytest.mark.django_db

# Events that a step may write besides its own, because it changes retention too.
SIDE_EFFECTS = {"hold.placed", "hold.lifted"}


def _events(recording_ids) -> list[AuditEvent]:
    return list(AuditEvent.objects.filter(object_id__in=[str(i) for i in recording_ids]))


def test_every_footage_url_writes_exactly_one_matching_event(client, small_clip):
    sergeant = f.signed_in(client, Role.CUSTODY_SERGEANT)
    recording = f.ingested_recording(data=small_clip)
    other = f.ingested_recording(cam=recording.camera)
    case = case_create(
        crime_reference="5201234/26", title="R v Doe", borough=recording.borough, actor=sergeant
    )
    case_add_recording(case=case, recording=other, actor=sergeant)
    rid = recording.pk
    state = {}

    def flag_id():
        return EvidenceFlag.objects.filter(recording=recording, lifted_at__isnull=True).first().pk

    def make_export():
        return client.post("/exports/new", {"case": case.pk, "recipient": "CPS", "purpose": "file"})

    def export_id():
        from custody.models import Export

        return Export.objects.get().pk

    def share():
        response = client.post(
            f"/exports/{export_id()}/share", {"email": "l@cps.gov.uk", "days": 3}
        )
        state["token"] = (
            client.get(f"/exports/{export_id()}/").context["new_link"].split("/share/")[1]
        )
        return response

    steps = [
        # (name, request, expected action, recordings it touches, expected status)
        (
            "consult",
            lambda: client.post(f"/recordings/{rid}/", {"purpose": "5201234/26 review"}),
            "recording.viewed",
            [rid],
            302,
        ),
        (
            "play",
            lambda: client.get(f"/recordings/{rid}/media", HTTP_RANGE="bytes=0-99"),
            None,
            [rid],
            206,
        ),
        ("poster", lambda: client.get(f"/recordings/{rid}/poster"), None, [rid], 200),
        (
            "flag",
            lambda: client.post(
                f"/recordings/{rid}/flag",
                {"kind": "evidence", "crime_reference": "5201234/26", "reason": "assault"},
            ),
            "recording.flagged",
            [rid],
            302,
        ),
        (
            "lift",
            lambda: client.post(
                f"/recordings/{rid}/flags/{flag_id()}/lift", {"reason": "no further action"}
            ),
            "recording.unflagged",
            [rid],
            302,
        ),
        (
            "api flag",
            lambda: client.post(
                f"/api/v1/recordings/{rid}/flags/",
                {"kind": "policing_purpose", "reason": "intelligence"},
                content_type="application/json",
            ),
            "recording.flagged",
            [rid],
            201,
        ),
        (
            "api lift",
            lambda: client.post(
                f"/api/v1/recordings/{rid}/flags/{flag_id()}/lift",
                {"reason": "done"},
                content_type="application/json",
            ),
            "recording.unflagged",
            [rid],
            200,
        ),
        (
            "bulk flag",
            lambda: client.post(
                "/recordings/bulk-flag",
                {"ids": [str(rid), str(other.pk)], "kind": "policing_purpose", "reason": "patrol"},
            ),
            "recording.flagged",
            [rid, other.pk],
            302,
        ),
        (
            "bookmark",
            lambda: client.post(
                f"/recordings/{rid}/bookmarks", {"at_seconds": "1.5", "note": "arrest"}
            ),
            "recording.bookmarked",
            [rid],
            302,
        ),
        (
            "add to case",
            lambda: client.post(f"/recordings/{rid}/case", {"case": case.pk}),
            "case.recording_added",
            [rid],
            302,
        ),
        (
            "remove from case",
            lambda: client.post(
                f"/cases/{case.pk}/recordings/{rid}/remove", {"reason": "not relevant"}
            ),
            "case.recording_removed",
            [rid],
            302,
        ),
        (
            "api add to case",
            lambda: client.put(f"/api/v1/cases/{case.pk}/recordings/{rid}"),
            "case.recording_added",
            [rid],
            204,
        ),
        ("export", make_export, "recording.exported", [rid, other.pk], 302),
        (
            "download",
            lambda: client.get(f"/exports/{export_id()}/bundle.zip"),
            "recording.disclosed",
            [rid, other.pk],
            200,
        ),
        ("share", share, "recording.shared", [rid, other.pk], 302),
        (
            "shared download",
            lambda: client.get(f"/share/{state['token']}bundle.zip"),
            "recording.disclosed",
            [rid, other.pk],
            200,
        ),
    ]
    for name, request, action, touched, status in steps:
        before = {e.pk for e in _events(touched)}
        response = request()
        if hasattr(response, "streaming_content"):
            b"".join(response.streaming_content)
        assert response.status_code == status, (name, response.status_code)
        new = [e for e in _events(touched) if e.pk not in before]
        if action is None:
            assert new == [], (name, [e.action for e in new])
            continue
        for recording_id in touched:
            mine = [e for e in new if e.object_id == str(recording_id)]
            matching = [e for e in mine if e.action == action]
            assert len(matching) == 1, (name, recording_id, [e.action for e in mine])
            assert {e.action for e in mine} - {action} <= SIDE_EFFECTS, (name, mine)
            event = matching[0]
            assert event.actor_label, name  # who
            assert event.at is not None  # when
    assert ShareLink.objects.get().access_count == 1
