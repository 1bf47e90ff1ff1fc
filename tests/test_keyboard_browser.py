"""Keyboard only, in Chromium: staff sign in, a sergeant searches, opens and flags a recording,
and a member of the public sends the request form, with Tab, Space, the arrow keys and Enter,
never the mouse. Every control is reached in the order it is read, and shows where the focus is."""

import base64
import re
from datetime import timedelta

import pytest
from django.core import mail
from django.core.cache import cache
from django.utils import timezone
from django_otp.oath import totp

from common.roles import Role
from requests_portal.models import AccessRequest
from review.models import EvidenceFlag
from tests import factories as f
from tests.browser import PASSWORD, sign_in
from tests.bwv.test_csp_browser import wait_until

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def focused(page) -> dict:
    return page.evaluate(
        """() => { const e = document.activeElement, s = getComputedStyle(e);
                   return {id: e.id, tag: e.tagName.toLowerCase(), classes: e.className,
                           outline: s.outlineStyle, shadow: s.boxShadow,
                           background: s.backgroundColor}; }"""
    )


def assert_focus_visible(page) -> None:
    """GOV.UK's focus state: a yellow outline, or a yellow background with a thick underline."""
    state = focused(page)
    yellow = "rgb(255, 221, 0)"
    assert state["outline"] != "none" or yellow in (state["shadow"] + state["background"]), state


def tab(page, expected: str) -> None:
    """One press of Tab lands on the element with id `expected`, which shows the focus."""
    page.keyboard.press("Tab")
    assert focused(page)["id"] == expected, (expected, focused(page))
    assert_focus_visible(page)


def tab_to(page, selector: str, limit: int = 40) -> None:
    for _ in range(limit):
        page.keyboard.press("Tab")
        if page.evaluate("(s) => document.activeElement.matches(s)", selector):
            assert_focus_visible(page)
            return
    raise AssertionError(f"{selector} is not reached with the Tab key")


def test_staff_sign_in_with_the_keyboard_only(live_server, browser_page):
    user = f.user(Role.CUSTODY_SERGEANT, username="sgt.keys", password=PASSWORD)
    page = browser_page
    page.goto(f"{live_server.url}/accounts/login/")

    # The user name's box has the focus when the page opens.
    assert focused(page)["id"] == "id_username"
    assert_focus_visible(page)
    page.keyboard.type(user.username)
    tab(page, "id_password")
    page.keyboard.type(PASSWORD)
    page.keyboard.press("Enter")

    # The second factor: the code's box has the focus already.
    page.wait_for_selector("#totp-secret")
    assert focused(page)["id"] == "id_token"
    secret = page.inner_text("#totp-secret")
    key = base64.b32decode(secret + "=" * (-len(secret) % 8))
    page.keyboard.type(f"{totp(key):06d}")
    page.keyboard.press("Enter")

    page.wait_for_selector("#backup-codes")
    tab_to(page, "#backup-codes-continue")
    page.keyboard.press("Enter")
    page.wait_for_selector("#deletion-due")  # the sergeant's home: their work queue
    assert page.url == f"{live_server.url}/"
    # The first Tab reaches the skip link, which takes the focus past the header to the content.
    page.keyboard.press("Tab")
    assert "govuk-skip-link" in focused(page)["classes"]
    assert_focus_visible(page)
    page.keyboard.press("Enter")
    assert focused(page)["id"] == "main-content"
    # The header's sections are reached with Tab too, from the top.
    page.goto(f"{live_server.url}/")
    tab_to(page, "a.moj-primary-navigation__link[href='/recordings/']")
    page.keyboard.press("Enter")
    page.wait_for_selector("#search")


