"""Staff sign-in: password (locked out after repeated failures by django-axes), then a second factor.

Every staff role needs the second factor. A first sign-in enrols an authenticator app from a QR
code (rendered here as SVG, nothing fetched from elsewhere) and then shows single-use backup codes
once; a backup code stands in for the authenticator when the phone is lost. The session key changes
when the second factor is verified, so a session id known before that step is worth nothing after
it. Sign-ins, failed sign-ins, backup codes and second-factor resets are audited. `common.auth.staff_required`
guards every staff page: signed in *and* verified by the second factor.

Directory sign-in (OpenID Connect, when BWV_OIDC_ISSUER is set) starts at `directory_start` and
comes back to `directory_callback`: the callback and its ID token are checked (accounts.directory),
then the account is found by issuer and subject and its roles set (accounts.services). The session
counts as verified at once only when the token says the directory asked for more than one factor;
otherwise the TOTP step follows, as after a password. Any refusal is a page that says why, never an
error, and is audited. Signing out of a directory session also ends the directory's session where
the provider offers RP-initiated logout.
"""

from __future__ import annotations

import base64
import re
import time
from io import BytesIO
from urllib.parse import urlencode

import qrcode
import qrcode.image.svg
from django import forms
from django.conf import settings
from django.contrib import messages
from django.contrib.auth import BACKEND_SESSION_KEY, get_user_model, login
from django.contrib.auth import views as auth_views
from django.contrib.auth.forms import AuthenticationForm
from django.db import transaction
from django.http import Http404
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.cache import add_never_cache_headers
from django.views.decorators.cache import never_cache
from django_otp import login as otp_login
from django_otp.plugins.otp_static.models import StaticDevice
from django_otp.plugins.otp_totp.models import TOTPDevice

from accounts import directory
from accounts.directory import DirectoryError
from accounts.middleware import DIRECTORY_BACKEND, DIRECTORY_SIGNED_IN_AT
from accounts.services import (
    AccountError,
    DirectoryRefusal,
    backup_codes_issue,
    backup_codes_left,
    directory_device_for,
    directory_refusal_record,
    directory_sign_in,
    second_factor_reset,
)
from common.auth import OTP_URL, staff_required
from common.roles import Role, user_has_role
from common.web import client_ip, safe_local_path
from custody.services import audit_record

TOTP_CODE = re.compile(r"[0-9]{6}")


def _safe_next(request, default: str = "/") -> str:
    return safe_local_path(request, request.POST.get("next") or request.GET.get("next"), default)


DIRECTORY_NEXT = "bwv_directory_next"
DIRECTORY_ID_TOKEN = "bwv_directory_id_token"  # noqa: S105 -- a session key, not a secret


class PasswordSignInForm(AuthenticationForm):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if directory.enabled():
            self.error_messages = {
                **self.error_messages,
                "invalid_login": (
                    "Enter a correct user name and password. While sign-in with "
                    f"{settings.BWV_OIDC_NAME} is on, only break-glass accounts can use this form."
                ),
            }


class SignInView(auth_views.LoginView):
    template_name = "registration/login.html"
    authentication_form = PasswordSignInForm

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        if directory.enabled():
            context["directory_name"] = settings.BWV_OIDC_NAME
            context["directory_start"] = (
                f"{reverse('directory-start')}?{urlencode({'next': _safe_next(self.request)})}"
            )
        return context

    def form_invalid(self, form):
        username = (form.data.get("username") or "")[:150]
        audit_record(
            actor=None,
            action="auth.sign_in_failed",
            object_type="auth.user",
            object_id=username or "-",
            detail={"ip": client_ip(self.request)},
        )
        return super().form_invalid(form)

    def get_success_url(self):
        # The password alone signs nobody in to staff pages: the second factor comes next.
        return f"{OTP_URL}?{urlencode({'next': _safe_next(self.request)})}"


class TokenForm(forms.Form):
    token = forms.CharField(
        label="Code from your authenticator app",
        min_length=6,
        max_length=20,
        widget=forms.TextInput(
            attrs={"autocomplete": "one-time-code", "autofocus": True, "spellcheck": "false"}
        ),
    )

    def clean_token(self) -> str:
        # Backup codes are shown in two groups of four; spaces, hyphens and case do not matter.
        return re.sub(r"[\s-]", "", self.cleaned_data["token"]).lower()


def _qr_svg(url: str) -> str:
    image = qrcode.make(url, image_factory=qrcode.image.svg.SvgPathImage, box_size=8)
    out = BytesIO()
    image.save(out)
    return out.getvalue().decode()


