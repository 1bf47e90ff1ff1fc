"""Directory sign-in (OpenID Connect) against the real test provider: the code flow with PKCE, the
second factor from `amr`/`acr`, roles and boroughs from group claims at every sign-in, accounts by
issuer and subject, refusals that change nothing, the password form kept for break-glass accounts,
and sign-out at the provider too."""

from urllib.parse import parse_qs, urlencode, urlparse

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import AnonymousUser, Permission
from django_otp import DEVICE_ID_SESSION_KEY

from accounts.models import DirectoryDevice, DirectoryIdentity
from common.roles import Role, roles_sync, user_roles
from custody.models import AuditEvent
from devices.models import Officer
from devices.selectors import user_borough
from tests import factories as f
from tests.oidc import TestDirectory

pytestmark = pytest.mark.django_db
LOCAL_PASSWORD = "correct-horse-battery-9"


@pytest.fixture
def directory(settings):
    directory = TestDirectory()
    directory.switch_on(settings, "http://testserver")
    settings.BWV_OIDC_MFA_AMR = ["mfa"]
    settings.BWV_OIDC_MFA_ACR = []
    settings.BWV_OIDC_CLOCK_SKEW_SECONDS = 0
    roles_sync()
    f.borough("QA")
    f.borough("EK")
    yield directory
    directory.clear_faults()


def _start(client, next_path: str = "/") -> str:
    answer = client.get(f"/accounts/directory/start/?{urlencode({'next': next_path})}")
    assert answer.status_code == 302, answer
    return answer["Location"]


def _back(client, url: str):
    """The browser arrives back at the site's callback with what the provider put in the URL."""
    parts = urlparse(url)
    assert parts.netloc == "testserver" and parts.path == "/accounts/directory/callback/", url
    return client.get(f"{parts.path}?{parts.query}")


def _sign_in(client, directory, login: str, next_path: str = "/"):
    return _back(client, directory.sign_in(_start(client, next_path), login))


def _refusals() -> list[dict]:
    return [e.detail for e in AuditEvent.objects.filter(action="auth.directory_refused")]


def _signed_out(client) -> bool:
    return "_auth_user_id" not in client.session


# -- Signing in ----------------------------------------------------------------------------------


def test_the_sign_in_page_offers_the_directory_and_keeps_the_password_form_for_break_glass(
    client, directory
):
    page = client.get("/accounts/login/?next=/retention/").content.decode()
    assert "Sign in with Test Constabulary" in page
    assert 'href="/accounts/directory/start/?next=%2Fretention%2F"' in page
    assert "break-glass accounts only" in page


def test_the_flow_uses_pkce_a_nonce_and_the_providers_discovered_endpoints(client, directory):
    url = urlparse(_start(client))
    query = parse_qs(url.query)
    assert f"{url.scheme}://{url.netloc}{url.path}" == f"{directory.issuer}/auth"
    assert query["code_challenge_method"] == ["S256"] and len(query["code_challenge"][0]) >= 43
    assert query["nonce"][0] and query["state"][0] and query["response_type"] == ["code"]
    assert query["client_id"] == [directory.client_id]


def test_a_directory_sign_in_with_mfa_is_verified_and_gets_the_mapped_role_and_borough(
    client, directory
):
    login = directory.account(groups=["bwv-sergeants-qa", "some-other-group"])
    authorize = _start(client, "/retention/")
    key_before = client.cookies["sessionid"].value
    answer = _back(client, directory.sign_in(authorize, login))
    assert answer.status_code == 302 and answer["Location"] == "/retention/"
    assert client.cookies["sessionid"].value != key_before
    identity = DirectoryIdentity.objects.get(issuer=directory.issuer, subject=login)
    user = identity.user
    assert not user.has_usable_password()
    assert user_roles(user) == {Role.CUSTODY_SERGEANT}
    assert user_borough(user).code == "QA"
    assert (
        client.session[DEVICE_ID_SESSION_KEY]
        == DirectoryDevice.objects.get(user=user).persistent_id
    )
    # Verified by the directory's second factor: staff pages open without the TOTP step.
    assert client.get("/retention/").status_code == 200
    actions = list(
        AuditEvent.objects.filter(object_type="auth.user", object_id=str(user.pk))
        .order_by("seq")
        .values_list("action", flat=True)
    )
    assert actions == [
        "auth.directory_account_created",
        "auth.roles_changed",
        "auth.directory_signed_in",
        "auth.signed_in",
    ]
    signed_in = AuditEvent.objects.get(action="auth.signed_in", object_id=str(user.pk))
    assert signed_in.detail["factor"] == "directory"


