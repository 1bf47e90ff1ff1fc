"""A redaction job's progress in real Chromium: the request page polls the job (the script is a
static file; the strict CSP allows no inline script) and, once it is made, shows the faces the
detector still found in the copy."""

import os

import pytest
from django.utils import timezone

from common.roles import Role
from requests_portal.models import RedactionJob, RequestStatus
from requests_portal.services import footage_attach
from tests import factories as f
from tests.browser import PASSWORD, sign_in
from tests.requests_portal.test_disclosure import received_request

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_the_request_page_follows_the_jobs_progress_then_lists_the_faces_found(
    live_server, browser_page
):
    officer = f.user(Role.DISCLOSURE_OFFICER, username="disclosure.one", password=PASSWORD)
    recording = f.recording_row()
    req = received_request(recording)
    type(req).objects.filter(pk=req.pk).update(status=RequestStatus.IN_PROGRESS)
    footage = footage_attach(req=req, recording=recording, actor=officer)
    job = RedactionJob.objects.create(
        footage=footage,
        spec={"boxes": [], "mutes": []},
        status="rendering",
        progress=40,
        requested_by=officer,
        requested_at=timezone.now(),
        purpose="x",
    )
    # A context of its own, without the fixture's CSP bypass: the polling must work under the
    # site's strict policy.
    page = browser_page.context.browser.new_context().new_page()
    page.set_viewport_size({"width": 1366, "height": 900})
    errors = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    sign_in(page, live_server, officer, next_path=f"/disclosure/{req.pk}/")
    page.wait_for_selector("[data-redaction-job] progress")
    assert page.locator("[data-job-percent]").inner_text() == "40%"
    RedactionJob.objects.filter(pk=job.pk).update(progress=75)
    page.wait_for_selector("[data-job-percent]:text-is('75%')")  # polled, not reloaded
    if os.environ.get("BWV_SCREENSHOTS"):
        page.screenshot(path=f"{os.environ['BWV_SCREENSHOTS']}/job-progress.png", full_page=True)
    RedactionJob.objects.filter(pk=job.pk).update(
        status="done", progress=100, faces_found=[{"t": 1.0, "x": 100, "y": 40, "w": 90, "h": 90}]
    )
    # Finished: the page loads again by itself and shows what the detector found.
    page.wait_for_selector("text=Faces found in the redacted copy", timeout=15000)
    assert page.locator("[data-redaction-job] progress").count() == 0
    assert "1.0 s" in page.locator("[data-faces-found]").inner_text()
    if os.environ.get("BWV_SCREENSHOTS"):
        page.screenshot(path=f"{os.environ['BWV_SCREENSHOTS']}/job-done.png", full_page=True)
    assert not [e for e in errors if "Content Security Policy" in e], errors
