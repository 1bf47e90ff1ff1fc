"""Writes about staff accounts: API tokens, backup codes, second-factor resets, directory sign-in.

Each is audited with the person who did it. A reset leaves the account with no second factor and
no session, so the next sign-in starts again from the password and enrols a new authenticator.

Directory sign-in (`directory_sign_in`) guarantees:
- the account is the one whose directory identity is the ID token's issuer and subject; an e-mail
  address never finds or joins an account; an account it makes has no usable password;
- the account's roles (and a system admin's `is_staff`/`is_superuser`) and its borough are set from
  the role map at every sign-in, so a group the directory took away takes the access away at the
  next sign-in; each change is audited (`auth.roles_changed`);
- claims that map to no role, or to two boroughs, sign nobody in: nothing is created, and an
  existing account loses every role (a leaver); the refusal is audited (`auth.directory_refused`);
- a refused sign-in changes nothing else: the checks and the writes of one sign-in are one
  transaction.
"""

from __future__ import annotations

from django.conf import settings
from django.contrib.auth import SESSION_KEY, get_user_model
from django.contrib.auth.models import Group
from django.contrib.sessions.models import Session
from django.db import transaction
from django.utils import timezone
from django_otp import devices_for_user
from django_otp.plugins.otp_static.models import StaticDevice, StaticToken
from rest_framework.authtoken.models import Token

from accounts.directory import BOROUGH_ROLES, DirectoryAssertion, access_from
from accounts.models import DirectoryDevice, DirectoryIdentity
from common.roles import Role
from custody.services import audit_record
from devices.models import Borough
from devices.selectors import user_borough
from devices.services import OfficerError, officer_account_place

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


# -- Directory sign-in -----------------------------------------------------------------------------

DIRECTORY_DEVICE_NAME = "Directory sign-in"


def _directory_actor(issuer: str) -> str:
    # The directory decides roles; its administrators are not known here by name.
    return f"directory:{issuer}"[:150]


def _role_names(user) -> list[str]:
    return sorted(user.groups.filter(name__in=Role.values).values_list("name", flat=True))


def _roles_set(*, user, roles: set[str]) -> tuple[list[str], list[str]]:
    """Give `user` exactly `roles` (their other groups untouched); a system admin is also staff
    and superuser (the admin and every borough), and stops being either without the role."""
    before = _role_names(user)
    keep = user.groups.exclude(name__in=Role.values)
    user.groups.set([*keep, *Group.objects.filter(name__in=roles)])
    admin = Role.SYSTEM_ADMIN in roles
    if user.is_staff != admin or user.is_superuser != admin:
        user.is_staff = user.is_superuser = admin
        user.save(update_fields=["is_staff", "is_superuser"])
    user._bwv_roles = None  # common.roles caches a user's roles on the object
    return before, sorted(roles)


def _unique_username(wanted: str, subject: str) -> str:
    User = get_user_model()
    base = (wanted or f"sso-{subject}")[:140]
    name, n = base, 1
    while User.objects.filter(username=name).exists():
        n += 1
        name = f"{base}-{n}"
    return name


class DirectoryRefusal(Exception):
    """A directory sign-in refused for what the claims say (not for the protocol): `reason` for the
    audit log, the message for the person."""

    def __init__(self, reason: str, message: str):
        super().__init__(message)
        self.reason = reason


