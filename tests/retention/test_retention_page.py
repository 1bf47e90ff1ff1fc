from datetime import timedelta

import pytest
from django.utils import timezone

from bwv.roles import Role
from evidence.models import RecordingState
from retention.models import SweepRun
from tests import factories as f

pytestmark = pytest.mark.django_db
URL = "/retention/"


@pytest.fixture
def estate():
    now = timezone.now()
    harrow_cam, camden_cam = f.camera(borough_code="QA"), f.camera(borough_code="EK")
    # Harrow: two due in three days, one overdue (a compliance failure), one held past its date.
    for _ in range(2):
        f.recording_row(cam=harrow_cam, started=now - timedelta(days=28))
    f.recording_row(cam=harrow_cam, started=now - timedelta(days=34))
    f.recording_row(cam=harrow_cam, started=now - timedelta(days=60), held=True)
    # Camden: one due tomorrow.
    f.recording_row(cam=camden_cam, started=now - timedelta(days=30))
    SweepRun.objects.create(started_at=now - timedelta(hours=6), finished_at=now,
                            status=SweepRun.Status.COMPLETED, deleted=1234)  # fmt: skip


def test_anonymous_is_sent_to_sign_in(client, estate):
    response = client.get(URL)
    assert response.status_code == 302 and "/accounts/login/" in response["Location"]


def test_an_officer_gets_404(client, estate):
    f.signed_in(client, Role.OFFICER)
    assert client.get(URL).status_code == 404


def test_a_harrow_sergeant_sees_harrow_only(client, estate):
    f.signed_in(client, Role.CUSTODY_SERGEANT)
    response = client.get(URL)
    assert response.status_code == 200
    ctx = response.context
    assert ctx["overdue"] == 1
    assert sum(row["count"] for row in ctx["due"]) == 2
    assert ctx["stored"] == 4 and ctx["held"] == 1
    assert b"1,234" in response.content  # the last run's deletions


def test_a_camden_sergeant_sees_nothing_of_harrow(client, estate):
    f.signed_in(client, Role.CUSTODY_SERGEANT, borough_code="EK")
    ctx = client.get(URL).context
    assert ctx["overdue"] == 0 and ctx["stored"] == 1
    assert sum(row["count"] for row in ctx["due"]) == 1


def test_a_system_admin_sees_every_borough(client, estate):
    f.signed_in(client, Role.SYSTEM_ADMIN)
    ctx = client.get(URL).context
    assert ctx["stored"] == 5 and ctx["overdue"] == 1


def test_a_claimed_but_unfinished_deletion_counts_as_overdue(client, estate):
    f.signed_in(client, Role.SYSTEM_ADMIN)
    f.recording_row(started=timezone.now() - timedelta(days=40), state=RecordingState.DELETING)
    assert client.get(URL).context["overdue"] == 2


def test_the_page_costs_the_same_queries_however_many_runs(
    client, estate, django_assert_max_num_queries
):
    f.signed_in(client, Role.SYSTEM_ADMIN)
    client.get(URL)
    for i in range(30):
        SweepRun.objects.create(started_at=timezone.now() - timedelta(days=i + 1))
    with django_assert_max_num_queries(14):
        assert client.get(URL).status_code == 200
