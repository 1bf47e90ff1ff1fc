"""The bulk-flag form sends the browser back to the search it came from: a path of this site only."""

import pytest

from common.roles import Role
from tests import factories as f

pytestmark = pytest.mark.django_db
ELSEWHERE = [
    "https://evil.example/",
    "http://evil.example/recordings/",
    "//evil.example",
    "//evil.example/recordings/",
    "/\\evil.example",
    "\\\\evil.example",
    "https:evil.example",
    "javascript:alert(1)",
    " //evil.example",
]


def test_the_bulk_flag_form_goes_back_only_to_a_path_of_this_site(client):
    sergeant = f.signed_in(client, Role.CUSTODY_SERGEANT)
    for back in ELSEWHERE:
        response = client.post("/recordings/bulk-flag", {"kind": "evidence", "back": back})
        assert response.status_code == 302, back
        assert response["Location"] == "/recordings/", back
    # The search it came from, query and all, is a path of this site: back there.
    cam = f.camera(borough_code="QA")
    recording = f.recording_row(cam=cam)
    back = f"/recordings/?camera={cam.serial}&flagged=no"
    form = {
        "ids": [str(recording.pk)],
        "kind": "evidence",
        "reason": "shows the arrest",
        "crime_reference": "5201234/26",
        "back": back,
    }
    response = client.post("/recordings/bulk-flag", form)
    assert response.status_code == 302 and response["Location"] == back
    assert recording.flags.filter(lifted_at=None, flagged_by=sergeant).exists()
