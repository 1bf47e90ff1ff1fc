"""Every role's pages, and the public's, in Chromium: no axe violation of any impact (WCAG 2.2 A and
AA, and axe's best practices), no more than 150 KB of JavaScript on any page, and a full-page
screenshot of each under test-artifacts/accessibility/ (desktop 1366 wide; phone 390 wide for the
public pages) for a reviewer to look at. The pages are walked as their users reach them, states
with errors included."""

import hashlib
from datetime import timedelta

import pytest
from django.core import mail
from django.core.cache import cache
from django.utils import timezone

from common.roles import Role
from custody.services import share_create, share_revoke
from devices.models import Dock, Rank
from estate.services import camera_status_change
from evidence.filmstrip import recording_filmstrip_make
from evidence.incidents import Attendance, incident_record
from evidence.models import ClockSuspect
from evidence.sample_media import make_clip
from requests_portal.deadlines import london_date, right_of_access_due
from requests_portal.models import AccessRequest, ReleaseLink, RequestKind, RequestStatus
from requests_portal.services import request_ask_identity
from review.services import (
    case_add_recording,
    case_candidates_offer,
    case_create,
    case_update,
    export_create,
    recording_flag,
)
from tests import factories as f
from tests.a11y import PHONE, Walk
from tests.browser import PASSWORD, fill_incident_time, sign_in
from tests.bwv.test_csp_browser import _mail_link, wait_until
from tests.oidc import PASSWORD as DIRECTORY_PASSWORD
from tests.oidc import TestDirectory

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def world(settings):
    """A Harrow with footage, a case, an export, a flag, a public request, a lost camera, a dock
    and a recording whose camera clock was wrong."""
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    officer = f.user(Role.OFFICER, username="pc.axe", password=PASSWORD, rank=Rank.CONSTABLE)
    sergeant = f.user(Role.CUSTODY_SERGEANT, username="sgt.axe", password=PASSWORD)
    cam, _ = f.issued_camera(officer_obj=officer.officer)
    recording = f.ingested_recording(cam=cam, data=make_clip(seconds=3, width=320, height=240))
    recording_filmstrip_make(recording_id=recording.pk)
    recording_flag(
        recording=recording,
        kind="evidence",
        actor=sergeant,
        reason="assault",
        crime_reference="5201234/26",
    )
    case = case_create(
        crime_reference="5201234/26",
        title="Robbery at Station Road",
        borough=cam.borough,
        actor=sergeant,
    )
    case_add_recording(case=case, recording=recording, actor=sergeant)
    # A dispatch incident the officer attended (it tags the recording), and a second clip of
    # theirs offered to the case, which they are the officer in the case of.
    incident, _created, _tags = incident_record(
        reference="CAD 1234/25NOV26",
        borough=cam.borough,
        opened_at=recording.started_at - timedelta(minutes=20),
        closed_at=recording.started_at + timedelta(hours=1),
        location="Station Road, Harrow",
        grade="I",
        attendances=[
            Attendance(
                officer.officer,
                recording.started_at - timedelta(minutes=10),
                recording.started_at + timedelta(minutes=40),
            )
        ],
        actor="system:test",
    )
    case_update(case=case, actor=sergeant, title=case.title, officer_in_case=officer.officer)
    case_candidates_offer(
        case=case,
        recordings=[f.recording_row(cam=cam, officer=officer.officer)],
        actor=sergeant,
        reason=f"recorded at incident {incident.reference}",
    )
    export = export_create(
        actor=sergeant,
        recordings=[recording],
        recipient="CPS London North",
        purpose="charging file",
        case=case,
    )
    lost, _ = f.issued_camera()
    admin = f.user(Role.BOROUGH_ADMIN, username="admin.axe", password=PASSWORD)
    camera_status_change(camera=lost, status="lost", actor=admin, reason="dropped in a chase")
    suspect = f.recording_row(
        cam=cam,
        started=timezone.now().replace(year=1970),
        # As ingest sets it for a suspect clock: retention counts from arrival, not from 1970.
        delete_after=timezone.now() + timedelta(days=31),
        clock_suspect=True,
        clock_suspect_reason=ClockSuspect.BEFORE_2000,
    )
    now = timezone.now()
    request = AccessRequest.objects.create(
        reference="SAR-2026-000900",
        kind=RequestKind.RIGHT_OF_ACCESS,
        status=RequestStatus.RECEIVED,
        name="Sam Public",
        email="sam@example.org",
        incident_at=recording.started_at,
        borough=recording.borough,
        place="Station Road",
        description="I was stopped and searched.",
        appearance="Red coat",
        received_at=now,
        clock_started_at=now,
        due_at=right_of_access_due(london_date(now)),
    )
    return {
        "officer": officer,
        "sergeant": sergeant,
        "admin": admin,
        "recording": recording,
        "case": case,
        "export": export,
        "camera": cam,
        "dock": Dock.objects.get(pk=recording.dock_id),
        "suspect": suspect,
        "request": request,
        "incident": incident,
    }