def test_without_the_mfa_claim_the_totp_step_is_still_asked(client, directory):
    login = directory.account(groups=["bwv-sergeants-qa"], amr=["pwd"])
    answer = _sign_in(client, directory, login, "/retention/")
    assert answer.status_code == 302
    assert answer["Location"] == "/accounts/otp/?next=%2Fretention%2F"
    assert not _signed_out(client) and DEVICE_ID_SESSION_KEY not in client.session
    assert client.get("/retention/")["Location"].startswith("/accounts/otp/")
    page = client.get("/accounts/otp/?next=/retention/")
    assert b"Set up your authenticator" in page.content
    event = AuditEvent.objects.get(action="auth.directory_signed_in")
    assert event.detail["mfa"] is False and event.detail["amr"] == ["pwd"]


def test_an_acr_value_counts_as_mfa_only_when_configured(client, directory, settings):
    login = directory.account(groups=["bwv-sergeants-qa"], amr=["pwd"], acr="gold")
    assert _sign_in(client, directory, login)["Location"].startswith("/accounts/otp/")
    client.post("/accounts/logout/")
    settings.BWV_OIDC_MFA_ACR = ["gold"]
    assert _sign_in(client, directory, login)["Location"] == "/"
    assert client.get("/retention/").status_code == 200


def test_roles_and_borough_follow_the_groups_at_every_sign_in_and_a_leaver_loses_access(
    client, directory
):
    login = directory.account(groups=["bwv-sergeants-qa"])
    _sign_in(client, directory, login)
    user = DirectoryIdentity.objects.get(subject=login).user
    client.post("/accounts/logout/")

    # Moved to Camden and made a disclosure officer there.
    directory.account(login=login, groups=["bwv-sergeants-ek", "bwv-disclosure"])
    assert _sign_in(client, directory, login).status_code == 302
    user = get_user_model().objects.get(pk=user.pk)
    assert user_roles(user) == {Role.CUSTODY_SERGEANT, Role.DISCLOSURE_OFFICER}
    assert Officer.objects.get(user=user).borough.code == "EK"
    change = AuditEvent.objects.filter(action="auth.roles_changed").order_by("-seq").first()
    assert change.detail["roles_before"] == [Role.CUSTODY_SERGEANT]
    assert change.detail["borough_before"] == "QA" and change.detail["borough_after"] == "EK"
    client.post("/accounts/logout/")

    # Left the force: the directory took every group away.
    directory.account(login=login, groups=[])
    answer = _sign_in(client, directory, login)
    assert answer.status_code == 403
    assert b"no role in this service" in answer.content
    assert _signed_out(client)
    user = get_user_model().objects.get(pk=user.pk)
    assert user_roles(user) == set() and not user.is_staff and not user.is_superuser
    last = AuditEvent.objects.filter(action="auth.roles_changed").order_by("-seq").first()
    assert last.detail["roles_after"] == [] and len(last.detail["roles_before"]) == 2
    assert _refusals()[-1]["reason"] == "unmapped"


