"""Chain-of-custody pages: court/CPS exports, share links for prosecutors, and audit reports.

Staff pages are scoped by the selectors (out of scope is 404); the public share pages are reached
only by a link's secret, and every download, by staff or by link, is audited per recording.
"""

from __future__ import annotations

from django.conf import settings
from django.contrib import messages
from django.http import Http404, HttpResponseForbidden, StreamingHttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from common.auth import staff_required
from common.web import client_ip, csv_response
from evidence.exports import bundle_filename, bundle_stream
from evidence.models import AuditEvent, Recording
from evidence.selectors import (
    audit_events_for_case,
    audit_events_for_recording,
    audit_user_get_for,
    case_get_for,
    export_get_for,
    export_list_for,
    recording_get_for,
    recording_list_for,
)
from evidence.services import (
    ExportError,
    ShareUnavailable,
    export_create,
    export_disclose,
    share_access,
    share_create,
    share_revoke,
)


def _bundle_response(export) -> StreamingHttpResponse:
    response = StreamingHttpResponse(bundle_stream(export), content_type="application/zip")
    response["Content-Disposition"] = f'attachment; filename="{bundle_filename(export)}"'
    response["Cache-Control"] = "private, no-store"
    return response


# -- Exports ----------------------------------------------------------------------------------------


@staff_required
def export_list_view(request):
    if not request.user.has_perm("evidence.export_recording"):
        return HttpResponseForbidden("Your role cannot export footage.")
    exports = export_list_for(user=request.user).select_related("case", "created_by")[:200]
    return render(request, "staff/exports.html", {"exports": exports})


@staff_required
def export_new_view(request):
    """GET: the chosen recordings (?ids=... or ?case=...) and a form for recipient and purpose.
    POST: create the export and go to its page."""
    if not request.user.has_perm("evidence.export_recording"):
        return HttpResponseForbidden("Your role cannot export footage.")
    source = request.POST if request.method == "POST" else request.GET
    case = None
    if source.get("case"):
        case = case_get_for(user=request.user, case_id=source.get("case") or 0)
        recordings = list(case.recordings.filter(state="available").order_by("started_at"))
    else:
        ids = source.getlist("ids")
        recordings = [recording_get_for(user=request.user, recording_id=i) for i in ids[:501]]
    error = ""
    if request.method == "POST":
        try:
            export = export_create(actor=request.user, recordings=recordings, case=case,
                                   recipient=request.POST.get("recipient", ""),
                                   purpose=request.POST.get("purpose", ""))  # fmt: skip
        except ExportError as exc:
            error = str(exc)
        else:
            messages.success(request, "Export ready. Download it or share it with a prosecutor.")
            return redirect("export-detail", export_id=export.pk)
    return render(request, "staff/export_new.html", {
        "recordings": recordings, "case": case, "error": error,
        "recipient": source.get("recipient", ""), "purpose": source.get("purpose", ""),
    }, status=400 if error else 200)  # fmt: skip


@staff_required
def export_detail_view(request, export_id):
    export = export_get_for(user=request.user, export_id=export_id)
    return render(request, "staff/export.html", {
        "export": export,
        "recordings": export.recordings.select_related("camera", "officer").order_by("started_at"),
        "shares": export.shares.select_related("created_by", "revoked_by"),
        "max_days": settings.BWV_SHARE_MAX_DAYS,
        "new_link": request.session.pop(f"bwv_share_{export.pk}", None),
    })  # fmt: skip


@staff_required
def export_download_view(request, export_id):
    export = export_get_for(user=request.user, export_id=export_id)
    export_disclose(export=export, actor=request.user, via="download",
                    detail={"ip": client_ip(request)})  # fmt: skip
    return _bundle_response(export)


@staff_required
@require_POST
def export_share_view(request, export_id):
    export = export_get_for(user=request.user, export_id=export_id)
    try:
        days = int(request.POST.get("days") or 0)
    except ValueError:
        days = 0
    try:
        link, token = share_create(export=export, actor=request.user, days=days,
                                   recipient_email=request.POST.get("email", ""))  # fmt: skip
    except ExportError as exc:
        messages.error(request, str(exc))
    else:
        # Shown once, on the next page, then gone: only its hash is kept.
        request.session[f"bwv_share_{export.pk}"] = request.build_absolute_uri(f"/share/{token}/")
        messages.success(request, f"Link made for {link.recipient_email}.")
    return redirect("export-detail", export_id=export.pk)


@staff_required
@require_POST
def export_share_revoke_view(request, export_id, share_id):
    export = export_get_for(user=request.user, export_id=export_id)
    link = export.shares.filter(pk=share_id).first()
    if link is None:
        raise Http404
    try:
        share_revoke(link=link, actor=request.user, reason=request.POST.get("reason", ""))
    except ExportError as exc:
        messages.error(request, str(exc))
    else:
        messages.success(request, "Link revoked.")
    return redirect("export-detail", export_id=export.pk)


# -- Share links (public: the link's secret is the key) ---------------------------------------------


def _share_gone(request, why: str):
    return render(request, "public/share_gone.html", {"why": why}, status=410)


def share_view(request, token):
    try:
        link = share_access(token=token, ip=client_ip(request), download=False)
    except ShareUnavailable as exc:
        return _share_gone(request, str(exc))
    export = link.export
    return render(request, "public/share.html", {
        "link": link, "export": export, "token": token,
        "recordings": export.recordings.select_related("camera").order_by("started_at"),
    })  # fmt: skip


def share_download_view(request, token):
    try:
        link = share_access(token=token, ip=client_ip(request), download=True)
    except ShareUnavailable as exc:
        return _share_gone(request, str(exc))
    return _bundle_response(link.export)


# -- Audit reports ----------------------------------------------------------------------------------

CSV_COLUMNS = ["seq", "at", "actor", "action", "object_type", "object_id", "borough",
               "justification", "recipient", "detail", "hash"]  # fmt: skip


def _report(request, *, title: str, events, filename: str):
    events = events.order_by("seq")
    if request.GET.get("format") == "csv":
        rows = (
            [e.seq, d["at"], d["actor"], d["action"], d["object_type"], d["object_id"],
             d["borough"], d["justification"], d["recipient"], d["detail"], e.hash]
            for e in events.iterator(chunk_size=2000)
            for d in (e.data,)
        )  # fmt: skip
        return csv_response(filename, CSV_COLUMNS, rows)
    return render(request, "staff/audit_report.html",
                  {"title": title, "events": events[:1000], "total": events.count()})  # fmt: skip


def _may_audit(request) -> bool:
    return request.user.has_perm("evidence.view_auditevent") or request.user.is_superuser


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
    return _report(request, title=title, filename=f"audit-recording-{recording.pk}",
                   events=audit_events_for_recording(recording=recording))  # fmt: skip


@staff_required
def audit_case_view(request, case_id):
    if not _may_audit(request):
        return HttpResponseForbidden("Your role cannot read audit reports.")
    case = case_get_for(user=request.user, case_id=case_id)
    return _report(request, title=f"Case {case.crime_reference}", filename=f"audit-case-{case.pk}",
                   events=audit_events_for_case(case=case))  # fmt: skip


@staff_required
def audit_user_view(request, user_id):
    if not _may_audit(request):
        return HttpResponseForbidden("Your role cannot read audit reports.")
    subject = audit_user_get_for(user=request.user, subject_id=user_id)
    return _report(request, title=f"Actions of {subject.get_username()}",
                   filename=f"audit-user-{subject.pk}",
                   events=AuditEvent.objects.filter(actor_user_id=subject.pk))  # fmt: skip
