"""Authentication backends: who may sign in with a password, and how directory sessions are named.

While directory sign-in is on (BWV_OIDC_ISSUER set), the password form signs in only accounts
kept for break-glass use: superusers (the system admins made with `createsuperuser`) and accounts
given the permission `accounts.sign_in_with_password` in the admin. Every other member of staff
signs in with the directory. An account that directory sign-in made never has a password.
"""

from __future__ import annotations

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.backends import ModelBackend
from django.contrib.postgres.aggregates import ArrayAgg
from django.db import connection
from django.db.models import Q

from common.roles import user_roles_remember


def password_sign_in_allowed(user) -> bool:
    if not settings.BWV_OIDC_ISSUER:
        return True
    if hasattr(user, "directory_identity"):
        return False
    return user.is_active and (user.is_superuser or user.has_perm("accounts.sign_in_with_password"))


class _RolesWithUserBackend(ModelBackend):
    """Loads a signed-in user's role names in the query that loads the user, on PostgreSQL: every
    staff request asks for the roles (the pages' guards, the selectors' scopes), and a Range
    request of the player is a handful of round trips, one fewer this way. The user object is
    made anew for each request, so the roles are never older than the request."""

    def get_user(self, user_id):
        if connection.vendor != "postgresql":
            return super().get_user(user_id)
        users = get_user_model()._default_manager.annotate(
            bwv_group_names=ArrayAgg("groups__name", filter=Q(groups__isnull=False))
        )
        user = users.filter(pk=user_id).first()
        if user is None or not self.user_can_authenticate(user):
            return None
        user_roles_remember(user, user.bwv_group_names or ())
        return user


class PasswordBackend(_RolesWithUserBackend):
    """Django's password check, refused to accounts that must sign in with the directory. A
    refusal is a failed sign-in like a wrong password (counted by django-axes, audited), and the
    form's message says that the password form is for break-glass accounts."""

    def user_can_authenticate(self, user) -> bool:
        return super().user_can_authenticate(user) and password_sign_in_allowed(user)


class DirectoryBackend(_RolesWithUserBackend):
    """Checks no credential (`authenticate` always declines): the directory's ID token was checked
    by directory sign-in, which logs the user in naming this backend, so that the session says
    where it came from and the user is loaded from it like any other."""

    def authenticate(self, request, **credentials):
        return None
