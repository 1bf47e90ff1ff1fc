"""The sections of the staff site, and which of them each signed-in role may use.

The header lists only what the viewer's role may open (the views and selectors still decide: a
section left out of the list is not thereby protected). Who may use what follows the roles'
permissions in common.roles, read from the roles the user holds, so drawing the header costs no
query beyond the one that loads the user's roles, which the pages' selectors make anyway.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.urls import reverse

from common.roles import BOROUGH_ROLES, ROLE_PERMISSIONS, Role, user_roles


@dataclass(frozen=True)
class Section:
    key: str
    label: str
    url_name: str
    prefixes: tuple[str, ...]
    roles: frozenset[str] = frozenset()  # any of these roles opens it
    permission: str = ""  # or any role that has this permission
    system_admins: bool = True  # system admins use every section but those of officers in person

    def open_to(self, roles: set[str]) -> bool:
        if (self.system_admins and Role.SYSTEM_ADMIN in roles) or roles & self.roles:
            return True
        return bool(self.permission) and any(
            self.permission in ROLE_PERMISSIONS.get(role, []) for role in roles
        )


SECTIONS = (
    Section(
        "recordings",
        "Recordings",
        "recording-search",
        ("/recordings/", "/audit/recordings/", "/incidents/"),
        permission="evidence.view_recording",
    ),
    Section(
        "cases", "Cases", "case-list", ("/cases/", "/audit/cases/"), permission="review.view_case"
    ),
    Section(
        "work",
        "Work queue",
        "work-queue",
        ("/work/",),
        roles=frozenset({Role.OFFICER, Role.CUSTODY_SERGEANT}),
    ),
    Section(
        "exports", "Exports", "export-list", ("/exports/",), permission="evidence.export_recording"
    ),
    Section(
        "retention",
        "Retention",
        "retention-report",
        ("/retention/",),
        roles=BOROUGH_ROLES,
    ),
    Section(
        "estate",
        "Cameras and officers",
        "estate",
        ("/estate/",),
        roles=frozenset({Role.BOROUGH_ADMIN}),
    ),
    Section(
        "pool",
        "Camera pool",
        "pool",
        ("/pool/",),
        roles=frozenset({Role.OFFICER}),
        system_admins=False,
    ),
    Section(
        "disclosure",
        "Access requests",
        "disclosure-queue",
        ("/disclosure/",),
        permission="requests_portal.change_accessrequest",
    ),
    Section(
        "administration",
        "Administration",
        "grant-list",
        ("/grants/", "/accounts/reset-second-factor/", "/audit/users/", "/webhooks/"),
        roles=frozenset({Role.SYSTEM_ADMIN}),
    ),
)


@dataclass(frozen=True)
class NavItem:
    key: str
    label: str
    href: str
    current: str  # "page" (this is the section's own page), "true" (a page within it) or ""


def sections_for(user) -> list[Section]:
    """The sections this user's roles may use, in the header's order; none before the second
    factor is verified."""
    if not user.is_authenticated or not getattr(user, "is_verified", lambda: False)():
        return []
    roles = user_roles(user)
    return [section for section in SECTIONS if section.open_to(roles)]


def navigation_for(user, path: str) -> list[NavItem]:
    items = []
    for section in sections_for(user):
        href = reverse(section.url_name)
        if path == href:
            current = "page"
        elif path.startswith(section.prefixes):
            current = "true"
        else:
            current = ""
        items.append(NavItem(section.key, section.label, href, current))
    return items