def test_a_system_admin_from_the_directory_opens_the_admin_until_the_group_goes(client, directory):
    login = directory.account(roles=["BWV.SystemAdmin"])
    _sign_in(client, directory, login)
    user = DirectoryIdentity.objects.get(subject=login).user
    assert user.is_staff and user.is_superuser
    assert client.get("/admin/").status_code == 200
    client.post("/accounts/logout/")
    directory.account(login=login, roles=[], groups=["bwv-disclosure"])
    # A role with a borough scope needs a borough: none in the map, none on record.
    assert _sign_in(client, directory, login).status_code == 403
    directory.account(login=login, roles=[], groups=["bwv-sergeants-qa"])
    _sign_in(client, directory, login)
    user.refresh_from_db()
    assert not user.is_staff and not user.is_superuser
    assert client.get("/admin/", follow=True).status_code == 403


def test_an_unmapped_user_is_refused_with_a_clear_page_and_no_account_is_made(client, directory):
    users = get_user_model().objects.count()
    login = directory.account(groups=["canteen-staff"])
    answer = _sign_in(client, directory, login)
    assert answer.status_code == 403
    page = answer.content.decode()
    assert (
        "You do not have access to body-worn video evidence" in page
        and "no role in this service" in page
    )
    assert get_user_model().objects.count() == users and not DirectoryIdentity.objects.exists()
    assert _signed_out(client)
    refusal = _refusals()[-1]
    assert refusal["reason"] == "unmapped" and refusal["claims"] == ["canteen-staff"]


def test_groups_naming_two_boroughs_are_refused(client, directory):
    login = directory.account(groups=["bwv-sergeants-qa", "bwv-sergeants-ek"])
    answer = _sign_in(client, directory, login)
    assert answer.status_code == 403 and b"more than one borough" in answer.content
    assert not DirectoryIdentity.objects.exists() and _signed_out(client)


def test_accounts_are_found_by_issuer_and_subject_never_by_email(client, directory):
    login = directory.account(groups=["bwv-officers-qa"])
    local = f.user(Role.SYSTEM_ADMIN, username=f"{login}@test-force.example")
    local.email = f"{login}@test-force.example"
    local.save()
    _sign_in(client, directory, login)
    identity = DirectoryIdentity.objects.get(subject=login)
    assert identity.user_id != local.pk
    assert identity.user.username == f"{login}@test-force.example-2"
    assert int(client.session["_auth_user_id"]) == identity.user_id
    local.refresh_from_db()
    assert local.is_superuser and user_roles(local) == {Role.SYSTEM_ADMIN}


def test_a_staff_number_claim_links_the_officer_record_already_imported(
    client, directory, settings
):
    settings.BWV_OIDC_STAFF_NUMBER_CLAIM = "employee_number"
    officer = f.officer(borough_code="QA")
    login = directory.account(groups=["bwv-officers-qa"], employee_number=officer.collar_number)
    _sign_in(client, directory, login)
    officer.refresh_from_db()
    assert officer.user == DirectoryIdentity.objects.get(subject=login).user
    # Another directory account claiming the same number takes nothing.
    other = directory.account(groups=["bwv-officers-qa"], employee_number=officer.collar_number)
    client.post("/accounts/logout/")
    answer = _sign_in(client, directory, other)
    assert answer.status_code == 403 and b"belongs to another account" in answer.content
    officer.refresh_from_db()
    assert officer.user.directory_identity.subject == login


# -- The password form while directory sign-in is on ------------------------------------------------


def test_while_directory_sign_in_is_on_passwords_work_only_for_break_glass_accounts(
    client, directory
):
    sergeant = f.user(Role.CUSTODY_SERGEANT)
    answer = client.post(
        "/accounts/login/", {"username": sergeant.username, "password": LOCAL_PASSWORD}
    )
    assert answer.status_code == 200 and _signed_out(client)
    assert b"only break-glass accounts can use this form" in answer.content

    breakglass = f.user(Role.CUSTODY_SERGEANT)
    breakglass.user_permissions.add(
        Permission.objects.get(codename="sign_in_with_password", content_type__app_label="accounts")
    )
    answer = client.post(
        "/accounts/login/", {"username": breakglass.username, "password": LOCAL_PASSWORD}
    )
    assert answer.status_code == 302 and answer["Location"].startswith("/accounts/otp/")
    client.logout()

    admin = f.user(Role.SYSTEM_ADMIN)
    answer = client.post(
        "/accounts/login/", {"username": admin.username, "password": LOCAL_PASSWORD}
    )
    assert answer.status_code == 302 and answer["Location"].startswith("/accounts/otp/")