def _wait_message(device) -> str | None:
    allowed, why = device.verify_is_allowed()
    if allowed:
        return None
    wait = (why or {}).get("locked_until")
    seconds = max(1, int((wait - timezone.now()).total_seconds()) + 1) if wait else 1
    return f"Too many wrong codes: wait {seconds} seconds and try again."


def _signed_in(request, device, *, factor: str) -> None:
    """The second factor is verified: mark the session, then give it a new key, so that a session
    id seen before this step (a shared machine, a fixation attempt) is not a signed-in one."""
    otp_login(request, device)
    request.session.cycle_key()
    audit_record(
        actor=request.user,
        action="auth.signed_in",
        obj=request.user,
        detail={"ip": client_ip(request), "factor": factor},
    )


def _verify(device, code: str) -> tuple[bool, str | None]:
    """Check `code` against the device under a lock on its row, so that two requests at once
    cannot both use one backup code (or one TOTP code). Returns whether it was right, and the
    message to show instead while the device is throttled after wrong codes."""
    with transaction.atomic():
        locked = type(device).objects.select_for_update().filter(pk=device.pk).first()
        if locked is None:  # removed meanwhile (a reset)
            return False, None
        if wait := _wait_message(locked):
            return False, wait
        right = locked.verify_token(code)
    return right, None


def otp_step(request):
    """Verify a TOTP code or a backup code; on the first sign-in, enrol the authenticator first."""
    if not request.user.is_authenticated:
        return redirect("/accounts/login/")
    if request.user.is_verified():
        # Done already (a reload of the page that answered the code, the back button): go on, and
        # never show the backup codes a second time.
        return redirect(_safe_next(request))
    user = request.user
    confirmed = TOTPDevice.objects.filter(user=user, confirmed=True).first()
    device = confirmed or TOTPDevice.objects.filter(user=user, confirmed=False).first()
    if device is None:
        device = TOTPDevice.objects.create(user=user, name="Authenticator", confirmed=False)
    enrolling = not device.confirmed
    backup = None if enrolling else StaticDevice.objects.filter(user=user, confirmed=True).first()
    form = TokenForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        code = form.cleaned_data["token"]
        # Six digits are the authenticator's; anything else can only be a backup code.
        by_backup = not TOTP_CODE.fullmatch(code)
        checked = backup if by_backup else device
        right, wait = _verify(checked, code) if checked is not None else (False, None)
        if checked is None:
            form.add_error("token", "Enter the six digits your authenticator app shows.")
        elif wait:
            form.add_error("token", wait)
        elif right:
            checked.refresh_from_db()
            return _second_factor_passed(request, checked, by_backup=by_backup)
        else:
            audit_record(
                actor=user,
                action="auth.sign_in_failed",
                obj=user,
                detail={"ip": client_ip(request), "step": "backup_code" if by_backup else "totp"},
            )
            form.add_error(
                "token",
                "That backup code is not right, or it was used already."
                if by_backup
                else "That code is not right. Check the time on your phone and try again.",
            )
    context = {"form": form, "enrolling": enrolling, "next": _safe_next(request)}
    if enrolling:
        context["qr_svg"] = _qr_svg(device.config_url)
        # For apps that cannot scan: the same secret, in the base32 that authenticator apps take.
        context["secret"] = base64.b32encode(device.bin_key).decode().rstrip("=")
    return render(request, "registration/otp.html", context)


def _second_factor_passed(request, device, *, by_backup: bool):
    user = request.user
    next_path = _safe_next(request)
    if by_backup:
        _signed_in(request, device, factor="backup_code")
        left = backup_codes_left(user=user)
        audit_record(actor=user, action="auth.backup_code_used", obj=user, detail={"left": left})
        messages.warning(
            request,
            f"You signed in with a backup code; {left} left. If your phone is lost, ask a system "
            "admin to reset your second factor, then set up the authenticator again.",
        )
        return redirect(next_path)
    if not device.confirmed:
        device.confirmed = True
        device.save(update_fields=["confirmed"])
        audit_record(actor=user, action="auth.totp_enrolled", obj=user)
    _signed_in(request, device, factor="totp")
    if backup_codes_left(user=user) == 0:
        # At enrolment (and for anyone who has used them all): a new set, shown once, in the answer
        # to this request itself. They are kept nowhere else (not in the session) but where
        # django-otp keeps them, and a reload goes on to `next` (see above) instead of showing them.
        codes = backup_codes_issue(user=user, actor=user)
        response = render(
            request,
            "registration/backup_codes.html",
            {"codes": [f"{code[:4]} {code[4:]}" for code in codes], "next": next_path},
        )
        add_never_cache_headers(response)
        return response
    return redirect(next_path)


