"""A borough admin's work in real Chromium: issuing, an import that is refused, the dashboard."""

from pathlib import Path

import pytest
from django.utils import timezone

from common.roles import Role
from devices.models import CameraAssignment, Officer
from tests import factories as f
from tests.browser import PASSWORD, sign_in

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_an_admin_issues_a_camera_and_the_officers_next_recording_carries_their_name(
    live_server, browser_page
):
    page = browser_page
    admin = f.user(Role.BOROUGH_ADMIN, username="admin.harrow", password=PASSWORD)
    cam = f.camera(borough_code="QA")
    officer = f.officer(borough_code="QA")
    sign_in(page, live_server, admin, next_path="/estate/cameras/")

    page.wait_for_selector("#cameras")
    page.fill("#q", cam.serial)
    page.click("#camera-filters button[type=submit]")
    page.click(f"a[href='/estate/cameras/{cam.pk}/']")
    page.fill("#collar", officer.collar_number)
    page.click("#issue-form button[type=submit]")
    page.wait_for_selector("#camera-status")
    assert officer.display_name in page.inner_text("#camera-status")
    assert CameraAssignment.objects.get(camera=cam, returned_at__isnull=True).officer == officer

    # The officer records and docks: the clip carries their name, on the admin's search page too.
    recording = f.ingested_recording(cam=cam, start=timezone.now())
    assert recording.officer == officer
    page.goto(f"{live_server.url}/recordings/?camera={cam.serial}")
    page.wait_for_selector("#results")
    assert officer.display_name in page.inner_text("#results")


def test_an_officer_csv_with_one_bad_row_changes_nothing_and_shows_the_row(
    live_server, browser_page, tmp_path
):
    page = browser_page
    admin = f.user(Role.BOROUGH_ADMIN, username="admin.import", password=PASSWORD)
    before = Officer.objects.count()
    csv_file = tmp_path / "officers.csv"
    csv_file.write_text(
        "collar_number,first_name,last_name,rank\n"
        "QA2001,Amy,Jones,pc\n"
        "QA2002,Ben,Smith,general\n"
        "QA2003,Cat,Brown,pcso\n"
    )
    sign_in(page, live_server, admin, next_path="/estate/officers/")
    page.wait_for_selector("#import-officers")
    page.set_input_files("#officers-file", str(csv_file))
    page.click("#import-officers button[type=submit]")
    page.wait_for_selector("#import-report")
    report = page.inner_text("#import-report")
    assert "Nothing was changed" in report
    assert "3" in report and "rank 'general'" in report
    assert "QA2001" not in page.inner_text("#officers")
    assert Officer.objects.count() == before


def test_the_dashboard_renders_its_charts(live_server, browser_page):
    page = browser_page
    admin = f.user(Role.BOROUGH_ADMIN, username="admin.dash", password=PASSWORD)
    for _ in range(4):
        f.issued_camera(borough_code="QA")
    f.recording_row(held=True)
    f.force(camera_target=22000)  # data, as a migration sets it (tests between may empty it)
    sign_in(page, live_server, admin, next_path="/estate/")
    page.wait_for_selector("svg#chart-rollout")
    bars = page.eval_on_selector_all(
        "svg#chart-rollout rect.bar", "els => els.map(e => e.getBoundingClientRect().width)"
    )
    assert bars and max(bars) > 1  # drawn: 4 of 270 is a short bar, but a visible one
    assert page.is_visible("svg#chart-uploads") and page.is_visible("svg#chart-storage")
    assert "Target: 270" in page.text_content("svg#chart-rollout")
    assert page.inner_text("#total-issued") == "4 of 270"
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "estate-dashboard.png"), full_page=True)
    assert (ARTIFACTS / "estate-dashboard.png").stat().st_size > 10_000