def test_without_a_directory_its_pages_do_not_exist_and_passwords_work_for_everyone(client):
    assert client.get("/accounts/directory/start/").status_code == 404
    assert client.get("/accounts/directory/callback/?code=x&state=y").status_code == 404
    assert b"Sign in with" not in client.get("/accounts/login/").content.replace(
        b"Sign in</button>", b""
    ).replace(b"<h1>Sign in</h1>", b"")
    sergeant = f.user(Role.CUSTODY_SERGEANT)
    answer = client.post(
        "/accounts/login/", {"username": sergeant.username, "password": LOCAL_PASSWORD}
    )
    assert answer.status_code == 302


# -- Hostile callbacks: a clear page, never an error, and nothing changed -----------------------------


def _nothing_changed(client, users: int) -> None:
    assert get_user_model().objects.count() == users
    assert not DirectoryIdentity.objects.exists() and not DirectoryDevice.objects.exists()
    assert _signed_out(client)


def test_a_callback_this_browser_did_not_start_is_refused(client, directory):
    users = get_user_model().objects.count()
    login = directory.account(groups=["bwv-sergeants-qa"])
    # The attacker's own sign-in, delivered to the victim's browser (login CSRF).
    callback = directory.sign_in(_start(client), login)
    victim = type(client)()
    answer = _back(victim, callback)
    assert answer.status_code == 400
    assert b"not started from this browser" in answer.content
    _nothing_changed(victim, users)
    assert _refusals()[-1]["reason"] == "state_mismatch"


def test_a_callback_with_no_code_is_refused(client, directory):
    users = get_user_model().objects.count()
    state = parse_qs(urlparse(_start(client)).query)["state"][0]
    answer = client.get(f"/accounts/directory/callback/?state={state}")
    assert answer.status_code == 400 and b"sent no sign-in code" in answer.content
    _nothing_changed(client, users)
    assert _refusals()[-1]["reason"] == "missing_code"


def test_a_callback_with_the_providers_error_is_refused(client, directory):
    state = parse_qs(urlparse(_start(client)).query)["state"][0]
    answer = client.get(f"/accounts/directory/callback/?state={state}&error=access_denied")
    assert answer.status_code == 400 and b"did not sign you in" in answer.content
    assert _signed_out(client)


def test_a_callback_used_twice_is_refused_the_second_time(client, directory):
    login = directory.account(groups=["bwv-sergeants-qa"])
    callback = directory.sign_in(_start(client), login)
    assert _back(client, callback).status_code == 302
    client.post("/accounts/logout/")
    answer = _back(client, callback)
    assert answer.status_code == 400 and _signed_out(client)


def test_a_tampered_id_token_is_refused(client, directory):
    users = get_user_model().objects.count()
    login = directory.account(groups=["bwv-sergeants-qa"])
    callback = directory.sign_in(_start(client), login)
    # Fault injection: a real provider never alters its own tokens; the test provider changes the
    # claims of the next ID token after signing it (as a party on the way would).
    directory.fault("tamper")
    answer = _back(client, callback)
    assert answer.status_code == 400 and b"could not be checked" in answer.content
    _nothing_changed(client, users)
    assert _refusals()[-1]["reason"] == "id_token_bad_signature"


def test_an_expired_id_token_is_refused(client, directory):
    users = get_user_model().objects.count()
    login = directory.account(groups=["bwv-sergeants-qa"], id_token_ttl=1)
    callback = directory.sign_in(_start(client), login)
    # Fault injection: the provider's token answer (an ID token good for one second) is held
    # back for three seconds, as on a back channel slow enough for it to expire on the way.
    directory.fault("delay", seconds=3)
    answer = _back(client, callback)
    assert answer.status_code == 400
    _nothing_changed(client, users)
    assert _refusals()[-1]["reason"] == "id_token_expired_token:exp"


