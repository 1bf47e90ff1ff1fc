"""The Content-Security-Policy in real Chromium: every role's main pages, and the public ones, run
under the strict policy without a single violation or console error; the pages' own scripts (the
player's bookmarks, the proof of work, Swagger UI) still work."""

import re
from datetime import timedelta

import pytest
from django.core import mail
from django.utils import timezone

from common.roles import Role
from devices.models import Dock, Rank
from evidence.sample_media import make_clip
from requests_portal.deadlines import london_date, right_of_access_due
from requests_portal.models import AccessRequest, RequestKind, RequestStatus
from review.services import case_add_recording, case_create, export_create
from tests import factories as f
from tests.browser import PASSWORD, fill_incident_time, sign_in

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

# Installed in every page before its own scripts: reports each violation to the test.
LISTENER = """
document.addEventListener("securitypolicyviolation", (e) => {
  window.bwvViolation({page: location.pathname + location.search, directive: e.violatedDirective,
                       blocked: e.blockedURI, sample: e.sample, line: e.lineNumber});
});
"""


class Watch:
    """One page per role; every violation, console error, uncaught error and document response
    without the policy is collected here, with the role and page it came from."""

    def __init__(self, browser, live_server):
        self.browser, self.base = browser, live_server.url
        self.violations: list = []
        self.errors: list = []
        self.unprotected: list = []
        self.documents = 0

    def page(self, role: str):
        page = self.browser.new_context().new_page()
        page.expose_binding("bwvViolation", lambda _source, v: self.violations.append((role, v)))
        page.add_init_script(LISTENER)
        page.on("console", lambda m: self._console(role, page, m))
        page.on("pageerror", lambda e: self.errors.append((role, page.url, str(e))))
        page.on("response", lambda r: self._response(r))
        return page

    def _console(self, role, page, message):
        if message.type == "error":
            self.errors.append((role, page.url, message.text))

    def _response(self, response):
        if response.request.resource_type == "document" and response.url.startswith(self.base):
            self.documents += 1
            if not response.headers.get("content-security-policy"):
                self.unprotected.append(response.url)

    def visit(self, page, path: str, selector: str = "main"):
        page.goto(f"{self.base}{path}")
        page.wait_for_selector(selector)
        settle(page)


def wait_until(page, condition: str, timeout_ms: int = 20_000) -> None:
    """Playwright's wait_for_function compiles its predicate with `new Function`, which the policy
    (rightly) refuses; this polls from a function Playwright passes to the page as such."""
    page.evaluate(
        f"""() => new Promise((done, fail) => {{
              const start = performance.now();
              (function poll() {{
                if ({condition}) return done();
                if (performance.now() - start > {timeout_ms}) return fail(new Error("timed out"));
                setTimeout(poll, 50);
              }})();
            }})"""
    )


def settle(page) -> None:
    """Violation events are dispatched as tasks after the fact: let them arrive."""
    page.wait_for_load_state("load")
    page.evaluate("() => new Promise(done => requestAnimationFrame(() => setTimeout(done, 50)))")


def _open_and_play(watch, page, recording, *, bookmark: bool) -> None:
    """The purpose step, then the player: it plays, and the page's script follows it."""
    watch.visit(page, f"/recordings/{recording.pk}/", "#purpose-form")
    page.fill("#purpose", "5201234/26 review of arrest")
    page.click("#purpose-form button[type=submit]")
    page.wait_for_selector("#player")
    wait_until(page, "document.getElementById('player').readyState >= 1")
    page.evaluate(
        "() => { const v = document.getElementById('player'); v.muted = true; v.play(); }"
    )
    wait_until(page, "document.getElementById('player').currentTime > 0.5")
    # recording.js keeps the bookmark time at the player's position: it runs.
    wait_until(page, "parseFloat(document.getElementById('bookmark-at').value) > 0")
    if bookmark:
        page.evaluate("() => document.getElementById('player').pause()")
        page.fill("#bookmark-form input[name=note]", "Door opens")
        page.click("#bookmark-form button[type=submit]")
        page.wait_for_selector("#bookmarks button[data-seek]")
        page.evaluate("() => { document.getElementById('player').currentTime = 0; }")
        page.click("#bookmarks button[data-seek]")
        wait_until(page, "document.getElementById('player').currentTime > 0.4")
    settle(page)


def _mail_link(kind: str) -> str:
    for message in reversed(mail.outbox):
        found = re.search(rf"(https?://\S+/requests/{kind}/[^/\s]+/)", message.body)
        if found:
            return found.group(1)
    raise AssertionError(f"no {kind} link in {len(mail.outbox)} messages")


