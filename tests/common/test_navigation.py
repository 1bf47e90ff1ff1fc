"""The header lists the sections the signed-in role may use, marks the one being viewed, and
every section it lists opens for that role."""

import pytest

from common.roles import Role
from tests import factories as f
from tests.html import Page

pytestmark = pytest.mark.django_db

EXPECTED = {
    Role.OFFICER: ["Recordings", "Work queue", "Camera pool"],
    Role.CUSTODY_SERGEANT: ["Recordings", "Cases", "Work queue", "Exports", "Retention"],
    Role.BOROUGH_ADMIN: ["Recordings", "Retention", "Cameras and officers"],
    Role.DISCLOSURE_OFFICER: ["Recordings", "Cases", "Exports", "Retention", "Access requests"],
    Role.SYSTEM_ADMIN: [
        "Recordings",
        "Cases",
        "Work queue",
        "Exports",
        "Retention",
        "Cameras and officers",
        "Access requests",
        "Administration",
    ],
}


def sections(response) -> list[tuple[str, str, str | None]]:
    """(label, href, aria-current) of each link in the header's navigation."""
    page = Page(response.content)
    found, inside = [], False
    for tag, attrs in page.elements:
        if tag == "nav":
            inside = attrs.get("aria-label") == "Sections"
        elif inside and tag == "a" and "moj-primary-navigation__link" in attrs.get("class", ""):
            found.append((attrs["href"], attrs.get("aria-current")))
    labels = [
        " ".join(text.split())
        for text in response.content.decode().split('class="moj-primary-navigation__link"')[1:]
    ]
    labels = [label.split(">", 1)[1].split("<", 1)[0] for label in labels]
    return [(label, href, current) for label, (href, current) in zip(labels, found, strict=True)]


@pytest.mark.parametrize("role", list(EXPECTED), ids=str)
def test_each_role_sees_its_sections_and_each_opens(client, role):
    f.signed_in(client, role)
    listed = sections(client.get("/"))
    assert [label for label, _href, _current in listed] == EXPECTED[role]
    for label, href, _current in listed:
        response = client.get(href)
        assert response.status_code == 200, (role, label, href, response.status_code)
        # On its own page the section is marked as the current page, and no other is marked.
        marks = {lab: cur for lab, _h, cur in sections(response)}
        assert marks[label] == "page"
        assert [lab for lab, cur in marks.items() if cur] == [label]


def test_a_page_inside_a_section_marks_the_section(client):
    f.signed_in(client, Role.CUSTODY_SERGEANT)
    response = client.get("/cases/", {"page": "1"})
    assert ("Cases", "/cases/", "page") in sections(response)
    recording = f.recording_row()
    response = client.get(f"/recordings/{recording.pk}/")  # the purpose step, in Recordings
    assert ("Recordings", "/recordings/", "true") in sections(response)


def test_nobody_sees_sections_before_the_second_factor(client):
    user = f.user(Role.SYSTEM_ADMIN)
    client.post(
        "/accounts/login/", {"username": user.username, "password": "correct-horse-battery-9"}
    )
    page = client.get("/accounts/otp/")
    assert page.status_code == 200
    assert sections(page) == []
    assert 'aria-label="Sections"' not in page.content.decode()