def test_an_id_token_issued_to_another_application_is_refused(client, directory, settings):
    login = directory.account(groups=["bwv-sergeants-qa"])
    # A real token of the same provider for another application registered with it.
    other_id, other_secret = directory.register_client("http://testserver")
    settings.BWV_OIDC_CLIENT_ID, settings.BWV_OIDC_CLIENT_SECRET = other_id, other_secret
    other_browser = type(client)()
    assert _sign_in(other_browser, directory, login).status_code == 302
    settings.BWV_OIDC_CLIENT_ID = directory.client_id
    settings.BWV_OIDC_CLIENT_SECRET = directory.client_secret
    users = get_user_model().objects.count()
    identities = DirectoryIdentity.objects.count()
    callback = directory.sign_in(_start(client), login)
    # Fault injection: the other application's ID token is handed back in place of ours.
    directory.fault("replay", from_client=other_id)
    answer = _back(client, callback)
    assert answer.status_code == 400 and _signed_out(client)
    assert get_user_model().objects.count() == users
    assert DirectoryIdentity.objects.count() == identities
    assert _refusals()[-1]["reason"] == "id_token_invalid_claim:aud"


def test_an_id_token_replayed_from_an_earlier_sign_in_is_refused_for_its_nonce(client, directory):
    login = directory.account(groups=["bwv-sergeants-qa"])
    assert _sign_in(client, directory, login).status_code == 302
    client.post("/accounts/logout/")
    sessions_before = AuditEvent.objects.filter(action="auth.directory_signed_in").count()
    callback = directory.sign_in(_start(client), login)
    # Fault injection: the provider's earlier ID token for us (its nonce that sign-in's) is handed
    # back in place of the new one.
    directory.fault("replay")
    answer = _back(client, callback)
    assert answer.status_code == 400 and _signed_out(client)
    assert _refusals()[-1]["reason"] == "id_token_invalid_claim:nonce"
    assert AuditEvent.objects.filter(action="auth.directory_signed_in").count() == sessions_before


def test_a_provider_that_cannot_be_reached_is_a_clear_page(client, directory, settings):
    settings.BWV_OIDC_ISSUER = "http://127.0.0.1:9"
    answer = client.get("/accounts/directory/start/")
    assert answer.status_code == 503 and b"could not be reached" in answer.content


# -- Signing out -------------------------------------------------------------------------------------


def test_signing_out_of_a_directory_session_ends_the_providers_session_too(client, directory):
    login = directory.account(groups=["bwv-sergeants-qa"])
    _sign_in(client, directory, login)
    id_token = client.session["bwv_directory_id_token"]
    answer = client.post("/accounts/logout/")
    assert answer.status_code == 200 and _signed_out(client)
    target = urlparse(answer["Refresh"].split("url=", 1)[1])
    assert f"{target.scheme}://{target.netloc}{target.path}" == f"{directory.issuer}/session/end"
    query = parse_qs(target.query)
    assert query["id_token_hint"] == [id_token]
    assert query["post_logout_redirect_uri"] == ["http://testserver/accounts/signed-out/"]
    assert b'id="directory-sign-out"' in answer.content
    assert AuditEvent.objects.filter(action="auth.signed_out").exists()


def test_signing_out_of_a_password_session_stays_here(client, directory):
    user = f.user(Role.SYSTEM_ADMIN)
    f.sign_in(client, user)
    answer = client.post("/accounts/logout/")
    assert answer.status_code == 200 and "Refresh" not in answer
    assert _signed_out(client)


# -- How long a directory session lasts ----------------------------------------------------------------


