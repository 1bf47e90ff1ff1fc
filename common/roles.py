"""Staff roles: Django groups with permissions. Borough scoping lives in the selectors, not here.

A permission says what a role may do at all; the selectors then say to which rows (their borough,
their own footage, or everything for a system admin).
"""

from __future__ import annotations

from django.db import models


class Role(models.TextChoices):
    OFFICER = "officer", "Officer / PCSO"
    CUSTODY_SERGEANT = "custody_sergeant", "Custody sergeant / reviewer"
    BOROUGH_ADMIN = "borough_admin", "Borough admin"
    DISCLOSURE_OFFICER = "disclosure_officer", "Disclosure officer"
    SYSTEM_ADMIN = "system_admin", "System admin"


# The roles whose work is one borough's (their officer record's borough, and grants to others).
BOROUGH_ROLES = frozenset({Role.CUSTODY_SERGEANT, Role.BOROUGH_ADMIN, Role.DISCLOSURE_OFFICER})

ROLE_PERMISSIONS: dict[str, list[str]] = {
    Role.OFFICER: ["evidence.view_recording"],
    Role.CUSTODY_SERGEANT: [
        "evidence.view_recording",
        "evidence.flag_recording",
        "review.view_case",
        "review.add_case",
        "review.change_case",
        "evidence.export_recording",
        "custody.view_auditevent",
        "retention.view_hold",
    ],
    Role.BOROUGH_ADMIN: [
        "devices.view_officer",
        "devices.add_officer",
        "devices.change_officer",
        "devices.view_camera",
        "devices.add_camera",
        "devices.change_camera",
        "devices.view_cameraassignment",
        "devices.add_cameraassignment",
        "devices.view_dock",
        "devices.add_dock",
        "devices.change_dock",
        "devices.view_unit",
        "devices.add_unit",
        "devices.change_unit",
        "evidence.view_recording",
        "custody.view_auditevent",
    ],
    Role.DISCLOSURE_OFFICER: [
        "evidence.view_recording",
        "review.view_case",
        "evidence.export_recording",
        "custody.view_auditevent",
        "requests_portal.view_accessrequest",
        "requests_portal.change_accessrequest",
        "requests_portal.approve_accessrequest",
        "retention.view_hold",
    ],
    Role.SYSTEM_ADMIN: [],  # superuser-like through the selectors; Django admin via is_staff
}


def roles_sync(**kwargs) -> None:
    """Create the role groups and give them their permissions (idempotent; runs after migrate)."""
    # Imported here: this module is loaded while the apps are (accounts/apps.py), before models
    # can be.
    from django.contrib.auth.models import Group, Permission

    for role, perms in ROLE_PERMISSIONS.items():
        group, _ = Group.objects.get_or_create(name=role)
        wanted = []
        for perm in perms:
            app_label, codename = perm.split(".")
            wanted += list(
                Permission.objects.filter(content_type__app_label=app_label, codename=codename)
            )
        group.permissions.set(wanted)


def user_roles(user) -> set[str]:
    if not user.is_authenticated:
        return set()
    cached = getattr(user, "_bwv_roles", None)
    if cached is None:
        cached = user_roles_remember(user, user.groups.values_list("name", flat=True))
    return cached


def user_roles_remember(user, group_names) -> set[str]:
    """Cache on `user` the roles of these group names, read with the user (see
    accounts.backends): the object lives for one request, so a change of roles applies from the
    next one."""
    roles = set(group_names)
    if user.is_superuser:
        roles.add(Role.SYSTEM_ADMIN)
    user._bwv_roles = roles
    return roles


def user_has_role(user, *roles: str) -> bool:
    return bool(user_roles(user) & set(roles))
