"""The Django admin site: only for staff who signed in with both factors.

Guarantees: no admin page (index, model pages, custom admin views, deep links) answers anyone who is
not active, `is_staff` *and* verified by the second factor in this session (django-otp's
`OTPAdminSite` check). Signing in happens on the site's own pages, never on the admin's login form:
someone without a session is sent to the password step, someone with only a password to the
second-factor step, and they come back to the admin page they asked for.
"""

from __future__ import annotations

import functools
from urllib.parse import urlencode

from django.core.exceptions import PermissionDenied
from django.shortcuts import redirect
from django.urls import reverse
from django_otp.admin import OTPAdminSite

from common.web import safe_local_path


def _sign_in_step(request, next_path: str):
    """The sign-in step the user still has to take, or None when they took both."""
    if not request.user.is_authenticated:
        return redirect(f"{reverse('login')}?{urlencode({'next': next_path})}")
    if not request.user.is_verified():
        return redirect(f"{reverse('otp')}?{urlencode({'next': next_path})}")
    return None


class AdminSite(OTPAdminSite):
    site_header = "BWV evidence administration"
    site_title = "BWV evidence administration"
    index_title = "Administration"

    def __init__(self, name: str = "admin"):
        # OTPAdminSite names itself "otpadmin"; the URLs and templates expect "admin".
        super().__init__(name)

    def admin_view(self, view, cacheable: bool = False):
        guarded = super().admin_view(view, cacheable)

        @functools.wraps(guarded)
        def inner(request, *args, **kwargs):
            step = _sign_in_step(request, request.get_full_path())
            if step is not None:
                return step
            return guarded(request, *args, **kwargs)

        return inner

    def login(self, request, extra_context=None):
        """The admin's own login form is never used: sign in on the site's pages instead."""
        next_path = safe_local_path(request, request.GET.get("next"), reverse("admin:index"))
        step = _sign_in_step(request, next_path)
        if step is not None:
            return step
        # Both factors, but not staff: the admin is not for this account.
        raise PermissionDenied("The administration pages are for system admins only.")