def test_the_public_request_form_with_the_keyboard_only(live_server, browser_page, settings):
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    settings.SITE_URL = live_server.url
    cache.clear()  # the limits per address count earlier tests' requests from this machine too
    f.borough("QA")
    page = browser_page
    page.goto(f"{live_server.url}/requests/")
    enabled = "!document.querySelector('#request-form button[type=submit]').disabled"

    # Sent empty: the error summary takes the focus; its first link takes it to the first field.
    wait_until(page, enabled, 60_000)
    tab_to(page, "#request-form button[type=submit]")
    page.keyboard.press("Enter")
    page.wait_for_selector(".govuk-error-summary")
    wait_until(page, "document.activeElement.classList.contains('govuk-error-summary')")
    page.keyboard.press("Tab")
    assert focused(page)["tag"] == "a"
    page.keyboard.press("Enter")
    wait_until(page, "document.activeElement.id === 'id_kind_0'")

    # Every question in the order it is read, one Tab each.
    page.keyboard.press("Space")
    assert page.is_checked("#id_kind_0")
    when = timezone.localtime(timezone.now() - timedelta(days=2))
    answers = [
        ("id_name", "Sam Public"),
        ("id_email", "sam@example.org"),
        ("id_postal_address", "1 High Street, Harrow"),
        ("id_incident_date_day", str(when.day)),
        ("id_incident_date_month", str(when.month)),
        ("id_incident_date_year", str(when.year)),
        ("id_incident_time_hour", f"{when.hour:02d}"),
        ("id_incident_time_minute", f"{when.minute:02d}"),
        ("id_borough", "ArrowDown"),  # from "Choose the borough" to the first borough
        ("id_place", "Station Road, Harrow"),
        ("id_description", "I was stopped and searched outside the station."),
        ("id_appearance", "Red coat, black hat"),
        ("id_collar_number", ""),
        ("id_declaration", "Space"),
    ]
    for field, answer in answers:
        tab(page, field)
        if answer in ("ArrowDown", "Space"):
            page.keyboard.press(answer)
        elif answer:
            page.keyboard.type(answer)
    assert page.eval_on_selector("#id_borough", "e => e.value") == "QA"
    assert page.is_checked("#id_declaration")

    wait_until(page, enabled, 60_000)
    page.keyboard.press("Tab")
    assert focused(page)["tag"] == "button" and "govuk-button" in focused(page)["classes"]
    assert_focus_visible(page)
    page.keyboard.press("Enter")
    page.wait_for_selector("#reference")
    request = AccessRequest.objects.get()
    assert request.name == "Sam Public" and request.borough.code == "QA"
    assert request.incident_at.date() == when.date()
    assert len(mail.outbox) == 1


def test_search_open_and_flag_a_recording_with_the_keyboard_only(live_server, browser_page):
    sergeant = f.user(Role.CUSTODY_SERGEANT, username="sgt.flag", password=PASSWORD)
    wanted = f.recording_row(cam=f.camera())
    other = f.recording_row(cam=f.camera())
    page = browser_page
    sign_in(page, live_server, sergeant, next_path="/recordings/")  # sign-in is tested above
    page.wait_for_selector("#search")

    # Search: the camera's box, typed into, and Enter sends the filters.
    tab_to(page, "#id_camera")
    page.keyboard.type(wanted.camera.serial)
    page.keyboard.press("Enter")
    page.wait_for_url(re.compile(r"camera="))
    assert other.camera.serial not in page.inner_text("#main-content")

    # Open: the result's link, then the purpose, asked before the footage is shown.
    tab_to(page, f"a[href='/recordings/{wanted.pk}/']")
    page.keyboard.press("Enter")
    page.wait_for_selector("#purpose-form")
    tab_to(page, "#purpose")
    page.keyboard.type("reviewing custody incident 5201234/26")
    page.keyboard.press("Enter")
    page.wait_for_selector("#flag-form")

    # Flag: the kind (evidence is chosen first), the crime reference and the reason; Enter sends.
    tab_to(page, "#kind", limit=120)
    tab_to(page, "#crime_reference")
    page.keyboard.type("5201234/26")
    tab_to(page, "#reason")
    page.keyboard.type("assault on arrest")
    page.keyboard.press("Enter")
    page.wait_for_selector(".govuk-notification-banner--success")
    banner = page.inner_text(".govuk-notification-banner--success")
    assert "Flagged as evidence, crime reference 5201234/26" in banner
    flag = EvidenceFlag.objects.get(recording=wanted)
    assert (flag.crime_reference, flag.reason) == ("5201234/26", "assault on arrest")