def _assert_clean(walk: Walk) -> None:
    assert walk.checked, "no page was checked"
    assert walk.problems == [], "\n".join(map(str, walk.problems))


def _open_recording(walk: Walk, recording) -> None:
    page = walk.page
    walk.visit(f"/recordings/{recording.pk}/", "recording-purpose")
    page.click("#purpose-form button[type=submit]")  # no purpose: the error state
    walk.check("recording-purpose-error")
    page.fill("#purpose", "5201234/26 review")
    page.click("#purpose-form button[type=submit]")
    page.wait_for_selector("#player")
    walk.check("recording")
    # Pointing at the timeline shows the filmstrip's frame over the page.
    page.wait_for_selector(".bwv-player--ready")
    page.hover(".bwv-player__seek")
    page.wait_for_selector(".bwv-filmstrip:not([hidden])")
    walk.check("recording-filmstrip")


def test_sign_in_pages_have_no_accessibility_problem(live_server, browser_page, world):
    walk = Walk(browser_page, live_server.url, "sign-in")
    page = browser_page
    walk.visit("/accounts/login/", "sign-in")
    page.fill("#id_username", "pc.axe")
    page.fill("#id_password", "wrong password")
    page.click("#login-form button[type=submit]")
    walk.check("sign-in-error")
    page.fill("#id_password", PASSWORD)
    page.click("#login-form button[type=submit]")
    page.wait_for_selector("#totp-secret")
    walk.check("authenticator-set-up")
    page.fill("#id_token", "000000")
    page.click("#otp-form button[type=submit]")
    walk.check("authenticator-set-up-error")
    _assert_clean(walk)


def test_directory_sign_in_pages_have_no_accessibility_problem(live_server, browser_page, settings):
    """With directory sign-in on: the sign-in page (its password form folded and open, with an
    error) and the page that refuses someone the directory gives no role, desktop and phone."""
    directory = TestDirectory()
    directory.switch_on(settings, live_server.url)
    f.force()
    walk = Walk(browser_page, live_server.url, "directory-sign-in")
    page = browser_page
    walk.visit("/accounts/login/", "sign-in")
    page.click("#password-sign-in summary")
    page.fill("#id_username", "nobody")
    page.fill("#id_password", "wrong password")
    page.click("#login-form button[type=submit]")
    walk.check("sign-in-password-error")
    # The refusal, on a desktop and then on a phone (a browser of its own: no provider session).
    problems = []
    for viewport in (None, PHONE):
        if viewport:
            problems += walk.problems
            page = browser_page.context.browser.new_page(bypass_csp=True)
            walk = Walk(page, live_server.url, "directory-sign-in", viewport=viewport)
        page.goto(f"{live_server.url}/accounts/login/")
        page.click("#directory-sign-in")
        page.wait_for_selector("#op-login-form")
        page.fill("#op-login", directory.account(groups=["canteen-staff"]))
        page.fill("#op-password", DIRECTORY_PASSWORD)
        page.click("#op-login-submit")
        page.wait_for_selector("#directory-refusal")
        walk.check("refused")
    walk.problems += problems
    _assert_clean(walk)


def test_an_officers_pages_have_no_accessibility_problem(live_server, browser_page, world):
    sign_in(browser_page, live_server, world["officer"])
    walk = Walk(browser_page, live_server.url, "officer")
    walk.visit("/")
    walk.visit("/recordings/")
    _open_recording(walk, world["recording"])
    walk.visit("/work/", "work-queue")
    walk.page.click("#candidates details summary")  # the "not evidence" form
    walk.check("work-queue-dismiss")
    walk.visit(f"/incidents/{world['incident'].pk}/", "incident")
    walk.visit("/pool/")
    walk.visit("/no-such-page/", "not-found", status=404)
    walk.page.click("#sign-out")
    walk.check("signed-out")
    _assert_clean(walk)


