"""The guard on every staff page: signed in with a password *and* verified by a second factor."""

from __future__ import annotations

import functools
from urllib.parse import urlencode

from django.shortcuts import redirect

LOGIN_URL = "/accounts/login/"
OTP_URL = "/accounts/otp/"


def staff_required(view):
    """Signed in with password and second factor; otherwise off to the step that is missing."""

    @functools.wraps(view)
    def wrapped(request, *args, **kwargs):
        if not request.user.is_authenticated:
            return redirect(f"{LOGIN_URL}?{urlencode({'next': request.get_full_path()})}")
        if not request.user.is_verified():
            return redirect(f"{OTP_URL}?{urlencode({'next': request.get_full_path()})}")
        return view(request, *args, **kwargs)

    return wrapped