def test_every_roles_pages_raise_no_csp_violation(live_server, browser_page, settings):
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    settings.SITE_URL = live_server.url
    officer = f.user(Role.OFFICER, username="pc.csp", password=PASSWORD, rank=Rank.CONSTABLE)
    sergeant = f.user(Role.CUSTODY_SERGEANT, username="sgt.csp", password=PASSWORD)
    borough_admin = f.user(Role.BOROUGH_ADMIN, username="admin.csp", password=PASSWORD)
    disclosure = f.user(Role.DISCLOSURE_OFFICER, username="dis.csp", password=PASSWORD)
    sysadmin = f.user(Role.SYSTEM_ADMIN, username="sys.csp", password=PASSWORD)
    cam, _ = f.issued_camera(officer_obj=officer.officer)
    recording = f.ingested_recording(cam=cam, data=make_clip(seconds=6, width=320, height=240))
    dock = Dock.objects.get(pk=recording.dock_id)
    case = case_create(
        crime_reference="5201234/26", title="Robbery", borough=cam.borough, actor=sergeant
    )
    case_add_recording(case=case, recording=recording, actor=sergeant)
    export = export_create(
        actor=sergeant, recordings=[recording], recipient="CPS", purpose="charging", case=case
    )
    now = timezone.now()
    request = AccessRequest.objects.create(
        reference="SAR-2026-000777",
        kind=RequestKind.RIGHT_OF_ACCESS,
        status=RequestStatus.RECEIVED,
        name="Sam",
        email="sam@example.org",
        incident_at=recording.started_at,
        borough=recording.borough,
        place="Station Rd",
        description="stop and search",
        received_at=now,
        clock_started_at=now,
        due_at=right_of_access_due(london_date(now)),
    )
    watch = Watch(browser_page.context.browser, live_server)

    # An officer: their own footage, the pool.
    page = watch.page("officer")
    sign_in(page, live_server, officer)
    watch.visit(page, "/recordings/", "#search")
    _open_and_play(watch, page, recording, bookmark=False)
    watch.visit(page, "/pool/")

    # A custody sergeant: search, play, bookmark, cases, exports, retention, audit, API docs.
    page = watch.page("sergeant")
    sign_in(page, live_server, sergeant, next_path="/recordings/")
    page.wait_for_selector("#search")
    page.fill("#id_camera", cam.serial)
    page.click("#search button[type=submit]")
    page.wait_for_selector("#results")
    settle(page)
    _open_and_play(watch, page, recording, bookmark=True)
    for path in [
        "/cases/",
        f"/cases/{case.pk}/",
        "/exports/",
        f"/exports/{export.pk}/",
        "/retention/",
        f"/audit/recordings/{recording.pk}/",
        f"/audit/cases/{case.pk}/",
    ]:
        watch.visit(page, path)
    watch.visit(page, "/api/docs/", ".swagger-ui .information-container .title")
    page.wait_for_selector(".swagger-ui .opblock")  # the operations, from the schema it fetched

    # A borough admin: the estate dashboard (server-drawn SVG charts) and its lists.
    page = watch.page("borough admin")
    sign_in(page, live_server, borough_admin, next_path="/estate/")
    page.wait_for_selector("svg.chart")
    for path in [
        "/estate/officers/",
        f"/estate/officers/{officer.officer.pk}/",
        "/estate/units/",
        "/estate/cameras/",
        f"/estate/cameras/{cam.pk}/",
        "/estate/docks/",
        f"/estate/docks/{dock.pk}/",
        "/estate/alerts/",
    ]:
        watch.visit(page, path)

    # A disclosure officer: the queue and a request.
    page = watch.page("disclosure officer")
    sign_in(page, live_server, disclosure, next_path="/disclosure/")
    watch.visit(page, "/disclosure/")
    watch.visit(page, f"/disclosure/{request.pk}/", "#candidates")
    watch.visit(page, "/exports/")

    # A system admin: grants, the second-factor reset, audit by user, the admin, the API docs.
    page = watch.page("system admin")
    sign_in(page, live_server, sysadmin)
    for path in [
        "/",
        "/grants/",
        "/accounts/reset-second-factor/",
        f"/audit/users/{sergeant.pk}/",
        "/retention/",
        "/estate/",
    ]:
        watch.visit(page, path)
    watch.visit(page, "/admin/", "#content")
    watch.visit(page, f"/admin/auth/user/{sergeant.pk}/change/", "#user_form")
    watch.visit(page, "/api/docs/", ".swagger-ui .opblock")

    # The public: the form with its proof of work solved in the page, then the status page.
    page = watch.page("public")
    incident = timezone.localtime(now - timedelta(days=2)).replace(second=0, microsecond=0)
    watch.visit(page, "/requests/", "#request-form")
    page.check("#id_kind_0")
    page.fill("#id_name", "Sam Public")
    page.fill("#id_email", "sam@example.org")
    fill_incident_time(page, incident)
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
    settle(page)
    watch.visit(page, _mail_link("verify").removeprefix(live_server.url))
    watch.visit(page, _mail_link("status").removeprefix(live_server.url), "#request-state")

    # The listener is live: an injected inline script is refused and reported.
    before = len(watch.violations)
    page.evaluate(
        "() => { const s = document.createElement('script');"
        " s.textContent = 'window.injected = 1'; document.body.appendChild(s); }"
    )
    settle(page)
    assert page.evaluate("() => window.injected") is None
    injected = watch.violations[before:]
    assert [v["directive"] for _role, v in injected] == ["script-src-elem"], injected
    del watch.violations[before:]
    watch.errors = [e for e in watch.errors if "inline script" not in e[2]]

    assert watch.documents > 40
    assert watch.unprotected == [], watch.unprotected
    assert watch.violations == [], watch.violations
    assert watch.errors == [], watch.errors
