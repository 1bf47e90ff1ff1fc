"""Authentication backends: who may sign in with a password, and how directory sessions are named.

While directory sign-in is on (BWV_OIDC_ISSUER set), the password form signs in only accounts
kept for break-glass use: superusers (the system admins made with `createsuperuser`) and accounts
given the permission `accounts.sign_in_with_password` in the admin. Every other member of staff
signs in with the directory. An account that directory sign-in made never has a password.
"""

from __future__ import annotations

from django.conf import settings
from django.contrib.auth.backends import ModelBackend


def password_sign_in_allowed(user) -> bool:
    if not settings.BWV_OIDC_ISSUER:
        return True
    if hasattr(user, "directory_identity"):
        return False
    return user.is_active and (user.is_superuser or user.has_perm("accounts.sign_in_with_password"))


class PasswordBackend(ModelBackend):
    """Django's password check, refused to accounts that must sign in with the directory. A
    refusal is a failed sign-in like a wrong password (counted by django-axes, audited), and the
    form's message says that the password form is for break-glass accounts."""

    def user_can_authenticate(self, user) -> bool:
        return super().user_can_authenticate(user) and password_sign_in_allowed(user)


class DirectoryBackend(ModelBackend):
    """Checks no credential (`authenticate` always declines): the directory's ID token was checked
    by directory sign-in, which logs the user in naming this backend, so that the session says
    where it came from and the user is loaded from it like any other."""

    def authenticate(self, request, **credentials):
        return None
