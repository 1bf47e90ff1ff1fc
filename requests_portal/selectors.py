"""Reads of access requests, scoped: a disclosure officer sees their borough's, a system admin all."""

from __future__ import annotations

from django.db.models import QuerySet
from django.http import Http404

from common.roles import Role, user_has_role
from devices.selectors import boroughs_for
from requests_portal.models import AccessRequest, IdentityDocument


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
