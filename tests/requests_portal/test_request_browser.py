"""A public access request from start to finish in real Chromium: the requester asks and verifies,
two disclosure officers process it, the requester downloads a redacted copy that plays."""

import io
import re
import zipfile
from datetime import timedelta
from pathlib import Path

import av
import numpy as np
import pytest
from django.core import mail
from django.utils import timezone

from bwv.celery import app
from common.roles import Role
from evidence.sample_media import make_clip
from requests_portal.models import AccessRequest, RequestStatus
from tests import factories as f
from tests.browser import PASSWORD, fill_incident_time, sign_in

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def _frames(data: bytes) -> list[np.ndarray]:
    with av.open(io.BytesIO(data)) as container:
        return [fr.to_ndarray(format="rgb24").astype(int) for fr in container.decode(video=0)]


def _link(kind: str) -> str:
    for message in reversed(mail.outbox):
        found = re.search(rf"(https?://\S+/requests/{kind}/[^/\s]+/)", message.body)
        if found:
            return found.group(1)
    raise AssertionError(f"no {kind} link in {len(mail.outbox)} messages")


@pytest.fixture
def eager_tasks():
    """Queued tasks run at once, after the commit that queues them (the redacted copy is made as
    the page's POST ends, as a worker would make it a moment later)."""
    app.conf.task_always_eager = True
    yield
    app.conf.task_always_eager = False


def test_a_request_from_the_public_to_a_redacted_download(
    live_server, browser_page, settings, eager_tasks
):
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    settings.SITE_URL = live_server.url
    page = browser_page
    incident = timezone.localtime(timezone.now() - timedelta(days=2)).replace(
        second=0, microsecond=0
    )
    clip = make_clip(seconds=3, width=320, height=240, crf=18)
    cam, _officer = f.issued_camera(borough_code="QA")
    recording = f.ingested_recording(cam=cam, data=clip, start=incident + timedelta(minutes=10))
    first = f.user(Role.DISCLOSURE_OFFICER, username="disclosure.one", password=PASSWORD)
    second = f.user(Role.DISCLOSURE_OFFICER, username="disclosure.two", password=PASSWORD)

    # The requester fills in the form; the page's proof of work runs, then the form is sent.
    page.goto(f"{live_server.url}/requests/")
    page.check("#id_kind_0")
    page.fill("#id_name", "Sam Public")
    page.fill("#id_email", "sam@example.org")
    fill_incident_time(page, incident)
    page.select_option("#id_borough", "QA")
    page.fill("#id_place", "Station Road, Harrow")
    page.fill("#id_description", "I was stopped and searched outside the station.")
    page.fill("#id_appearance", "Red coat, black hat")
    page.check("#id_declaration")
    page.wait_for_function(
        "!document.querySelector('#request-form button[type=submit]').disabled", timeout=60_000
    )
    page.click("#request-form button[type=submit]")
    page.wait_for_selector("#reference")
    reference = page.inner_text("#reference")

    # The e-mail's link verifies the address; the next e-mail holds the private status link.
    page.goto(_link("verify"))
    assert reference in page.inner_text("main")
    page.goto(_link("status"))
    assert "Received" in page.inner_text("#request-state")
    assert "preserved" not in page.inner_text("#steps")  # internal steps stay internal
    recording.refresh_from_db()
    assert recording.held

    # The first disclosure officer attaches the footage, redacts a box, decides.
    context = page.context.browser.new_context()
    staff = context.new_page()
    sign_in(staff, live_server, first, next_path="/disclosure/")
    staff.click(f"text={reference}")
    staff.click("#candidates form:has(input[value=attach]) button[type=submit]")
    staff.click("a.redact-link")
    staff.fill(
        "#boxes", '[{"start": 0, "end": 10, "x": 40, "y": 40, "w": 96, "h": 64, "mode": "black"}]'
    )
    staff.click("#redact-form button[type=submit]")
    staff.wait_for_selector("#footage a[href*='copy=']")
    staff.select_option("#decision", "partial")
    staff.fill("#reasons", "Other people are in the footage.")
    staff.fill("#exemptions", "s.45(4)(e) protecting the rights of others")
    staff.click("#decide-form button[type=submit]")
    staff.wait_for_selector("#approve-form")
    context.close()

    # A second officer approves; the requester is sent the download link.
    context = page.context.browser.new_context()
    approver = context.new_page()
    sign_in(approver, live_server, second, next_path="/disclosure/")
    approver.click(f"text={reference}")
    approver.click("#approve-form button[type=submit]")
    approver.wait_for_selector("text=Released")
    context.close()
    assert AccessRequest.objects.get(reference=reference).status == RequestStatus.RELEASED

    # The requester downloads the redacted copy from the e-mailed link.
    # The link opens a page that says what the download is and until when it works.
    page.goto(_link("release"))
    assert "ZIP file" in page.inner_text("#release-details")
    assert "The link works until" in page.inner_text("#release-details")
    with page.expect_download() as download_info:
        page.click("#download")
    archive = Path(download_info.value.path()).read_bytes()
    with zipfile.ZipFile(io.BytesIO(archive)) as zf:
        (name,) = zf.namelist()
        redacted = zf.read(name)
    assert name.endswith("-redacted.mp4")
    before, after = _frames(clip), _frames(redacted)
    assert len(after) == len(before) > 0  # it plays, every frame
    inside = (slice(40, 104), slice(40, 136))
    for a, b in zip(before, after, strict=True):
        assert b[inside].mean() < 4 < a[inside].mean()
        mask = np.ones(a.shape[:2], dtype=bool)
        mask[32:112, 32:144] = False
        assert np.abs(a[mask] - b[mask]).mean() < 3.0
    ARTIFACTS.mkdir(exist_ok=True)
    page.goto(_link("status"))
    page.screenshot(path=str(ARTIFACTS / "request-released.png"), full_page=True)
    assert "Footage released to you" in page.inner_text("#steps")
