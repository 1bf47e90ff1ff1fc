"""Audit reports per recording, case and person: a page, or CSV with `?format=csv`.

Who may read them: roles with the audit permission, each within their scope (out of scope is 404).
The CSV, in the chain's codes, is custody's; the page puts the events in words (`audit_words`)."""

from __future__ import annotations

from django.http import Http404, HttpResponseForbidden
from django.shortcuts import render

from common.auth import staff_required
from common.web import page_of
from custody.models import AuditEvent
from custody.reports import audit_csv_response
from evidence.models import Recording
from evidence.selectors import recording_list_for
from review.audit_words import audit_lines
from review.selectors import (
    audit_events_for_case,
    audit_events_for_recording,
    audit_user_get_for,
    case_get_for,
)

PER_PAGE = 100


def audit_report_response(request, *, title: str, events, filename: str):
    """The events in chain order: in words on a page of 100, or every one in codes as CSV."""
    if request.GET.get("format") == "csv":
        return audit_csv_response(events=events, filename=filename)
    page = page_of(request, events.order_by("seq"), per_page=PER_PAGE)
    context = {
        "title": title,
        "page": page,
        "events": page.object_list,
        "lines": audit_lines(page.object_list),
    }
    return render(request, "staff/audit_report.html", context)


def _may_audit(request) -> bool:
    return request.user.has_perm("custody.view_auditevent") or request.user.is_superuser


@staff_required
def audit_recording_view(request, recording_id):
    if not _may_audit(request):
        return HttpResponseForbidden("Your role cannot read audit reports.")
    try:
        recording = (
            recording_list_for(user=request.user).select_related("camera").get(pk=recording_id)
        )
    except (Recording.DoesNotExist, ValueError):
        raise Http404 from None
    title = f"Recording {recording.camera.serial} {recording.started_at:%d %b %Y %H:%M}"
    return audit_report_response(
        request,
        title=title,
        filename=f"audit-recording-{recording.pk}",
        events=audit_events_for_recording(recording=recording),
    )


@staff_required
def audit_case_view(request, case_id):
    if not _may_audit(request):
        return HttpResponseForbidden("Your role cannot read audit reports.")
    case = case_get_for(user=request.user, case_id=case_id)
    return audit_report_response(
        request,
        title=f"Case {case.crime_reference}",
        filename=f"audit-case-{case.pk}",
        events=audit_events_for_case(case=case),
    )


@staff_required
def audit_user_view(request, user_id):
    if not _may_audit(request):
        return HttpResponseForbidden("Your role cannot read audit reports.")
    subject = audit_user_get_for(user=request.user, subject_id=user_id)
    return audit_report_response(
        request,
        title=f"Actions of {subject.get_username()}",
        filename=f"audit-user-{subject.pk}",
        events=AuditEvent.objects.filter(actor_user_id=subject.pk),
    )
