"""A session opened by directory sign-in lasts at most BWV_OIDC_SESSION_MAX_SECONDS, however busy.

The idle timeout (BWV_SESSION_IDLE_SECONDS) alone would let a session in constant use run for
ever, and roles and borough are read from the directory only at sign-in: a leaver whose groups
were taken away would keep what they had for as long as they kept clicking. With this limit they
sign in again at least once a shift, and that sign-in applies what the directory says now.

When the limit has passed, the session ends (audited as a sign-out) before the view runs, so the
request goes on as an anonymous one and the staff page asks to sign in again.
"""

from __future__ import annotations

import time

from django.conf import settings
from django.contrib.auth import BACKEND_SESSION_KEY, logout

from custody.services import audit_record

DIRECTORY_BACKEND = "accounts.backends.DirectoryBackend"
DIRECTORY_SIGNED_IN_AT = "bwv_directory_signed_in_at"


class DirectorySessionLifetimeMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        session = getattr(request, "session", None)
        if session is not None and session.get(BACKEND_SESSION_KEY) == DIRECTORY_BACKEND:
            started = session.get(DIRECTORY_SIGNED_IN_AT)
            # A directory session without its start time is treated as expired: it cannot be
            # shown to be young enough.
            age = time.time() - started if isinstance(started, int | float) else None
            if age is None or age > settings.BWV_OIDC_SESSION_MAX_SECONDS:
                user = request.user
                logout(request)
                if user.is_authenticated:
                    audit_record(
                        actor=user,
                        action="auth.signed_out",
                        obj=user,
                        detail={"directory": True, "reason": "session_lifetime"},
                    )
        return self.get_response(request)
