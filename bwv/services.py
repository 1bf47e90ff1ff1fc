"""Writes about staff accounts' credentials: API tokens.

Each is audited with the person who did it.
"""

from __future__ import annotations

from django.db import transaction
from rest_framework.authtoken.models import Token

from evidence.services import audit_record


class AccountError(Exception):
    """A change to an account that cannot be made, with a message for the person who asked."""


@transaction.atomic
def api_token_create(*, user, actor) -> Token:
    """A REST API token for `user`. A token signs in without the second factor, so who made it
    for whom is recorded."""
    if Token.objects.filter(user=user).exists():
        raise AccountError(f"{user.get_username()} already has an API token: revoke it first.")
    token = Token.objects.create(user=user)
    audit_record(
        actor=actor, action="auth.api_token_created", obj=user, recipient=user.get_username()
    )
    return token


@transaction.atomic
def api_token_revoke(*, token: Token, actor) -> None:
    user = token.user
    # By key: the admin's proxy of a token answers `pk` with its user's id.
    Token.objects.filter(key=token.key).delete()
    audit_record(
        actor=actor, action="auth.api_token_revoked", obj=user, recipient=user.get_username()
    )
