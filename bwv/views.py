from __future__ import annotations

import logging
import uuid

from csp.decorators import csp_update
from django.db import connection
from django.db.models import Count, Sum
from django.http import JsonResponse
from django.shortcuts import render
from django.utils import timezone
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET
from drf_spectacular.views import SpectacularSwaggerSplitView

from blobstore import blob_store
from bwv.celery import app
from common.auth import staff_required
from common.roles import Role, user_has_role
from custody.selectors import last_audit_verification
from estate.selectors import estate_queue_for
from evidence.models import Recording, RecordingState
from requests_portal.deadlines import london_date
from requests_portal.selectors import request_queue_for
from retention.selectors import last_sweep_run
from review.selectors import deletion_due_for, open_cases_of, recent_recordings_for

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


def _queue_depth() -> int:
    """Tasks waiting in the default queue: a backlog that grows means the workers are not keeping
    up (or are down)."""
    with app.connection_for_write() as conn:
        conn.ensure_connection(max_retries=1, timeout=3)
        try:
            _name, waiting, _consumers = conn.default_channel.queue_declare(
                queue=app.conf.task_default_queue, passive=True
            )
        except conn.channel_errors:
            return 0  # the queue does not exist until a task is sent to it: nothing waits
        return waiting


def _system_health() -> dict:
    """What the system admin's home shows of the platform: the last sweep, the last verification
    of the audit chain, the media store and the task queue. A service that does not answer is
    shown as such (details in the log), never as an error page."""
    stored = Recording.objects.filter(state=RecordingState.AVAILABLE).aggregate(
        count=Count("pk"), bytes=Sum("size_bytes")
    )
    health = {
        "sweep": last_sweep_run(),
        "verification": last_audit_verification(),
        "stored": stored,
        "storage_ok": True,
        "queue_ok": True,
        "queue_waiting": None,
    }
    try:
        _check_storage()
    except Exception as exc:
        log.warning("home: storage check failed: %r", exc)
        health["storage_ok"] = False
    try:
        health["queue_waiting"] = _queue_depth()
    except Exception as exc:
        log.warning("home: broker check failed: %r", exc)
        health["queue_ok"] = False
    return health


@staff_required
def home(request):
    """Each role's work queue: what needs doing now, in the user's boroughs, with the way to it."""
    user, now = request.user, timezone.now()
    context = {"is_system_admin": user_has_role(user, Role.SYSTEM_ADMIN)}
    if user_has_role(user, Role.CUSTODY_SERGEANT):
        context["review"] = {
            "recent": recent_recordings_for(user=user),
            "due": deletion_due_for(user=user, now=now),
            "cases": open_cases_of(user=user),
        }
    if user_has_role(user, Role.BOROUGH_ADMIN):
        context["estate"] = estate_queue_for(user=user, now=now)
    if user_has_role(user, Role.DISCLOSURE_OFFICER):
        context["disclosure"] = request_queue_for(user=user, today=london_date(now))
    if context["is_system_admin"]:
        context["system"] = _system_health()
    return render(request, "staff/home.html", context)


# Swagger UI with its start-up script served as a file (`?script`) and no inline style (our
# template), so the API docs work under the Content-Security-Policy. Its stylesheet draws icons as
# data: URLs: images only, and on this page only.
api_docs_view = csp_update({"img-src": ["data:"]})(
    SpectacularSwaggerSplitView.as_view(url_name="api-schema", template_name="api_docs.html")
)