def test_a_sergeants_pages_have_no_accessibility_problem(live_server, browser_page, world):
    sign_in(browser_page, live_server, world["sergeant"])
    page = browser_page
    walk = Walk(page, live_server.url, "sergeant")
    case, export, recording = world["case"], world["export"], world["recording"]
    walk.visit("/")
    walk.visit("/recordings/")
    walk.visit("/recordings/?started_from=yesterday", "recordings-filter-error")
    _open_recording(walk, recording)
    page.click("#flags summary")  # the lift form, behind its warning
    walk.check("recording-lift-flag")
    walk.visit("/cases/")
    walk.visit(f"/cases/{case.pk}/", "case")
    walk.visit(f"/incidents/{world['incident'].pk}/", "incident")
    walk.visit(f"/cases/{case.pk}/", "case")
    page.click("#case-close-form button[type=submit]")  # no reason: the error state
    walk.check("case-close-error")
    walk.visit("/exports/")
    walk.visit(f"/exports/new?case={case.pk}", "export-new")
    walk.visit(f"/exports/{export.pk}/", "export")
    page.fill("#email", "prosecutor@cps.example")
    page.click("#share-form button[type=submit]")
    page.wait_for_selector("#share-link")
    walk.check("export-link-made")
    walk.visit("/retention/")
    walk.visit(f"/audit/recordings/{recording.pk}/", "audit-recording")
    walk.visit(f"/audit/cases/{case.pk}/", "audit-case")
    _assert_clean(walk)


def test_a_borough_admins_pages_have_no_accessibility_problem(
    live_server, browser_page, world, tmp_path
):
    sign_in(browser_page, live_server, world["admin"])
    page = browser_page
    walk = Walk(page, live_server.url, "borough-admin")
    walk.visit("/", "home")
    walk.visit("/estate/", "dashboard")
    walk.visit(f"/estate/officers/{world['officer'].officer.pk}/", "officer")
    walk.visit("/estate/officers/", "officers")
    bad = tmp_path / "officers.csv"
    bad.write_text("collar_number,first_name,last_name,rank\nQA2002,Ben,Smith,general\n")
    page.set_input_files("#officers-file", str(bad))
    page.click("#import-officers button[type=submit]")
    walk.check("officers-import-refused")
    walk.visit("/estate/cameras/", "cameras")
    walk.visit(f"/estate/cameras/{world['camera'].pk}/", "camera")
    walk.visit("/estate/units/", "units")
    walk.visit("/estate/docks/", "docks")
    page.fill("#station", "Harrow police station")
    page.fill("#name", "Dock 2")
    page.click("#register-dock button[type=submit]")
    page.wait_for_selector("#dock-key")
    walk.check("dock-registered")
    walk.visit(f"/estate/docks/{world['dock'].pk}/", "dock")
    walk.visit("/estate/alerts/", "lost-cameras")
    walk.visit("/estate/clock/", "clock-suspect")
    walk.visit(f"/estate/clock/{world['suspect'].pk}/", "clock-correct")
    page.click("#clock-form button[type=submit]")
    walk.check("clock-correct-error")
    _assert_clean(walk)


def test_a_disclosure_officers_pages_have_no_accessibility_problem(
    live_server, browser_page, world
):
    officer = f.user(Role.DISCLOSURE_OFFICER, username="dis.axe", password=PASSWORD)
    sign_in(browser_page, live_server, officer)
    page = browser_page
    walk = Walk(page, live_server.url, "disclosure-officer")
    walk.visit("/", "home")
    walk.visit("/disclosure/", "queue")
    walk.visit(f"/disclosure/{world['request'].pk}/", "request")
    page.click("#candidates form:has(input[value=attach]) button[type=submit]")
    page.wait_for_selector("#footage a.redact-link")
    walk.check("request-footage-attached")
    page.click("#footage .bwv-play-form button")
    page.wait_for_selector(".bwv-player--ready")
    walk.check("request-footage-playing")
    page.click("#footage a.redact-link")
    page.wait_for_selector(".bwv-redact--ready")
    walk.check("redact")
    # No box drawn: the copy is refused, with the error at the JSON fields, shown again.
    page.click("#redact-form button[type=submit]")
    walk.check("redact-error")
    walk.visit("/exports/")
    _assert_clean(walk)


