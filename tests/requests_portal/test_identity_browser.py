"""Proof of identity in real Chromium: the requester uploads it on the status page, the disclosure
officer downloads it from the request page (the same bytes, as a file), records the check, and
the page then says it was deleted."""

import hashlib
import os
import secrets
from pathlib import Path

import pytest
from django.utils import timezone

from common.roles import Role
from custody.models import AuditEvent
from requests_portal.deadlines import london_date, right_of_access_due
from requests_portal.models import AccessRequest, RequestKind, RequestStatus
from tests import factories as f
from tests.browser import PASSWORD, sign_in

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_the_officer_downloads_the_uploaded_proof_then_it_is_deleted(
    live_server, browser_page, tmp_path, settings
):
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    now = timezone.now()
    token = secrets.token_urlsafe(16)
    req = AccessRequest.objects.create(
        reference="SAR-2026-000042",
        kind=RequestKind.RIGHT_OF_ACCESS,
        status=RequestStatus.AWAITING_ID,
        name="Sam Public",
        email="sam@example.org",
        incident_at=now,
        borough=f.borough("QA"),
        place="Station Road",
        description="stop and search",
        received_at=now,
        clock_started_at=now,
        due_at=right_of_access_due(london_date(now)),
        id_requested_at=now,
        status_token_hash=hashlib.sha256(token.encode()).hexdigest(),
    )
    officer = f.user(Role.DISCLOSURE_OFFICER, username="disclosure.one", password=PASSWORD)
    proof = b"%PDF-1.7\n" + os.urandom(600_000)
    (tmp_path / "passport.pdf").write_bytes(proof)

    page = browser_page
    page.goto(f"{live_server.url}/requests/status/{token}/")
    page.set_input_files("#identity", str(tmp_path / "passport.pdf"))
    page.click("#identity-form button[type=submit]")
    page.wait_for_selector("text=Proof of identity received")

    context = page.context.browser.new_context(accept_downloads=True)
    staff = context.new_page()
    sign_in(staff, live_server, officer, next_path=f"/disclosure/{req.pk}/")
    staff.wait_for_selector("#identity-documents")
    with staff.expect_download() as download_info:
        staff.click("#identity-documents a")
    download = download_info.value
    assert download.suggested_filename.startswith(f"{req.reference}-identity-")
    assert download.suggested_filename.endswith(".pdf")
    assert Path(download.path()).read_bytes() == proof
    assert AuditEvent.objects.filter(action="identity_document.viewed").count() == 1

    staff.click("#identity-check button[type=submit]")
    staff.wait_for_selector("text=Proof of identity checked and deleted")
    row = staff.inner_text("#identity-documents")
    assert "after the check" in row and staff.locator("#identity-documents a").count() == 0
    context.close()
