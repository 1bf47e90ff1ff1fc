from datetime import timedelta

import pytest
from django.utils import timezone

from common.roles import Role
from evidence.models import RecordingState
from retention.models import SweepRun
from tests import factories as f
from tests.html import Page

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
    SweepRun.objects.create(
        started_at=now - timedelta(hours=6),
        finished_at=now,
        status=SweepRun.Status.COMPLETED,
        deleted=1234,
    )


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


@pytest.mark.parametrize(
    "status, shown",
    [
        (SweepRun.Status.ABANDONED, b"Abandoned: its worker stopped"),
        (SweepRun.Status.STORAGE_FAILED, b"Stopped: storage failed"),
    ],
)
def test_a_run_that_did_not_finish_is_shown_plainly(client, estate, status, shown):
    f.signed_in(client, Role.SYSTEM_ADMIN)
    now = timezone.now()
    SweepRun.objects.create(
        started_at=now - timedelta(minutes=5),
        finished_at=now,
        status=status,
        deleted=3,
        released=6,
        message="the media store failed",
    )
    response = client.get(URL)
    notice = Page(response.content).words("last-run-problem")
    assert shown.decode() in notice and "6 given back undeleted" in notice
    assert "the media store failed" in notice
    # The run's row marks its status as a problem, in words and in red.
    row = response.content.split(b'id="runs"')[1].split(b"</tr>")[1]
    assert b'class="govuk-tag govuk-tag--red">' + shown in row


def test_no_problem_is_shown_when_the_last_run_completed(client, estate):
    f.signed_in(client, Role.SYSTEM_ADMIN)
    SweepRun.objects.create(
        started_at=timezone.now() - timedelta(days=2), status=SweepRun.Status.STORAGE_FAILED
    )
    assert b'id="last-run-problem"' not in client.get(URL).content