class SecondFactorResetForm(forms.Form):
    username = forms.CharField(
        label="User name",
        max_length=150,
        error_messages={"required": "Enter the user name of the person who lost their phone."},
    )
    reason = forms.CharField(
        label="Reason",
        max_length=500,
        error_messages={"required": "Enter the reason for the reset."},
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text="For example: phone lost on 3 March, reported by the officer in person.",
    )

    def clean_username(self):
        user = get_user_model().objects.filter(username=self.cleaned_data["username"]).first()
        if user is None:
            raise forms.ValidationError("There is no user with that name.")
        return user


@never_cache
@staff_required
def second_factor_reset_view(request):
    """A system admin resets the second factor of someone who lost their phone, with a reason."""
    if not user_has_role(request.user, Role.SYSTEM_ADMIN):
        raise Http404
    form = SecondFactorResetForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        target = form.cleaned_data["username"]
        try:
            done = second_factor_reset(
                user=target, actor=request.user, reason=form.cleaned_data["reason"]
            )
        except AccountError as exc:
            form.add_error(None, str(exc))
        else:
            messages.success(
                request,
                f"The second factor of {target.get_username()} was reset: "
                f"{done['devices_removed']} device(s) removed, {done['sessions_ended']} "
                "session(s) ended. They set up an authenticator at their next sign-in.",
            )
            return redirect("second-factor-reset")
    return render(request, "staff/second_factor_reset.html", {"form": form})


def _refused(request, message: str, *, status: int, title: str = "Signing in did not work"):
    return render(
        request,
        "registration/directory_refused.html",
        {"title": title, "message": message, "directory_name": settings.BWV_OIDC_NAME},
        status=status,
    )


@never_cache
def directory_start(request):
    """Send the browser to the directory to sign in (a link, not a form: the page's
    Content-Security-Policy lets forms post only to this site)."""
    if not directory.enabled():
        raise Http404
    request.session[DIRECTORY_NEXT] = _safe_next(request)
    try:
        return directory.authorization_redirect(
            request, request.build_absolute_uri(reverse("directory-callback"))
        )
    except DirectoryError as exc:
        directory_refusal_record(reason=exc.reason, ip=client_ip(request))
        return _refused(request, str(exc), status=503)


@never_cache
def directory_callback(request):
    """Where the directory sends the browser back: check everything, then sign in (or refuse,
    changing nothing but the audit log)."""
    if not directory.enabled():
        raise Http404
    ip = client_ip(request)
    try:
        assertion = directory.callback_assertion(request)
    except DirectoryError as exc:
        directory_refusal_record(reason=exc.reason, ip=ip)
        return _refused(request, str(exc), status=400)
    try:
        user = directory_sign_in(assertion=assertion, ip=ip)
    except DirectoryRefusal as refusal:
        return _refused(
            request,
            str(refusal),
            status=403,
            title="You do not have access to body-worn video evidence",
        )
    next_path = request.session.pop(DIRECTORY_NEXT, "/")
    login(request, user, backend=DIRECTORY_BACKEND)
    request.session[DIRECTORY_ID_TOKEN] = assertion.id_token
    request.session[DIRECTORY_SIGNED_IN_AT] = int(time.time())
    if assertion.mfa:
        # The directory asked for a second factor: this session is verified, as after a TOTP
        # code (and its key changes now, as there).
        _signed_in(request, directory_device_for(user=user), factor="directory")
        return redirect(next_path)
    request.session.cycle_key()
    return redirect(f"{OTP_URL}?{urlencode({'next': next_path})}")


class SignOutView(auth_views.LogoutView):
    """Ends the session here; for a directory session, then the directory's own session too."""

    def post(self, request, *args, **kwargs):
        user = request.user if request.user.is_authenticated else None
        from_directory = request.session.get(BACKEND_SESSION_KEY) == DIRECTORY_BACKEND
        id_token = request.session.get(DIRECTORY_ID_TOKEN, "")
        response = super().post(request, *args, **kwargs)
        if user is not None:
            audit_record(
                actor=user,
                action="auth.signed_out",
                obj=user,
                detail={"ip": client_ip(request), "directory": from_directory},
            )
        if not (from_directory and directory.enabled()):
            return response
        url = directory.logout_url(id_token, request.build_absolute_uri(reverse("signed-out")))
        if url is None:
            return response
        # A redirect would be refused: the sign-out is a form, and the Content-Security-Policy
        # lets forms lead only to this site. The page goes on by itself (Refresh) and has a link.
        response = render(
            request,
            "registration/directory_signed_out.html",
            {"logout_url": url, "directory_name": settings.BWV_OIDC_NAME},
        )
        response["Refresh"] = f"0; url={url}"
        add_never_cache_headers(response)
        return response


def signed_out(request):
    """Where the directory sends the browser after its own sign-out."""
    return render(request, "registration/logged_out.html")