def test_a_system_admins_pages_have_no_accessibility_problem(live_server, browser_page, world):
    admin = f.user(Role.SYSTEM_ADMIN, username="sys.axe", password=PASSWORD)
    sign_in(browser_page, live_server, admin)
    page = browser_page
    walk = Walk(page, live_server.url, "system-admin")
    walk.visit("/")
    walk.visit("/grants/", "grants")
    walk.visit("/webhooks/", "webhook-deliveries")
    walk.visit("/accounts/reset-second-factor/", "second-factor-reset")
    page.click("#reset-form button[type=submit]")
    walk.check("second-factor-reset-error")
    walk.visit(f"/audit/users/{world['sergeant'].pk}/", "audit-user")
    walk.visit("/retention/")
    walk.visit("/estate/", "estate")
    walk.visit("/disclosure/", "queue")
    _assert_clean(walk)


@pytest.mark.parametrize("viewport", [PHONE, None], ids=["phone", "desktop"])
def test_the_public_pages_have_no_accessibility_problem(
    live_server, browser_page, world, settings, viewport
):
    settings.SITE_URL = live_server.url
    cache.clear()  # the limits per address count earlier tests' requests from this machine too
    page = browser_page
    walk = Walk(page, live_server.url, "public", **({"viewport": viewport} if viewport else {}))
    walk.visit("/requests/", "request-form")
    page.click("#id_kind_0")
    wait_until(
        page, "!document.querySelector('#request-form button[type=submit]').disabled", 60_000
    )
    page.click("#request-form button[type=submit]")
    page.wait_for_selector(".govuk-error-summary")
    walk.check("request-form-errors")
    page.fill("#id_name", "Sam Public")
    page.fill("#id_email", "sam.public@example.org")
    fill_incident_time(page, timezone.localtime(timezone.now() - timedelta(days=2)))
    page.select_option("#id_borough", "QA")
    page.fill("#id_place", "Station Road, Harrow")
    page.fill("#id_description", "I was stopped and searched outside the station.")
    page.fill("#id_appearance", "Red coat, black hat")
    page.check("#id_declaration")
    wait_until(
        page, "!document.querySelector('#request-form button[type=submit]').disabled", 60_000
    )
    page.click("#request-form button[type=submit]")
    page.wait_for_selector("#reference")
    walk.check("request-sent")
    walk.visit(_mail_link("verify").removeprefix(live_server.url), "request-verified")
    status = _mail_link("status").removeprefix(live_server.url)
    walk.visit(status, "request-status")
    request_ask_identity(
        req=AccessRequest.objects.get(email="sam.public@example.org"),
        actor=world["sergeant"],
        note="A passport or a driving licence",
    )
    walk.visit(status, "request-status-identity")
    page.click("#identity-form button[type=submit]")  # no file chosen: the error state
    walk.check("request-status-identity-error")
    link, token = share_create(
        export=world["export"],
        actor=world["sergeant"],
        recipient_email="prosecutor@cps.example",
        days=7,
    )
    walk.visit(f"/share/{token}/", "share")
    share_revoke(link=link, actor=world["sergeant"], reason="sent to the wrong address")
    walk.visit(f"/share/{token}/", "share-withdrawn", status=410)
    # The page an e-mailed release link opens (made here as the approval would make it).
    ReleaseLink.objects.create(
        request=world["request"],
        token_hash=hashlib.sha256(b"release-for-the-walk").hexdigest(),
        created_at=timezone.now(),
        expires_at=timezone.now() + timedelta(days=14),
    )
    walk.visit("/requests/release/release-for-the-walk/", "release")
    walk.visit("/requests/verify/not-a-token/", "verify-link-unknown", status=404)
    walk.visit("/requests/no-such-page/", "not-found", status=404)
    mail.outbox.clear()
    _assert_clean(walk)


def test_the_check_reports_what_is_wrong_and_the_weight(live_server, browser_page):
    """The walk's checks can fail: a page with an unlabelled field, an image without a text
    alternative and a table header with nothing in it gives a violation of each rule."""
    page = browser_page
    walk = Walk(page, live_server.url, "self-check")
    page.goto(f"{live_server.url}/requests/")
    page.evaluate(
        """() => { document.querySelector("main").insertAdjacentHTML("beforeend",
             '<input name="x"><img src="/favicon.ico"><table><tr><th></th><td>1</td></tr></table>'); }"""
    )
    walk.check("broken")
    rules = {problem[2]["rule"] for problem in walk.problems}
    assert {"label", "image-alt", "empty-table-header"} <= rules, walk.problems
