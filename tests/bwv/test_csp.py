"""The Content-Security-Policy: on every response, strict, and the pages need nothing it forbids.

The Chromium test (test_csp_browser.py) shows that the pages raise no violation in a browser; this
one checks the header on every kind of response and reads the HTML of the pages for anything inline.
"""

from html.parser import HTMLParser

import pytest
from django.test import Client
from django.utils import timezone

from common.roles import Role
from requests_portal.deadlines import london_date, right_of_access_due
from requests_portal.models import AccessRequest, RequestKind, RequestStatus
from review.services import case_add_recording, case_create, export_create
from tests import factories as f

pytestmark = pytest.mark.django_db
PASSWORD = "correct-horse-battery-9"

REQUIRED = {
    "default-src": {"'self'"},
    "script-src": {"'self'"},
    "style-src": {"'self'"},
    "frame-ancestors": {"'none'"},
    "form-action": {"'self'"},
    "base-uri": {"'none'"},
    "object-src": {"'none'"},
}


def policy(response) -> dict[str, set[str]]:
    header = response.headers.get("Content-Security-Policy")
    assert header, f"no Content-Security-Policy on {response.request['PATH_INFO']}"
    directives = {}
    for part in header.split(";"):
        name, *values = part.split()
        directives[name] = set(values)
    return directives


def assert_strict(response) -> None:
    directives = policy(response)
    for name, values in REQUIRED.items():
        assert directives.get(name) == values, (name, directives.get(name))
    for name, values in directives.items():
        for forbidden in ("'unsafe-inline'", "'unsafe-eval'", "*", "http:", "https:"):
            assert forbidden not in values, (name, values)


class InlineFinder(HTMLParser):
    """Collects what a strict policy would block: inline scripts, style blocks and attributes,
    event-handler attributes and javascript: URLs."""

    def __init__(self):
        super().__init__()
        self.found: list[str] = []
        self._in_inline_script = False

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "script" and "src" not in attrs and attrs.get("type") != "application/json":
            self._in_inline_script = True
        if tag == "style":
            self.found.append("<style>")
        for name, value in attrs.items():
            if name == "style":
                self.found.append(f"<{tag} style=…>")
            if name.startswith("on"):
                self.found.append(f"<{tag} {name}=…>")
            if (value or "").strip().lower().startswith("javascript:"):
                self.found.append(f"<{tag} {name}=javascript:…>")

    handle_startendtag = handle_starttag

    def handle_data(self, data):
        if self._in_inline_script and data.strip():
            self.found.append(f"<script>{data.strip()[:40]}…")

    def handle_endtag(self, tag):
        if tag == "script":
            self._in_inline_script = False


def assert_nothing_inline(response) -> None:
    finder = InlineFinder()
    finder.feed(response.content.decode())
    assert finder.found == [], (response.request["PATH_INFO"], finder.found)


def test_every_kind_of_response_carries_the_strict_policy(client):
    # Public pages, the sign-in steps, an API answer, an error page, a redirect.
    user = f.user(Role.CUSTODY_SERGEANT)
    for path in ["/requests/", "/accounts/login/", "/healthz", "/api/schema/", "/nothing-here/"]:
        assert_strict(client.get(path))
    assert_strict(client.get("/recordings/"))  # the redirect to sign in
    client.post("/accounts/login/", {"username": user.username, "password": PASSWORD})
    assert_strict(client.get("/accounts/otp/"))
    staff = Client()
    f.signed_in(staff, Role.CUSTODY_SERGEANT)
    for path in ["/", "/recordings/", "/api/v1/recordings/", "/api/docs/"]:
        assert_strict(staff.get(path))


def _access_request(recording) -> AccessRequest:
    now = timezone.now()
    return AccessRequest.objects.create(
        reference="SAR-2026-000001",
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


def test_the_pages_of_every_role_have_no_inline_script_or_style(small_clip):
    officer_user = f.user(Role.OFFICER)
    cam, _ = f.issued_camera(officer_obj=officer_user.officer)
    recording = f.ingested_recording(cam=cam, data=small_clip)
    sergeant = f.user(Role.CUSTODY_SERGEANT)
    case = case_create(
        crime_reference="5201234/26", title="Robbery", borough=cam.borough, actor=sergeant
    )
    case_add_recording(case=case, recording=recording, actor=sergeant)
    export = export_create(
        actor=sergeant, recordings=[recording], recipient="CPS", purpose="charging", case=case
    )
    access_request = _access_request(recording)

    # The sign-in steps as someone enrolling sees them (the QR code is inline SVG).
    enrolling = Client()
    enrolling.post("/accounts/login/", {"username": sergeant.username, "password": PASSWORD})
    assert_nothing_inline(enrolling.get("/accounts/otp/"))
    public = Client()
    for path in ["/requests/", "/accounts/login/", "/api/docs/"]:
        response = public.get(path)
        assert response.status_code == 200, path
        assert_nothing_inline(response)

    officer_pages = ["/", "/recordings/", f"/recordings/{recording.pk}/", "/pool/"]
    sergeant_pages = [
        "/",
        "/recordings/",
        f"/recordings/{recording.pk}/",
        f"/recordings/{recording.pk}/together",
        "/cases/",
        f"/cases/{case.pk}/",
        "/exports/",
        f"/exports/{export.pk}/",
        "/retention/",
        f"/audit/recordings/{recording.pk}/",
        f"/audit/cases/{case.pk}/",
    ]
    admin_pages = [
        "/",
        "/estate/",
        "/estate/officers/",
        f"/estate/officers/{officer_user.officer.pk}/",
        "/estate/cameras/",
        f"/estate/cameras/{cam.pk}/",
        "/estate/docks/",
        "/estate/units/",
        "/estate/alerts/",
    ]
    disclosure_pages = ["/", "/disclosure/", f"/disclosure/{access_request.pk}/", "/exports/"]
    sysadmin_pages = [
        "/",
        "/grants/",
        "/accounts/reset-second-factor/",
        f"/audit/users/{sergeant.pk}/",
        "/admin/",
        f"/admin/auth/user/{sergeant.pk}/change/",
    ]
    for user, paths in [
        (officer_user, officer_pages),
        (sergeant, sergeant_pages),
        (f.user(Role.BOROUGH_ADMIN), admin_pages),
        (f.user(Role.DISCLOSURE_OFFICER), disclosure_pages),
        (f.user(Role.SYSTEM_ADMIN), sysadmin_pages),
    ]:
        staff = Client()
        f.sign_in(staff, user)
        staff.post(f"/recordings/{recording.pk}/", {"purpose": "5201234/26 review"})
        for path in paths:
            response = staff.get(path)
            assert response.status_code == 200, (user, path, response.status_code)
            if path == f"/recordings/{recording.pk}/":
                assert b'id="player"' in response.content  # the page itself, past the purpose
            if path.endswith("/together"):
                assert b'id="player-1"' in response.content  # the incident view's players
            assert_strict(response)
            assert_nothing_inline(response)


def test_the_api_docs_page_loads_its_start_up_script_as_a_file(client):
    page = client.get("/api/docs/")
    assert page.status_code == 200
    assert b'src="/api/docs/?script="' in page.content
    script = client.get("/api/docs/?script=")
    assert script.status_code == 200
    assert script["Content-Type"].startswith("application/javascript")
    assert b"SwaggerUIBundle" in script.content
