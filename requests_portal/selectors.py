"""Reads of access requests, scoped: a disclosure officer sees their borough's, a system admin all."""

from __future__ import annotations

import hashlib
from datetime import date, timedelta

from django.db.models import Count, F, Q, QuerySet
from django.http import Http404
from django.utils import timezone

from common.roles import Role, user_has_role
from devices.selectors import boroughs_for
from requests_portal.models import (
    AccessRequest,
    Decision,
    IdentityDocument,
    ReleaseLink,
    RequestStatus,
)

# Requests someone still has to work on: verified, and neither answered nor closed.
OPEN_STATUSES = (
    RequestStatus.RECEIVED,
    RequestStatus.AWAITING_ID,
    RequestStatus.IN_PROGRESS,
    RequestStatus.AWAITING_APPROVAL,
)


def request_list_for(*, user) -> QuerySet[AccessRequest]:
    if user_has_role(user, Role.SYSTEM_ADMIN):
        return AccessRequest.objects.all()
    if not user_has_role(user, Role.DISCLOSURE_OFFICER):
        return AccessRequest.objects.none()
    return AccessRequest.objects.filter(borough__in=boroughs_for(user=user))


def request_get_for(*, user, request_id) -> AccessRequest:
    req = (
        request_list_for(user=user).filter(pk=request_id).first()
        if str(request_id).isdigit()
        else None
    )
    if req is None:
        raise Http404
    return req


def identity_document_get_for(*, user, request_id, document_id) -> IdentityDocument:
    """One of a request's identity documents, deleted ones included (their link says so); 404 when
    the request is out of the user's scope or the document is not this request's."""
    req = request_get_for(user=user, request_id=request_id)
    document = req.documents.filter(pk=document_id).first()
    if document is None:
        raise Http404
    document.request = req
    return document


def request_queue_for(*, user, today: date, limit: int = 15) -> dict:
    """The open requests of the user's boroughs by due date (a paused clock last): how many are
    overdue and how many fall due in the next 7 days, and the first `limit`, each marked."""
    open_requests = request_list_for(user=user).filter(status__in=OPEN_STATUSES)
    week_end = today + timedelta(days=6)
    rows = list(
        open_requests.select_related("borough").order_by(
            F("due_at").asc(nulls_last=True), "created_at"
        )[:limit]
    )
    for row in rows:
        row.overdue = row.due_at is not None and row.due_at < today
        row.due_this_week = row.due_at is not None and today <= row.due_at <= week_end
    counts = open_requests.aggregate(
        count=Count("pk"),
        overdue=Count("pk", filter=Q(due_at__lt=today)),
        due_this_week=Count("pk", filter=Q(due_at__gte=today, due_at__lte=week_end)),
    )
    return {
        **counts,
        "requests": rows,
        "week_end": week_end,
    }


class ReleaseLinkUnusable(Exception):
    """A release link that is not known ("unknown", a 404), or withdrawn or past its time
    ("revoked", "expired": the page says so)."""


def release_link_get(*, token: str) -> ReleaseLink:
    """The release link the token opens, with its request; raises ReleaseLinkUnusable."""
    token_hash = hashlib.sha256(token.encode()).hexdigest()
    link = ReleaseLink.objects.select_related("request").filter(token_hash=token_hash).first()
    if link is None:
        raise ReleaseLinkUnusable("unknown")
    if link.revoked_at or link.expires_at < timezone.now():
        raise ReleaseLinkUnusable("revoked" if link.revoked_at else "expired")
    return link


def release_contents(req: AccessRequest) -> list[tuple[str, int, object]]:
    """What a release's ZIP holds, as (file name, size in bytes, footage): each clip's redacted
    copy, or the clip itself when the decision was to disclose in full."""
    contents = []
    for footage in req.footage.select_related("recording", "derived").order_by("pk"):
        if footage.derived is not None:
            name = f"{req.reference}-{footage.recording_id}-redacted.mp4"
            contents.append((name, footage.derived.size_bytes, footage))
        elif req.decision == Decision.FULL:
            name = f"{req.reference}-{footage.recording_id}.mp4"
            contents.append((name, footage.recording.size_bytes, footage))
    return contents
