"""Staff sign-in: password (locked out after repeated failures by django-axes), then a TOTP code.

Every staff role needs the second factor. A first sign-in enrols an authenticator app from a QR
code (rendered here as SVG, nothing fetched from elsewhere). Sign-ins and failed sign-ins are
audited. `staff_required` guards every staff page: signed in *and* verified by TOTP.
"""

from __future__ import annotations

import base64
import functools
from io import BytesIO
from urllib.parse import urlencode

import qrcode
import qrcode.image.svg
from django import forms
from django.contrib.auth import views as auth_views
from django.shortcuts import redirect, render
from django.utils import timezone
from django.utils.http import url_has_allowed_host_and_scheme
from django_otp import login as otp_login
from django_otp.plugins.otp_totp.models import TOTPDevice

from bwv.web import client_ip
from evidence.services import audit_record

OTP_URL = "/accounts/otp/"


def _safe_next(request, default: str = "/") -> str:
    target = request.POST.get("next") or request.GET.get("next") or default
    if url_has_allowed_host_and_scheme(target, allowed_hosts={request.get_host()},
                                       require_https=request.is_secure()):  # fmt: skip
        return target
    return default


def staff_required(view):
    """Signed in with password and TOTP; otherwise off to the step that is missing."""

    @functools.wraps(view)
    def wrapped(request, *args, **kwargs):
        if not request.user.is_authenticated:
            return redirect(f"/accounts/login/?{urlencode({'next': request.get_full_path()})}")
        if not request.user.is_verified():
            return redirect(f"{OTP_URL}?{urlencode({'next': request.get_full_path()})}")
        return view(request, *args, **kwargs)

    return wrapped


class SignInView(auth_views.LoginView):
    template_name = "registration/login.html"

    def form_invalid(self, form):
        username = (form.data.get("username") or "")[:150]
        audit_record(actor=None, action="auth.sign_in_failed", object_type="auth.user",
                     object_id=username or "-",
                     detail={"ip": client_ip(self.request)})  # fmt: skip
        return super().form_invalid(form)

    def get_success_url(self):
        # The password alone signs nobody in to staff pages: the second factor comes next.
        return f"{OTP_URL}?{urlencode({'next': _safe_next(self.request)})}"


class TokenForm(forms.Form):
    token = forms.CharField(
        label="Code from your authenticator app", min_length=6, max_length=8,
        widget=forms.TextInput(attrs={"autocomplete": "one-time-code", "inputmode": "numeric",
                                      "autofocus": True}),
    )  # fmt: skip


def _qr_svg(url: str) -> str:
    image = qrcode.make(url, image_factory=qrcode.image.svg.SvgPathImage, box_size=8)
    out = BytesIO()
    image.save(out)
    return out.getvalue().decode()


def otp_step(request):
    """Verify a TOTP code; on the first sign-in, enrol the authenticator first."""
    if not request.user.is_authenticated:
        return redirect("/accounts/login/")
    user = request.user
    confirmed = TOTPDevice.objects.filter(user=user, confirmed=True).first()
    device = confirmed or TOTPDevice.objects.filter(user=user, confirmed=False).first()
    if device is None:
        device = TOTPDevice.objects.create(user=user, name="Authenticator", confirmed=False)
    form = TokenForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        allowed, why = device.verify_is_allowed()
        if not allowed:
            wait = (why or {}).get("locked_until")
            seconds = max(1, int((wait - timezone.now()).total_seconds()) + 1) if wait else 1
            form.add_error("token", f"Too many wrong codes: wait {seconds} seconds and try again.")
        elif device.verify_token(form.cleaned_data["token"].strip()):
            if not device.confirmed:
                device.confirmed = True
                device.save(update_fields=["confirmed"])
                audit_record(actor=user, action="auth.totp_enrolled", obj=user)
            otp_login(request, device)
            audit_record(actor=user, action="auth.signed_in", obj=user,
                         detail={"ip": client_ip(request)})  # fmt: skip
            return redirect(_safe_next(request))
        else:
            audit_record(actor=user, action="auth.sign_in_failed", obj=user,
                         detail={"ip": client_ip(request), "step": "totp"})  # fmt: skip
            form.add_error(
                "token", "That code is not right. Check the time on your phone and try again."
            )
    context = {"form": form, "enrolling": not device.confirmed, "next": _safe_next(request)}
    if not device.confirmed:
        context["qr_svg"] = _qr_svg(device.config_url)
        # For apps that cannot scan: the same secret, in the base32 that authenticator apps take.
        context["secret"] = base64.b32encode(device.bin_key).decode().rstrip("=")
    return render(request, "registration/otp.html", context)
