"""Court/CPS exports and the share links for prosecutors (the records and the bundle are custody's;
the choice of footage and the pages are the review desk's).

Staff pages are scoped by the selectors (out of scope is 404); the public share pages are reached
only by a link's secret, and every download, by staff or by link, is audited per recording.
"""

from __future__ import annotations

from django.conf import settings
from django.contrib import messages
from django.http import Http404, HttpResponseForbidden
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_POST

from common.auth import staff_required
from common.web import client_ip, page_of
from custody.services import (
    ExportError,
    ShareUnavailable,
    export_disclose,
    share_access,
    share_create,
    share_play,
    share_revoke,
)
from evidence.playback import media_response, player_for
from evidence.selectors import recording_get_for
from review.exports import export_bundle_response
from review.selectors import (
    case_get_for,
    export_get_for,
    export_list_for,
)
from review.services import export_create

# -- Exports ----------------------------------------------------------------------------------------


@staff_required
def export_list_view(request):
    if not request.user.has_perm("evidence.export_recording"):
        return HttpResponseForbidden("Your role cannot export footage.")
    exports = export_list_for(user=request.user).select_related(
        "case", "created_by__officer", "borough"
    )
    page = page_of(request, exports.order_by("-created_at", "id"))
    return render(request, "staff/exports.html", {"page": page, "exports": page})


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
            export = export_create(
                actor=request.user,
                recordings=recordings,
                case=case,
                recipient=request.POST.get("recipient", ""),
                purpose=request.POST.get("purpose", ""),
            )
        except ExportError as exc:
            error = str(exc)
        else:
            messages.success(request, "Export ready. Download it or share it with a prosecutor.")
            return redirect("export-detail", export_id=export.pk)
    return render(
        request,
        "staff/export_new.html",
        {
            "recordings": recordings,
            "case": case,
            "error": error,
            "recipient": source.get("recipient", ""),
            "purpose": source.get("purpose", ""),
        },
        status=400 if error else 200,
    )


@staff_required
def export_detail_view(request, export_id):
    export = export_get_for(user=request.user, export_id=export_id)
    return render(
        request,
        "staff/export.html",
        {
            "export": export,
            "recordings": export.recordings.select_related("camera", "officer").order_by(
                "started_at"
            ),
            "shares": export.shares.select_related("created_by", "revoked_by"),
            "max_days": settings.BWV_SHARE_MAX_DAYS,
            "new_link": request.session.pop(f"bwv_share_{export.pk}", None),
        },
    )


@staff_required
def export_download_view(request, export_id):
    export = export_get_for(user=request.user, export_id=export_id)
    export_disclose(
        export=export, actor=request.user, via="download", detail={"ip": client_ip(request)}
    )
    return export_bundle_response(export)


@staff_required
@require_POST
def export_share_view(request, export_id):
    export = export_get_for(user=request.user, export_id=export_id)
    try:
        days = int(request.POST.get("days") or 0)
    except ValueError:
        days = 0
    try:
        link, token = share_create(
            export=export,
            actor=request.user,
            days=days,
            recipient_email=request.POST.get("email", ""),
        )
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
        messages.success(
            request, f"Link for {link.recipient_email} withdrawn: it no longer opens the bundle."
        )
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
    recordings = list(export.recordings.select_related("camera").order_by("started_at", "id"))
    # The recording chosen with ?play= (the first by default) plays in the page.
    playing = next((r for r in recordings if str(r.pk) == request.GET.get("play")), None)
    playing = playing or (recordings[0] if recordings else None)
    player = None
    if playing is not None:
        player = player_for(
            playing,
            element_id="player",
            src=reverse("share-media", args=[token, playing.pk]),
        )
    return render(
        request,
        "public/share.html",
        {
            "link": link,
            "export": export,
            "token": token,
            "recordings": recordings,
            "playing": playing,
            "player": player,
        },
    )


SHARE_PLAYED = "bwv_share_played"  # session: "<link>:<recording>" already audited as played


def share_media_view(request, token, recording_id):
    """A shared recording by HTTP Range, for the page's player. Its first request in a session is
    audited as a disclosure to the link's recipient; the link must still be usable for every one."""
    try:
        link = share_access(token=token, ip=client_ip(request), download=False)
    except ShareUnavailable as exc:
        return _share_gone(request, str(exc))
    recording = link.export.recordings.filter(pk=recording_id).first()
    if recording is None:
        raise Http404
    played = request.session.get(SHARE_PLAYED, [])
    key = f"{link.pk}:{recording.pk}"
    if key not in played:
        share_play(link=link, recording=recording, ip=client_ip(request))
        request.session[SHARE_PLAYED] = [*played, key][-200:]
    return media_response(recording, request.headers.get("Range", ""))


def share_download_view(request, token):
    try:
        link = share_access(token=token, ip=client_ip(request), download=True)
    except ShareUnavailable as exc:
        return _share_gone(request, str(exc))
    return export_bundle_response(link.export)
