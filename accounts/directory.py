"""Directory sign-in (OpenID Connect): the protocol side, kept apart from the writes.

Guarantees:
- authorisation code flow with PKCE (S256); the state, nonce and code verifier are kept in the
  session of the browser that started the flow and are good for one callback only;
- the provider's endpoints and keys come from its discovery document, whose `issuer` must be the
  configured issuer exactly (OpenID Connect Discovery 4.3); an `iss` on the callback (RFC 9207)
  must be that issuer too;
- an ID token is accepted only when its signature verifies with a key of the provider's JWKS, in an
  algorithm the provider declares; `iss` is the issuer; `aud` holds our client id (and `azp`, when
  present, is ours); `exp` has not passed and `iat` is not in the future (both within
  BWV_OIDC_CLOCK_SKEW_SECONDS); `nonce` is this flow's; `sub` is present;
- everything we use about the person (subject, names, role claims, `amr`/`acr`) is read from that
  checked ID token and nothing else;
- nothing here writes to the database: the views call this first (network calls to the provider),
  then the account services, so no network call happens inside a transaction.

Anything a callback carries that does not pass raises `DirectoryError` with a reason code for the
audit log and a message for the person.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field

import requests
from authlib.integrations.base_client.errors import OAuthError
from authlib.integrations.django_client import OAuth
from django.conf import settings
from joserfc.errors import JoseError

from common.roles import Role

# Roles whose pages are scoped to a borough: someone given one needs a borough to work in.
BOROUGH_ROLES = {
    Role.OFFICER,
    Role.CUSTODY_SERGEANT,
    Role.BOROUGH_ADMIN,
    Role.DISCLOSURE_OFFICER,
}


class DirectoryError(Exception):
    """A directory sign-in that cannot go on: `reason` is for the audit log, the message for the
    person signing in."""

    def __init__(self, reason: str, message: str):
        super().__init__(message)
        self.reason = reason


@dataclass(frozen=True)
class DirectoryAssertion:
    """What the checked ID token says about the person signing in."""

    issuer: str
    subject: str
    username: str
    first_name: str
    last_name: str
    email: str
    staff_number: str
    role_values: tuple[str, ...]
    amr: tuple[str, ...] = ()
    acr: str = ""
    mfa: bool = False
    id_token: str = field(default="", repr=False)


def enabled() -> bool:
    return bool(settings.BWV_OIDC_ISSUER)


@functools.lru_cache(maxsize=4)
def _client(issuer: str, client_id: str, client_secret: str, scopes: str, timeout: int):
    # One client per configuration, kept for the process: it caches the discovery document and
    # the keys (fetched again when a token names a key it does not know, i.e. after a rotation).
    oauth = OAuth()
    return oauth.register(
        name="directory",
        client_id=client_id,
        client_secret=client_secret,
        server_metadata_url=f"{issuer.rstrip('/')}/.well-known/openid-configuration",
        client_kwargs={"scope": scopes, "code_challenge_method": "S256", "timeout": timeout},
    )


def client():
    return _client(
        settings.BWV_OIDC_ISSUER,
        settings.BWV_OIDC_CLIENT_ID,
        settings.BWV_OIDC_CLIENT_SECRET,
        settings.BWV_OIDC_SCOPES,
        settings.BWV_OIDC_TIMEOUT_SECONDS,
    )


def _metadata() -> dict:
    try:
        metadata = client().load_server_metadata()
    except (requests.RequestException, ValueError) as exc:
        raise DirectoryError(
            "provider_unreachable",
            f"{settings.BWV_OIDC_NAME} could not be reached. Try again in a few minutes.",
        ) from exc
    if metadata.get("issuer") != settings.BWV_OIDC_ISSUER:
        # A discovery document for another issuer (a mistyped URL, a proxy, an attack).
        client().server_metadata.pop("_loaded_at", None)
        raise DirectoryError(
            "issuer_mismatch",
            "The directory's settings do not match this site's. Tell the service desk.",
        )
    return metadata


def authorization_redirect(request, redirect_uri: str):
    """The redirect that starts a sign-in at the provider (state, nonce and PKCE in the session)."""
    _metadata()
    extra = {}
    if settings.BWV_OIDC_ACR_VALUES:
        extra["acr_values"] = settings.BWV_OIDC_ACR_VALUES
    try:
        return client().authorize_redirect(request, redirect_uri, **extra)
    except (requests.RequestException, OAuthError, RuntimeError) as exc:
        raise DirectoryError(
            "provider_unreachable",
            f"{settings.BWV_OIDC_NAME} could not be reached. Try again in a few minutes.",
        ) from exc


_STATE_PREFIX = "_state_directory_"


def _checked_token(request) -> dict:
    metadata = _metadata()
    error = request.GET.get("error")
    if error:
        raise DirectoryError(
            "provider_error",
            f"{settings.BWV_OIDC_NAME} did not sign you in ({error[:60]}).",
        )
    state = request.GET.get("state") or ""
    if not state or f"{_STATE_PREFIX}{state}" not in request.session:
        raise DirectoryError(
            "state_mismatch",
            "This sign-in was not started from this browser, or it was finished already.",
        )
    if not request.GET.get("code"):
        client().framework.clear_state_data(request.session, state)
        raise DirectoryError("missing_code", f"{settings.BWV_OIDC_NAME} sent no sign-in code.")
    returned_issuer = request.GET.get("iss")
    if returned_issuer is not None and returned_issuer != metadata["issuer"]:
        client().framework.clear_state_data(request.session, state)
        raise DirectoryError("issuer_mismatch", "The answer came from another directory.")
    claims_options = {
        "iss": {"essential": True, "value": settings.BWV_OIDC_ISSUER},
        "aud": {"essential": True, "value": settings.BWV_OIDC_CLIENT_ID},
        "sub": {"essential": True},
        "exp": {"essential": True},
        "iat": {"essential": True},
    }
    try:
        # Exchanges the code (with the PKCE verifier) and checks the ID token: signature,
        # iss, aud, azp, exp, iat, nonce, at_hash. The state is used up whatever happens.
        token = client().authorize_access_token(
            request,
            claims_options=claims_options,
            leeway=settings.BWV_OIDC_CLOCK_SKEW_SECONDS,
        )
    except JoseError as exc:
        claim = getattr(exc, "claim", "")
        raise DirectoryError(
            f"id_token_{exc.error}{':' + claim if claim else ''}"[:60],
            "The sign-in could not be checked. Try signing in again.",
        ) from exc
    except OAuthError as exc:
        raise DirectoryError(
            f"token_{exc.error or 'error'}"[:60],
            "The sign-in could not be completed. Try signing in again.",
        ) from exc
    except (requests.RequestException, ValueError, KeyError, TypeError) as exc:
        raise DirectoryError(
            "provider_unreachable",
            f"{settings.BWV_OIDC_NAME} could not be reached. Try again in a few minutes.",
        ) from exc
    if not token.get("id_token") or not token.get("userinfo"):
        raise DirectoryError("no_id_token", f"{settings.BWV_OIDC_NAME} sent no ID token.")
    return token


def _strings(value) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str):
        return (value,)
    if isinstance(value, list):
        return tuple(str(v) for v in value if isinstance(v, str | int))
    return ()


def _text(claims: dict, name: str, limit: int) -> str:
    value = claims.get(name)
    return value.strip()[:limit] if isinstance(value, str) else ""


def multi_factor(amr: tuple[str, ...], acr: str) -> bool:
    """Whether the directory says the person used more than one factor (configured values)."""
    return bool(set(amr) & set(settings.BWV_OIDC_MFA_AMR)) or (
        bool(acr) and acr in settings.BWV_OIDC_MFA_ACR
    )


def callback_assertion(request) -> DirectoryAssertion:
    """Finish the flow this browser started: check the callback and the ID token, and say what
    the token asserts. Raises DirectoryError for anything that does not pass."""
    token = _checked_token(request)
    claims = token["userinfo"]
    if "_claim_names" in claims and "groups" in (claims.get("_claim_names") or {}):
        # Entra ID's "group overage": too many groups to put in the token.
        raise DirectoryError(
            "group_overage",
            "Your account is in too many directory groups to be read at sign-in. Tell the "
            "service desk: the application should get only the groups assigned to it.",
        )
    subject = claims.get("sub")
    if not isinstance(subject, str) or not subject or len(subject) > 255:
        raise DirectoryError("id_token_sub", "The sign-in could not be checked.")
    values = []
    for name in settings.BWV_OIDC_ROLE_CLAIMS:
        values += _strings(claims.get(name))
    amr = _strings(claims.get("amr"))
    acr = claims.get("acr") if isinstance(claims.get("acr"), str) else ""
    staff_claim = settings.BWV_OIDC_STAFF_NUMBER_CLAIM
    first, last = _text(claims, "given_name", 100), _text(claims, "family_name", 100)
    if not (first or last):
        first, _, last = _text(claims, "name", 201).partition(" ")
    return DirectoryAssertion(
        issuer=settings.BWV_OIDC_ISSUER,
        subject=subject,
        username=_text(claims, "preferred_username", 150) or _text(claims, "email", 150),
        first_name=first[:100],
        last_name=last[:100],
        email=_text(claims, "email", 254),
        staff_number=(_text(claims, staff_claim, 20) if staff_claim else ""),
        role_values=tuple(dict.fromkeys(values)),
        amr=amr,
        acr=acr[:100],
        mfa=multi_factor(amr, acr),
        id_token=token["id_token"],
    )


@dataclass(frozen=True)
class MappedAccess:
    roles: frozenset[str]
    borough_codes: frozenset[str]


def access_from(values: tuple[str, ...], role_map: dict | None = None) -> MappedAccess:
    """The roles and borough codes the role map gives for these claim values."""
    role_map = settings.BWV_OIDC_ROLE_MAP if role_map is None else role_map
    roles, boroughs = set(), set()
    for value in values:
        entry = role_map.get(value)
        if not isinstance(entry, dict) or entry.get("role") not in Role.values:
            continue
        roles.add(entry["role"])
        if entry.get("borough"):
            boroughs.add(str(entry["borough"]))
    return MappedAccess(frozenset(roles), frozenset(boroughs))


def role_map_problems(role_map) -> list[str]:
    """What is wrong with a role map, for `manage.py check`."""
    if not isinstance(role_map, dict):
        return ["BWV_OIDC_ROLE_MAP must be a JSON object of claim value -> {role, borough}"]
    problems = []
    for value, entry in role_map.items():
        if not isinstance(entry, dict):
            problems.append(f"{value!r}: give an object with a role (and optionally a borough)")
        elif entry.get("role") not in Role.values:
            problems.append(
                f"{value!r}: role {entry.get('role')!r} is not one of {', '.join(Role.values)}"
            )
        elif set(entry) - {"role", "borough"}:
            problems.append(f"{value!r}: only role and borough are understood")
    return problems


def logout_url(id_token: str, post_logout_redirect_uri: str) -> str | None:
    """The provider's end-session URL for RP-initiated logout, or None when it has none (or
    cannot be reached: the local session has ended all the same)."""
    try:
        metadata = _metadata()
    except DirectoryError:
        return None
    if not metadata.get("end_session_endpoint"):
        return None
    return client().create_logout_url(
        post_logout_redirect_uri=post_logout_redirect_uri,
        id_token_hint=id_token or None,
        client_id=settings.BWV_OIDC_CLIENT_ID,
    )["url"]