def test_a_directory_session_ends_after_its_lifetime_however_busy(client, directory, settings):
    login = directory.account(groups=["bwv-sergeants-qa"])
    _sign_in(client, directory, login)
    user = DirectoryIdentity.objects.get(subject=login).user
    settings.BWV_OIDC_SESSION_MAX_SECONDS = 3600
    assert client.get("/retention/").status_code == 200
    # Nine hours of constant use later (the idle timeout never struck): the session began before
    # the limit, so it ends, and the staff page asks to sign in again.
    session = client.session
    session["bwv_directory_signed_in_at"] -= 3601
    session.save()
    answer = client.get("/retention/")
    assert answer.status_code == 302 and answer["Location"].startswith("/accounts/login/")
    assert _signed_out(client)
    ended = AuditEvent.objects.get(action="auth.signed_out", object_id=str(user.pk))
    assert ended.detail == {"directory": True, "reason": "session_lifetime"}


def test_the_session_lifetime_does_not_touch_password_sessions(client, directory, settings):
    admin = f.user(Role.SYSTEM_ADMIN)
    f.sign_in(client, admin)
    settings.BWV_OIDC_SESSION_MAX_SECONDS = 0
    assert client.get("/admin/").status_code == 200


# -- Permission matrix of the sign-in pages ----------------------------------------------------------


@pytest.mark.parametrize("who", ["anonymous", "officer from the directory", "break-glass admin"])
def test_the_directory_pages_are_the_same_for_anyone_and_a_stray_callback_changes_no_session(
    client, directory, who
):
    user = None
    if who == "officer from the directory":
        login = directory.account(groups=["bwv-officers-qa"])
        _sign_in(client, directory, login)
        user = DirectoryIdentity.objects.get(subject=login).user
    elif who == "break-glass admin":
        user = f.signed_in(client, Role.SYSTEM_ADMIN)
    if user is not None:
        assert client.get("/").wsgi_request.user == user
    # Starting a sign-in: off to the provider, whoever asks (someone signed in may change user).
    assert _start(client).startswith(f"{directory.issuer}/auth?")
    # A callback this browser's flow did not produce is refused, and whoever was signed in still is.
    answer = client.get("/accounts/directory/callback/?code=stolen&state=guessed")
    assert answer.status_code == 400 and b"not started from this browser" in answer.content
    assert client.get("/").wsgi_request.user == (user or AnonymousUser())
    assert client.get("/accounts/signed-out/").status_code == 200
    assert client.get("/accounts/logout/").status_code == 405  # signing out is a POST (CSRF)
    answer = client.post("/accounts/logout/")
    assert answer.status_code == 200 and _signed_out(client)
    assert AuditEvent.objects.filter(action="auth.signed_out").count() == (user is not None)


def test_directory_identities_in_the_admin_are_for_system_admins_and_read_only(client, directory):
    login = directory.account(groups=["bwv-sergeants-qa"])
    _sign_in(type(client)(), directory, login)
    identity = DirectoryIdentity.objects.get(subject=login)
    pages = [
        "/admin/accounts/directoryidentity/",
        f"/admin/accounts/directoryidentity/{identity.pk}/change/",
    ]
    for path in pages:
        assert client.get(path)["Location"].startswith("/accounts/login/"), path
    # A custody sergeant, signed in by the directory with both factors: no admin.
    _sign_in(client, directory, directory.account(groups=["bwv-sergeants-qa"]))
    assert client.get("/retention/").status_code == 200
    for path in pages:
        assert client.get(path, follow=True).status_code == 403, path
    client.post("/accounts/logout/")
    admin = f.user(Role.SYSTEM_ADMIN)
    f.sign_in(client, admin)
    listing = client.get(pages[0])
    assert listing.status_code == 200 and login in listing.content.decode()
    assert client.get(pages[1]).status_code == 200
    assert client.get("/admin/accounts/directoryidentity/add/").status_code == 403
    answer = client.post(pages[1], {"subject": "someone-else", "issuer": directory.issuer})
    assert answer.status_code == 403
    identity.refresh_from_db()
    assert identity.subject == login
