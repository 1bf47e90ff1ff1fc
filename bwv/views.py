from __future__ import annotations

import logging
import uuid

from csp.decorators import csp_update
from django.db import connection
from django.http import JsonResponse
from django.shortcuts import render
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET
from drf_spectacular.views import SpectacularSwaggerSplitView

from blobstore import blob_store
from bwv.celery import app
from common.auth import staff_required
from common.roles import Role, user_has_role

log = logging.getLogger(__name__)


def _check_database() -> str:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
        cursor.fetchone()
    return "ok"


def _check_storage() -> str:
    blob_store().check()
    return "ok"


def _check_broker() -> str:
    with app.connection_for_write() as conn:
        conn.ensure_connection(max_retries=1, timeout=3)
    return "ok"


@never_cache
@require_GET
def healthz(request):
    """Reports whether the database, the media storage and the task broker answer. 503 if not."""
    report, healthy = {}, True
    for name, check in (
        ("database", _check_database),
        ("storage", _check_storage),
        ("broker", _check_broker),
    ):
        try:
            report[name] = check()
        except Exception as exc:
            # Details go to the log, not to an unauthenticated caller.
            ref = uuid.uuid4().hex[:8]
            log.warning("healthz %s failed (%s): %r", name, ref, exc)
            report[name] = f"error {ref}"
            healthy = False
    return JsonResponse(
        {"status": "ok" if healthy else "error", **report}, status=200 if healthy else 503
    )


@staff_required
def home(request):
    return render(
        request,
        "staff/home.html",
        {"is_system_admin": user_has_role(request.user, Role.SYSTEM_ADMIN)},
    )


# Swagger UI with its start-up script served as a file (`?script`) and no inline style (our
# template), so the API docs work under the Content-Security-Policy. Its stylesheet draws icons as
# data: URLs: images only, and on this page only.
api_docs_view = csp_update({"img-src": ["data:"]})(
    SpectacularSwaggerSplitView.as_view(url_name="api-schema", template_name="api_docs.html")
)
