"""Error pages are in the site's layout (the force's header, the footer) and offer a way on; under
/api/ they stay JSON. Each is reached the way a user would reach it."""

import pytest
from django.core.cache import cache
from django.test import Client, override_settings

from common.roles import Role
from tests import factories as f
from tests.bwv.test_csp import assert_nothing_inline, assert_strict

pytestmark = pytest.mark.django_db
PASSWORD = "correct-horse-battery-9"


def assert_site_page(response, status: int, heading: str, way_on: str) -> str:
    assert response.status_code == status
    html = response.content.decode()
    assert 'class="moj-header"' in html and "Metropolitan Police" in html, html[:500]
    assert 'class="govuk-footer"' in html
    assert 'href="#main-content"' in html  # the skip link
    assert heading in html
    assert f'href="{way_on}" id="way-on"' in html
    assert_strict(response)
    assert_nothing_inline(response)
    return html


def test_a_missing_page_is_the_sites_not_djangos_bare_not_found(client):
    html = assert_site_page(client.get("/nothing-here/"), 404, "Page not found", "/")
    assert "<h1>Not Found</h1>" not in html


def test_a_missing_public_page_offers_the_public_a_way_on(client):
    html = assert_site_page(
        client.get("/requests/no-such-page/"), 404, "Page not found", "/requests/"
    )
    assert "Body-worn video requests" in html and "Sign out" not in html


def test_a_signed_in_user_sees_their_sections_on_the_not_found_page(client):
    f.signed_in(client, Role.CUSTODY_SERGEANT)
    html = assert_site_page(client.get("/nothing-here/"), 404, "Page not found", "/")
    assert 'aria-label="Sections"' in html and ">Recordings<" in html


@pytest.mark.parametrize("path", ["/api/nothing/", "/api/v1/nothing/"])
def test_a_missing_api_path_is_still_json(client, path):
    response = client.get(path)
    assert response.status_code == 404
    assert response.json() == {"detail": "Not found."}


def test_a_request_the_site_cannot_accept_is_a_page_with_a_way_on(client):
    # A Host header the site does not serve (DisallowedHost): Django answers 400.
    response = client.get("/requests/", HTTP_HOST="evil.example")
    assert_site_page(response, 400, "there is a problem with the request", "/requests/")


def test_a_page_the_role_may_not_open_says_why_in_the_layout(client):
    # The admin refuses a signed-in member of staff who is no system admin (PermissionDenied).
    f.signed_in(client, Role.CUSTODY_SERGEANT)
    html = assert_site_page(client.get("/admin/login/"), 403, "You cannot open this page", "/")
    assert "The administration pages are for system admins only." in html


@override_settings(ROOT_URLCONF="tests.common.error_urls")
def test_a_server_error_is_a_page_in_the_layout_that_needs_nothing_of_the_request():
    client = Client(raise_request_exception=False)
    f.signed_in(client, Role.CUSTODY_SERGEANT)
    html = assert_site_page(client.get("/broken/"), 500, "there is a problem with the service", "/")
    # Drawn without the request, so without anything that could fail again (the session, the
    # database): no user, no navigation.
    assert "Sign out" not in html and 'aria-label="Sections"' not in html


def test_a_form_sent_without_its_token_gets_a_page_that_says_what_to_do():
    client = Client(enforce_csrf_checks=True)
    response = client.post("/accounts/login/", {"username": "someone", "password": "x"})
    html = assert_site_page(response, 403, "the form could not be sent", "/")
    assert "reload the page" in html


def test_too_many_public_requests_from_one_address_is_a_page_with_a_way_on(client, settings):
    cache.clear()
    settings.BWV_REQUEST_LIMIT_IP_PER_HOUR = 0
    response = client.post("/requests/", {"email": "sam@example.org"})
    html = assert_site_page(response, 429, "Too many requests", "/requests/")
    assert "Nothing you sent before is lost" in html


def test_the_locked_out_page_is_in_the_layout_and_says_how_long(client):
    user = f.user(Role.CUSTODY_SERGEANT)
    for _ in range(5):
        client.post("/accounts/login/", {"username": user.username, "password": "wrong"})
    response = client.post("/accounts/login/", {"username": user.username, "password": PASSWORD})
    html = assert_site_page(response, 429, "Signing in is locked", "/accounts/login/")
    assert "Wait 30 minutes" in html


def test_the_favicon_is_served_where_browsers_ask_for_it(client):
    response = client.get("/favicon.ico")
    assert response.status_code == 200
    assert response["Content-Type"] in ("image/x-icon", "image/vnd.microsoft.icon")
    assert b"".join(response.streaming_content)[:4] == b"\x00\x00\x01\x00"
