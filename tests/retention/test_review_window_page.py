"""The retention page shows what the minimum review window is keeping, scoped like the rest."""

from datetime import timedelta

import pytest
from django.utils import timezone

from common.roles import Role
from tests import factories as f

pytestmark = pytest.mark.django_db
URL = "/retention/"


def _late(cam, *, days_ago_started: int = 30, arrived_hours_ago: int = 1, **kwargs):
    """A clip that reached the server long after it was recorded: kept 7 days from arrival."""
    now = timezone.now()
    arrived = now - timedelta(hours=arrived_hours_ago)
    return f.recording_row(
        cam=cam,
        started=now - timedelta(days=days_ago_started),
        available_at=arrived,
        delete_after=arrived + timedelta(days=7),
        review_window_extended=True,
        **kwargs,
    )


@pytest.fixture
def estate():
    harrow, camden = f.camera(borough_code="QA"), f.camera(borough_code="EK")
    kept = [_late(harrow, arrived_hours_ago=h) for h in (1, 2, 3)]
    # Past its extended date: the window no longer keeps it (the sweep's business now).
    _late(harrow, arrived_hours_ago=8 * 24)
    f.recording_row(cam=harrow)  # an ordinary clip, not extended
    _late(camden)
    return {"harrow": harrow, "camden": camden, "kept": kept}


def test_a_sergeant_sees_what_the_window_keeps_in_their_borough_soonest_first(client, estate):
    f.signed_in(client, Role.CUSTODY_SERGEANT, borough_code="QA")
    response = client.get(URL)
    assert response.status_code == 200
    assert response.context["window_count"] == 3
    assert [r.pk for r in response.context["window_next"]] == [r.pk for r in estate["kept"][::-1]]
    page = response.content.decode()
    assert 'id="window"' in page and estate["harrow"].serial in page
    assert estate["camden"].serial not in page
    assert "kept at least 7 days after it reached the server" in page


def test_another_borough_sees_only_its_own(client, estate):
    f.signed_in(client, Role.CUSTODY_SERGEANT, borough_code="EK")
    response = client.get(URL)
    assert response.context["window_count"] == 1
    assert estate["harrow"].serial not in response.content.decode()


def test_a_system_admin_sees_every_borough(client, estate):
    f.signed_in(client, Role.SYSTEM_ADMIN)
    assert client.get(URL).context["window_count"] == 4


def test_the_list_is_bounded_and_the_count_is_not(client, estate):
    f.signed_in(client, Role.CUSTODY_SERGEANT, borough_code="QA")
    for _ in range(25):
        _late(estate["harrow"])
    ctx = client.get(URL).context
    assert ctx["window_count"] == 28 and len(ctx["window_next"]) == 20


def test_the_page_says_when_the_window_is_switched_off(client, estate, settings):
    settings.BWV_MIN_REVIEW_DAYS = 0
    f.signed_in(client, Role.CUSTODY_SERGEANT, borough_code="QA")
    assert "The review window is switched off" in client.get(URL).content.decode()
