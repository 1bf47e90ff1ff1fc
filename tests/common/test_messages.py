"""Every action says what happened in words ("Flagged as evidence, crime reference 1234567/26"),
never a bare "Done."."""

import pytest
from django.contrib.messages import get_messages
from django.utils import timezone

from common.roles import Role
from devices.models import CameraStatus
from requests_portal.models import AccessRequest, RequestKind, RequestStatus
from review.models import EvidenceFlag
from tests import factories as f

pytestmark = pytest.mark.django_db


def _said(response) -> list[str]:
    return [str(m) for m in get_messages(response.wsgi_request)]


def test_flagging_and_lifting_say_what_flag_on_what(client):
    f.signed_in(client, Role.CUSTODY_SERGEANT)
    recording = f.recording_row()
    response = client.post(
        f"/recordings/{recording.pk}/flag",
        {"kind": "evidence", "crime_reference": "1234567/26", "reason": "assault on arrest"},
    )
    assert _said(response) == [
        "Flagged as evidence, crime reference 1234567/26: the recording is held and will not "
        "be deleted."
    ]
    flag = EvidenceFlag.objects.get()
    response = client.post(
        f"/recordings/{recording.pk}/flags/{flag.pk}/lift", {"reason": "no further action"}
    )
    said = _said(response)
    assert said and said[-1].startswith("Flag lifted (evidence, crime reference 1234567/26).")


def test_a_cameras_status_change_names_the_camera_and_its_new_status(client):
    f.signed_in(client, Role.BOROUGH_ADMIN)
    camera = f.camera()
    response = client.post(
        f"/estate/cameras/{camera.pk}/",
        {"action": "status", "status": CameraStatus.FAULTY, "reason": "lens cracked"},
    )
    assert _said(response) == [f"Camera {camera.serial} is now faulty."]


def test_an_action_on_an_access_request_says_what_it_did_and_where_the_request_is(client):
    f.signed_in(client, Role.DISCLOSURE_OFFICER)
    req = AccessRequest.objects.create(
        reference="SAR-2026-000042",
        kind=RequestKind.RIGHT_OF_ACCESS,
        status=RequestStatus.RECEIVED,
        name="Sam",
        email="sam@example.org",
        incident_at=timezone.now(),
        borough=f.borough(),
        place="Station Road",
        description="stopped",
        received_at=timezone.now(),
    )
    response = client.post(
        f"/disclosure/{req.pk}/", {"action": "close", "reason": "withdrawn by the requester"}
    )
    assert _said(response) == ["Request closed. SAR-2026-000042 is now: closed."]
