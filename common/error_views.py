"""Error pages in the site's layout, each with a way on (bwv/urls.py's handlers, and
CSRF_FAILURE_VIEW). Under /api/ the answer stays JSON, as the API's own 404s are.

The server error page is drawn without the request: whatever failed (the database, the session)
must not fail again while the page is drawn, so it shows the force's identity and no more.
"""

from __future__ import annotations

from django.http import HttpResponse, JsonResponse
from django.shortcuts import render
from django.template import loader

from common.context_processors import force_identity

PUBLIC_PREFIXES = ("/requests/", "/share/")


def _layout(request) -> str:
    return "public/base.html" if request.path.startswith(PUBLIC_PREFIXES) else "base.html"


def _page(request, template: str, status: int, **context) -> HttpResponse:
    if request.path.startswith("/api/"):
        return JsonResponse({"detail": context.get("detail", "Not found.")}, status=status)
    return render(request, template, {"layout": _layout(request), **context}, status=status)


def bad_request(request, exception=None):
    return _page(request, "400.html", 400, detail="Bad request.")


def permission_denied(request, exception=None):
    # The reason is one of ours (PermissionDenied("...") in a view), written for the reader.
    reason = str(exception) if exception and str(exception) else ""
    return _page(request, "403.html", 403, detail="Forbidden.", reason=reason)


def page_not_found(request, exception=None):
    return _page(request, "404.html", 404, detail="Not found.")


def server_error(request):
    if request.path.startswith("/api/"):
        return JsonResponse({"detail": "Server error."}, status=500)
    context = {"layout": _layout(request), **force_identity()}
    return HttpResponse(loader.render_to_string("500.html", context), status=500)


def csrf_failure(request, reason=""):
    """A form sent without its token, or with one that no longer matches (a page left open
    while the session ended, cookies blocked): say so, and how to go on."""
    return _page(request, "403_csrf.html", 403, detail="CSRF check failed.")
