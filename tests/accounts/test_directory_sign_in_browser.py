"""Directory sign-in in real Chromium, under the site's own Content-Security-Policy: the button on
the sign-in page, the provider's sign-in page, back to the page asked for with the role the
directory's groups give; signing out ends the provider's session too, so the next sign-in asks for
the password again."""

import re

import pytest

from accounts.models import DirectoryIdentity
from common.roles import Role, roles_sync, user_roles
from custody.models import AuditEvent
from tests import factories as f
from tests.oidc import PASSWORD, TestDirectory

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def _directory_sign_in(page, login: str) -> None:
    page.click("#directory-sign-in")
    page.wait_for_selector("#op-login-form")
    page.fill("#op-login", login)
    page.fill("#op-password", PASSWORD)
    page.click("#op-login-submit")


def test_staff_sign_in_and_out_with_the_directory_in_chromium(browser_page, live_server, settings):
    directory = TestDirectory()
    directory.switch_on(settings, live_server.url)
    roles_sync()
    f.borough("QA")
    f.force()
    login = directory.account(groups=["bwv-sergeants-qa"])

    # The site's policy is enforced here (the shared page bypasses it for Playwright's helpers).
    page = browser_page.context.browser.new_context().new_page()
    violations = []
    page.on("console", lambda m: violations.append(m.text) if "Content Security" in m.text else 0)
    page.goto(f"{live_server.url}/retention/")
    assert page.inner_text("#directory-sign-in") == "Sign in with Test Constabulary"
    assert not page.is_visible("#id_password")  # the password form is folded away
    _directory_sign_in(page, login)
    page.wait_for_url(f"{live_server.url}/retention/")
    user = DirectoryIdentity.objects.get(subject=login).user
    assert user_roles(user) == {Role.CUSTODY_SERGEANT}
    assert page.locator("h1").count() and "Sign in" not in page.inner_text("h1")

    page.click("header form button[type=submit]")  # Sign out
    page.wait_for_selector("#op-logout-yes")  # the provider asks, as a real one may
    page.click("#op-logout-yes")
    # The provider sends the browser back to the page registered for after its sign-out.
    page.wait_for_url(re.compile(re.escape(f"{live_server.url}/accounts/signed-out/") + r"(\?|$)"))
    assert "You have signed out" in page.inner_text("h1")
    assert AuditEvent.objects.filter(action="auth.signed_out", object_id=str(user.pk)).exists()

    # The session here has ended: a staff page asks to sign in again.
    page.goto(f"{live_server.url}/retention/")
    assert page.is_visible("#directory-sign-in")
    # And the provider's has ended too: its sign-in page asks for the password again, rather
    # than sending the browser straight back signed in.
    page.click("#directory-sign-in")
    page.wait_for_selector("#op-login-form")
    assert page.url.startswith(f"{directory.issuer}/interaction/")
    assert violations == []


def test_a_member_of_staff_the_directory_gives_no_role_sees_why_in_chromium(
    browser_page, live_server, settings
):
    directory = TestDirectory()
    directory.switch_on(settings, live_server.url)
    roles_sync()
    login = directory.account(groups=["canteen-staff"])

    page = browser_page.context.browser.new_context().new_page()
    page.goto(f"{live_server.url}/accounts/login/")
    _directory_sign_in(page, login)
    page.wait_for_selector("#directory-refusal")
    assert page.inner_text("h1") == "You do not have access to body-worn video evidence"
    assert "no role in this service" in page.inner_text("#directory-refusal")
    assert not DirectoryIdentity.objects.filter(subject=login).exists()
    page.click("#directory-back")
    page.wait_for_selector("#directory-sign-in")
