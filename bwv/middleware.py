"""A database that cannot be reached is a 503 with Retry-After, never a 500.

A PostgreSQL restart or a network blip makes every query fail with `OperationalError` (or
`InterfaceError` on a connection already broken). That is the service being briefly unavailable,
not a fault of the request: clients (docks above all) are told to come back, in a short plain
message, JSON under /api/ and text elsewhere, and nothing about the error reaches the caller.

The middleware is the outermost one. A view's database error reaches its `process_exception`;
one raised by another middleware (the session middleware saving or reading the session, say) has
already been turned into a 500 by Django when it gets back here, so Django's
`got_request_exception` signal marks such a request and the 500 is replaced.
"""

from __future__ import annotations

import logging
import sys

from django.core.signals import got_request_exception
from django.db import InterfaceError, OperationalError
from django.http import HttpResponse, JsonResponse

log = logging.getLogger(__name__)

RETRY_AFTER_SECONDS = 30
MESSAGE = "The service is briefly unavailable (its database cannot be reached); try again shortly."
DATABASE_ERRORS = (OperationalError, InterfaceError)
_MARK = "_bwv_database_unavailable"


def database_unavailable(request) -> HttpResponse:
    if request.path.startswith("/api/"):
        response = JsonResponse({"detail": MESSAGE}, status=503)
    else:
        response = HttpResponse(MESSAGE, status=503, content_type="text/plain; charset=utf-8")
    response["Retry-After"] = str(RETRY_AFTER_SECONDS)
    response["Cache-Control"] = "no-store"
    return response


def _mark_database_error(sender, request=None, **kwargs) -> None:
    # Sent by Django inside its `except` block, so the exception is the one being handled.
    if request is not None and isinstance(sys.exc_info()[1], DATABASE_ERRORS):
        setattr(request, _MARK, True)


got_request_exception.connect(_mark_database_error, dispatch_uid="bwv.database_unavailable")


class DatabaseUnavailableMiddleware:
    """Turns a database that cannot be reached, for any page or API, into a 503."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        if response.status_code == 500 and getattr(request, _MARK, False):
            replacement = database_unavailable(request)
            # Keep the security headers the inner middlewares set on the 500.
            for name, value in response.items():
                if name.lower() not in ("content-type", "content-length", "cache-control"):
                    replacement.headers.setdefault(name, value)
            return replacement
        return response

    def process_exception(self, request, exception):
        if isinstance(exception, DATABASE_ERRORS):
            log.warning(
                "database unavailable for %s %s: %s", request.method, request.path, exception
            )
            return database_unavailable(request)
        return None
