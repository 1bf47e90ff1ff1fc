"""Writes about staff accounts' credentials: API tokens, backup codes, second-factor resets.

Each is audited with the person who did it. A reset leaves the account with no second factor and
no session, so the next sign-in starts again from the password and enrols a new authenticator.
"""

from __future__ import annotations

from django.conf import settings
from django.contrib.auth import SESSION_KEY
from django.contrib.sessions.models import Session
from django.db import transaction
from django.utils import timezone
from django_otp import devices_for_user
from django_otp.plugins.otp_static.models import StaticDevice, StaticToken
from rest_framework.authtoken.models import Token

from custody.services import audit_record

BACKUP_DEVICE_NAME = "Backup codes"


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


def backup_codes_left(*, user) -> int:
    return StaticToken.objects.filter(device__user=user, device__confirmed=True).count()


@transaction.atomic
def backup_codes_issue(*, user, actor) -> list[str]:
    """A new set of single-use backup codes for `user`, replacing any left from an earlier set.

    The codes are returned to be shown once. They are kept as django-otp keeps them; a code is
    deleted when it is used. The device itself is kept, so a session verified by it stays verified.
    """
    device, _ = StaticDevice.objects.select_for_update().get_or_create(
        user=user, name=BACKUP_DEVICE_NAME, defaults={"confirmed": True}
    )
    device.token_set.all().delete()
    codes = [StaticToken.random_token() for _ in range(settings.BWV_BACKUP_CODES)]
    StaticToken.objects.bulk_create(StaticToken(device=device, token=code) for code in codes)
    audit_record(
        actor=actor, action="auth.backup_codes_issued", obj=user, detail={"count": len(codes)}
    )
    return codes


def _sessions_of(user) -> list[str]:
    """The keys of the user's live sessions (the database session store, Django's default).

    Sessions are not indexed by user, so the live ones are read and decoded; idle sessions expire
    after half an hour, which keeps that set small, and a reset is rare.
    """
    keys = []
    live = Session.objects.filter(expire_date__gt=timezone.now()).only(
        "session_key", "session_data"
    )
    for session in live.iterator(chunk_size=500):
        if session.get_decoded().get(SESSION_KEY) == str(user.pk):
            keys.append(session.session_key)
    return keys


@transaction.atomic
def second_factor_reset(*, user, actor, reason: str) -> dict[str, int]:
    """Remove every second-factor device of `user` (authenticator and backup codes) and end their
    sessions: they sign in with their password and enrol a new authenticator next time.

    For a member of staff who lost their phone; only another person may do it, with a reason.
    """
    reason = (reason or "").strip()
    if not reason:
        raise AccountError("Give the reason for the reset (for example how the phone was lost).")
    if user.pk == actor.pk:
        raise AccountError("You cannot reset your own second factor: ask another system admin.")
    devices = list(devices_for_user(user, confirmed=None))
    for device in devices:
        device.delete()
    sessions = _sessions_of(user)
    Session.objects.filter(session_key__in=sessions).delete()
    removed = {"devices_removed": len(devices), "sessions_ended": len(sessions)}
    audit_record(
        actor=actor,
        action="auth.second_factor_reset",
        obj=user,
        justification=reason,
        detail={**removed, "devices": sorted(type(d).__name__ for d in devices)},
    )
    return removed