@transaction.atomic
def _directory_account_sync(*, assertion: DirectoryAssertion, ip: str):
    actor = _directory_actor(assertion.issuer)
    access = access_from(assertion.role_values)
    if not access.roles:
        raise DirectoryRefusal(
            "unmapped",
            f"Your {settings.BWV_OIDC_NAME} account has no role in this service. If you need "
            "access, ask your line manager to request the right group for you.",
        )
    if len(access.borough_codes) > 1:
        raise DirectoryRefusal(
            "borough_conflict",
            "Your directory groups give you more than one borough ("
            + ", ".join(sorted(access.borough_codes))
            + "). Ask the service desk to leave you in one.",
        )
    borough = None
    if access.borough_codes:
        (code,) = access.borough_codes
        borough = Borough.objects.filter(code=code).first()
        if borough is None:
            raise DirectoryRefusal(
                "unknown_borough",
                f"Your directory group names a borough ({code}) this system does not have. Tell "
                "the service desk.",
            )
    identity = (
        DirectoryIdentity.objects.select_for_update()
        .select_related("user")
        .filter(issuer=assertion.issuer, subject=assertion.subject)
        .first()
    )
    if identity is None:
        user = get_user_model().objects.create_user(
            username=_unique_username(assertion.username, assertion.subject),
            email=assertion.email,
            first_name=assertion.first_name,
            last_name=assertion.last_name,
        )
        user.set_unusable_password()
        user.save(update_fields=["password"])
        identity = DirectoryIdentity.objects.create(
            user=user, issuer=assertion.issuer, subject=assertion.subject
        )
        audit_record(
            actor=actor,
            action="auth.directory_account_created",
            obj=user,
            detail={"issuer": assertion.issuer, "subject": assertion.subject},
        )
    user = identity.user
    if not user.is_active:
        raise DirectoryRefusal(
            "inactive", "This account has been switched off here. Ask a system admin."
        )
    changed = [
        name
        for name in ("first_name", "last_name", "email")
        if getattr(assertion, name) and getattr(user, name) != getattr(assertion, name)
    ]
    for name in changed:
        setattr(user, name, getattr(assertion, name))
    if changed:
        user.save(update_fields=changed)
    borough_before = user_borough(user)
    if borough is not None:
        try:
            officer_account_place(
                user=user,
                borough=borough,
                actor=actor,
                collar_number=assertion.staff_number,
                first_name=assertion.first_name,
                last_name=assertion.last_name,
            )
        except OfficerError as exc:
            raise DirectoryRefusal("staff_number_taken", str(exc)) from exc
    elif access.roles & BOROUGH_ROLES and borough_before is None:
        raise DirectoryRefusal(
            "no_borough",
            "Your directory groups give you a role but no borough to work in. Ask the service "
            "desk to add you to your borough's group.",
        )
    before, after = _roles_set(user=user, roles=set(access.roles))
    borough_after = borough or borough_before
    if before != after or borough_before != borough_after:
        audit_record(
            actor=actor,
            action="auth.roles_changed",
            obj=user,
            borough=borough_after,
            detail={
                "roles_before": before,
                "roles_after": after,
                "borough_before": borough_before.code if borough_before else None,
                "borough_after": borough_after.code if borough_after else None,
                "claims": list(assertion.role_values)[:50],
            },
        )
    identity.last_sign_in_at = timezone.now()
    identity.save(update_fields=["last_sign_in_at"])
    audit_record(
        actor=user,
        action="auth.directory_signed_in",
        obj=user,
        detail={
            "ip": ip,
            "issuer": assertion.issuer,
            "subject": assertion.subject,
            "roles": after,
            "mfa": assertion.mfa,
            "amr": list(assertion.amr),
            "acr": assertion.acr,
        },
    )
    return user


@transaction.atomic
def directory_refusal_record(
    *, reason: str, ip: str, assertion: DirectoryAssertion | None = None
) -> None:
    """Audit a refused directory sign-in. When the claims map to no role, the account of that
    identity (if there is one) loses every role: the leaver whose groups were taken away keeps no
    access through another way in (a session elsewhere, an API token)."""
    user = None
    if assertion is not None:
        identity = (
            DirectoryIdentity.objects.select_for_update()
            .select_related("user")
            .filter(issuer=assertion.issuer, subject=assertion.subject)
            .first()
        )
        user = identity.user if identity is not None else None
    if user is not None and reason == "unmapped":
        before, after = _roles_set(user=user, roles=set())
        if before != after:
            audit_record(
                actor=_directory_actor(assertion.issuer),
                action="auth.roles_changed",
                obj=user,
                detail={"roles_before": before, "roles_after": after, "claims": []},
            )
    detail = {"ip": ip, "reason": reason}
    if assertion is not None:
        detail |= {
            "issuer": assertion.issuer,
            "subject": assertion.subject,
            "claims": list(assertion.role_values)[:50],
        }
    if user is not None:
        audit_record(actor=user, action="auth.directory_refused", obj=user, detail=detail)
    else:
        audit_record(
            actor=None,
            action="auth.directory_refused",
            object_type="auth.directory",
            object_id=(assertion.subject if assertion else "-")[:64],
            detail=detail,
        )


def directory_sign_in(*, assertion: DirectoryAssertion, ip: str):
    """The account of a checked directory assertion, its roles and borough brought up to date.
    Raises DirectoryRefusal (already audited) when the claims give no way in."""
    try:
        return _directory_account_sync(assertion=assertion, ip=ip)
    except DirectoryRefusal as refusal:
        directory_refusal_record(reason=refusal.reason, ip=ip, assertion=assertion)
        raise


@transaction.atomic
def directory_device_for(*, user) -> DirectoryDevice:
    """The device that stands for the directory's second factor in a session (one per account)."""
    device, _ = DirectoryDevice.objects.get_or_create(
        user=user, name=DIRECTORY_DEVICE_NAME, defaults={"confirmed": True}
    )
    return device
