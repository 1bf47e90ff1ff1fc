"""Public request pages (/requests/: no login, no third-party script) and the disclosure officers'
queue and workflow (/disclosure/). Staff pages are scoped by borough; out of scope is 404."""

from __future__ import annotations

import itertools
import json
import math
import uuid
from datetime import timedelta

from django.conf import settings
from django.contrib import messages
from django.core.cache import cache
from django.db.models import F, Q
from django.http import (
    Http404,
    HttpResponse,
    HttpResponseForbidden,
    JsonResponse,
    StreamingHttpResponse,
)
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.http import content_disposition_header
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_POST

from common.auth import staff_required
from common.web import client_ip, page_of, sort_by
from custody.zipstream import ZipStream
from evidence.models import Recording
from evidence.playback import Marker, consulted, mark_consulted, media_response, player_for
from evidence.redaction import RedactionError, propose_face_boxes
from evidence.redaction_assist import redaction_preview, track_box
from evidence.services import recording_consult
from requests_portal.deadlines import london_date
from requests_portal.forms import RequestForm, altcha_challenge
from requests_portal.models import (
    Decision,
    IdentityDocument,
    RedactionJob,
    RequestFootage,
    RequestStatus,
)
from requests_portal.selectors import (
    ReleaseLinkUnusable,
    identity_document_get_for,
    release_contents,
    release_link_get,
    request_get_for,
    request_list_for,
)
from requests_portal.services import (
    ID_TYPES,
    RequestError,
    candidate_recordings,
    footage_attach,
    footage_redact,
    identity_checked,
    identity_document_consult,
    identity_document_plaintext,
    identity_upload,
    release_download,
    release_revoke,
    request_approve,
    request_ask_identity,
    request_close,
    request_decide,
    request_for_status,
    request_submit,
    request_verify,
)


def _over_limit(key: str, limit: int, seconds: int) -> bool:
    cache.add(key, 0, timeout=seconds)
    try:
        return cache.incr(key) > limit
    except ValueError:  # expired between add and incr
        cache.set(key, 1, timeout=seconds)
        return False


# -- Public -----------------------------------------------------------------------------------------


@never_cache
def request_form_view(request):
    form = RequestForm(request.POST or None)
    if request.method == "POST":
        ip = client_ip(request)
        email = (request.POST.get("email") or "").strip().lower()[:254]
        if _over_limit(f"req-ip:{ip}", settings.BWV_REQUEST_LIMIT_IP_PER_HOUR, 3600) or (
            email
            and _over_limit(f"req-email:{email}", settings.BWV_REQUEST_LIMIT_EMAIL_PER_DAY, 86400)
        ):
            return render(request, "public/request_limited.html", status=429)
        if form.is_valid():
            req = request_submit(data=form.request_data(), ip=ip or None)
            request.session["bwv_request_sent"] = req.reference
            return redirect("request-sent")
    return render(
        request,
        "public/request_form.html",
        {
            "form": form,
            "challenge": altcha_challenge(),
            "retention_days": settings.BWV_RETENTION_DAYS,
        },
        status=400 if form.is_bound else 200,
    )


def request_sent_view(request):
    return render(
        request,
        "public/request_sent.html",
        {"reference": request.session.get("bwv_request_sent", "")},
    )


@never_cache
def request_verify_view(request, token):
    outcome, req = request_verify(token=token)
    status = {"verified": 200, "already": 200, "expired": 410, "unknown": 404}[outcome]
    return render(
        request, "public/request_verified.html", {"outcome": outcome, "req": req}, status=status
    )


@never_cache
def request_status_view(request, token):
    req = request_for_status(token=token)
    if req is None:
        raise Http404
    error = ""
    if request.method == "POST":
        upload = request.FILES.get("identity")
        try:
            if upload is None:
                raise RequestError("choose a file")
            identity_upload(req=req, upload=upload)
            return redirect(request.path)
        except RequestError as exc:
            error = str(exc)
    old_incident = req.incident_at < req.created_at - timedelta(days=settings.BWV_RETENTION_DAYS)
    return render(
        request,
        "public/request_status.html",
        {
            "req": req,
            "steps": req.steps.filter(public=True),
            "error": error,
            "overdue": req.due_at and req.due_at < london_date(timezone.now()) and req.is_open,
            "old_incident": old_incident,
            "retention_days": settings.BWV_RETENTION_DAYS,
        },
        status=400 if error else 200,
    )


@never_cache
@require_GET
def release_view(request, token):
    """What the e-mailed link opens: what the download is, how big, and until when the link
    works; the button then downloads it. Opening this page discloses nothing and is not audited;
    the download is."""
    try:
        link = release_link_get(token=token)
    except ReleaseLinkUnusable as exc:
        if str(exc) == "unknown":
            raise Http404 from None
        return render(request, "public/request_gone.html", {"why": str(exc)}, status=410)
    contents = release_contents(link.request)
    return render(
        request,
        "public/release.html",
        {
            "link": link,
            "token": token,
            "req": link.request,
            "files": [{"name": name, "size": size} for name, size, _footage in contents],
            "total": sum(size for _name, size, _footage in contents),
            "redacted": any(f.derived_id for _n, _s, f in contents),
        },
    )


@never_cache
def release_download_view(request, token):
    try:
        req, files = release_download(token=token, ip=client_ip(request))
    except RequestError as exc:
        why = str(exc)
        if why == "unknown":
            raise Http404 from None
        return render(request, "public/request_gone.html", {"why": why}, status=410)

    def stream():  # the clips are streamed, never held whole in memory
        zs = ZipStream(timezone.now())
        for name, size, chunks in files:
            yield from zs.member(name, chunks(), size=size)
        yield from zs.finish()

    response = StreamingHttpResponse(stream(), content_type="application/zip")
    response["Content-Disposition"] = f'attachment; filename="{req.reference}.zip"'
    response["Cache-Control"] = "private, no-store"
    return response


# -- Disclosure officers ----------------------------------------------------------------------------


# What each action on a request did, for the message after it.
DONE_WORDS = {
    "ask_identity": "Asked the requester for proof of identity",
    "identity_checked": "Identity check recorded",
    "attach": "Recording attached to the request",
    "decide": "Decision recorded",
    "approve": "Disclosure approved",
    "revoke_release": "Download withdrawn: the link no longer works",
    "close": "Request closed",
}


def _may_disclose(user) -> bool:
    return user.has_perm("requests_portal.change_accessrequest")


@staff_required
def queue_view(request):
    if not _may_disclose(request.user):
        return HttpResponseForbidden("The disclosure queue is for disclosure officers.")
    requests = request_list_for(user=request.user).exclude(status=RequestStatus.UNVERIFIED)
    if request.GET.get("show") != "all":
        requests = requests.exclude(status=RequestStatus.CLOSED)
    requests, sort = sort_by(
        request,
        requests.select_related("borough"),
        columns={
            "due": (F("due_at").asc(nulls_last=True), "created_at", "id"),
            "reference": ("reference",),
            "received": ("created_at", "id"),
            "borough": ("borough__name", "due_at", "id"),
        },
        default="due",
    )
    page = page_of(request, requests)
    return render(
        request,
        "staff/disclosure_queue.html",
        {"page": page, "requests": page, "sort": sort, "today": london_date(timezone.now())},
    )


@staff_required
def request_detail_view(request, request_id):
    if not _may_disclose(request.user):
        return HttpResponseForbidden("The disclosure queue is for disclosure officers.")
    req = request_get_for(user=request.user, request_id=request_id)
    if request.method == "POST":
        action, post = request.POST.get("action"), request.POST
        try:
            if action == "ask_identity":
                request_ask_identity(req=req, actor=request.user, note=post.get("note", ""))
            elif action == "identity_checked":
                identity_checked(
                    req=req,
                    actor=request.user,
                    accepted=post.get("accepted") == "yes",
                    note=post.get("note", ""),
                )
            elif action == "attach":
                recording = (
                    candidate_recordings(req).filter(pk=post.get("recording") or None).first()
                )
                if recording is None:
                    raise RequestError("that recording is not a candidate for this request")
                footage_attach(req=req, recording=recording, actor=request.user)
            elif action == "decide":
                request_decide(
                    req=req,
                    actor=request.user,
                    decision=post.get("decision", ""),
                    reasons=post.get("reasons", ""),
                    exemptions=post.get("exemptions", ""),
                )
            elif action == "approve":
                if not request.user.has_perm("requests_portal.approve_accessrequest"):
                    raise RequestError("your role cannot approve disclosures")
                request_approve(req=req, actor=request.user)
            elif action == "revoke_release":
                release_revoke(req=req, actor=request.user, reason=post.get("reason", ""))
            elif action == "close":
                request_close(req=req, actor=request.user, reason=post.get("reason", ""))
            elif action == "play":
                return _play(request, req, post.get("recording"))
            else:
                raise RequestError("unknown action")
            req.refresh_from_db()
            messages.success(
                request,
                f"{DONE_WORDS[action]}. {req.reference} is now: {req.get_status_display().lower()}.",
            )
        except RequestError as exc:
            messages.error(request, str(exc))
        return redirect("disclosure-request", request_id=req.pk)
    attached = {f.recording_id for f in req.footage.all()}
    playing, player = _request_player(request, req)
    return render(
        request,
        "staff/disclosure_request.html",
        {
            "req": req,
            "playing": playing,
            "playing_copy": bool(player and request.GET.get("copy")),
            "player": player,
            "steps": req.steps.all(),
            "decisions": Decision.choices,
            "footage": _with_jobs(
                req.footage.select_related("recording", "recording__camera", "derived")
            ),
            "candidates": candidate_recordings(req)
            .select_related("camera", "officer")
            .exclude(pk__in=attached)
            .order_by("started_at")[:100],
            "documents": req.documents.order_by("uploaded_at"),
            "documents_to_check": req.documents.filter(deleted_at__isnull=True).count(),
            "today": london_date(timezone.now()),
        },
    )


def _with_jobs(footage) -> list[RequestFootage]:
    """The footage, each with `latest_job` (the last redaction asked for) and `copy_job` (the one
    that made its current copy: what the face detector found in it), in one query."""
    footage = list(footage)
    jobs = RedactionJob.objects.filter(footage__in=footage).select_related("requested_by")
    latest, made = {}, {}
    for job in jobs.order_by("requested_at"):
        latest[job.footage_id] = job
        if job.derived_id:
            made[job.derived_id] = job
    for f in footage:
        f.latest_job, f.copy_job = latest.get(f.pk), made.get(f.derived_id)
    return footage


def _playable(req):
    """The recordings the request's page may play: its footage and its candidates."""
    return Recording.objects.filter(
        Q(pk__in=candidate_recordings(req).values("pk"))
        | Q(pk__in=req.footage.values("recording_id"))
    )


def _play(request, req, recording_id):
    """Open a recording on the request's page: a consultation whose purpose is the request."""
    recording = _playable(req).filter(pk=recording_id).first() if _is_uuid(recording_id) else None
    if recording is None:
        raise RequestError("that recording is not footage or a candidate of this request")
    if not consulted(request, recording):
        recording_consult(
            recording=recording, actor=request.user, purpose=f"access request {req.reference}"
        )
        mark_consulted(request, recording)
    url = reverse("disclosure-request", args=[req.pk])
    return redirect(f"{url}?play={recording.pk}#player")


def _request_player(request, req):
    """The recording (?play=) or redacted copy (?copy=, a footage id) chosen, and its player."""
    if request.GET.get("copy"):
        footage = (
            req.footage.select_related("recording__camera", "derived")
            .filter(pk=request.GET["copy"] if request.GET["copy"].isdigit() else None)
            .first()
        )
        if footage is None or footage.derived is None:
            return None, None
        boxes = (footage.derived.spec or {}).get("boxes", [])
        markers = [
            Marker(
                "redaction", b["start"], f"Redacted from {b['start']} s to {b['end']} s", b["end"]
            )
            for b in boxes
        ]
        player = player_for(
            footage.recording,
            element_id="player",
            src=reverse("disclosure-derived", args=[req.pk, footage.pk]),
            markers=markers,
        )
        player["title"] += " (redacted copy)"
        return footage.recording, player
    chosen = request.GET.get("play")
    recording = None
    if _is_uuid(chosen):
        recording = _playable(req).select_related("camera").filter(pk=chosen).first()
    if recording is None or not consulted(request, recording):
        return None, None
    player = player_for(
        recording,
        element_id="player",
        src=reverse("recording-media", args=[recording.pk]),
        poster=reverse("recording-poster", args=[recording.pk]) if recording.poster_key else "",
        still_url=reverse("recording-still", args=[recording.pk]),
    )
    return recording, player


def _is_uuid(value) -> bool:
    try:
        uuid.UUID(str(value))
    except ValueError:
        return False
    return True


@require_GET
@staff_required
def identity_document_view(request, request_id, document_id):
    """A requester's proof of identity, for the disclosure officers who must check it: decrypted
    as it streams (one segment in memory), always as a download under a name of ours, never shown
    inline, and each opening audited. Deleted after the check: 410."""
    if not _may_disclose(request.user):
        return HttpResponseForbidden("Proof of identity is for disclosure officers.")
    document = identity_document_get_for(
        user=request.user, request_id=request_id, document_id=document_id
    )
    if document.deleted_at is not None or not document.wrapped_key:
        return _identity_gone(request, document)
    try:
        # The first segment is fetched and authenticated before anything is sent or audited, so
        # a document deleted a moment ago answers 410 rather than an empty download.
        chunks = identity_document_plaintext(document)
        first = next(chunks, b"")
    except KeyError:
        return _identity_gone(request, document)
    identity_document_consult(document=document, actor=request.user)
    kind = document.content_type if document.content_type in ID_TYPES else None
    extension = IdentityDocument.KINDS[kind][1] if kind else "bin"
    filename = f"{document.request.reference}-identity-{str(document.pk)[:8]}.{extension}"
    response = StreamingHttpResponse(
        itertools.chain([first], chunks), content_type=kind or "application/octet-stream"
    )
    response["Content-Length"] = str(document.size_bytes)
    response["Content-Disposition"] = content_disposition_header(True, filename)
    response["X-Content-Type-Options"] = "nosniff"
    response["Cache-Control"] = "private, no-store"
    # Should a browser render it anyway, it runs nothing and fetches nothing.
    response["Content-Security-Policy"] = "default-src 'none'; sandbox"
    return response


def _identity_gone(request, document: IdentityDocument):
    context = {"req": document.request, "document": document}
    return render(request, "staff/identity_gone.html", context, status=410)


def _footage_for(request, request_id, footage_id) -> RequestFootage:
    req = request_get_for(user=request.user, request_id=request_id)
    footage = req.footage.select_related("recording", "derived").filter(pk=footage_id).first()
    if footage is None:
        raise Http404
    return footage


def _latest_job(footage: RequestFootage):
    return footage.jobs.select_related("requested_by").first()


@staff_required
def redact_view(request, request_id, footage_id):
    if not _may_disclose(request.user):
        return HttpResponseForbidden("Redaction is for disclosure officers.")
    footage = _footage_for(request, request_id, footage_id)
    error, proposals = "", []
    if request.method == "POST":
        if request.POST.get("action") == "consult":
            _consult_for_redaction(request, footage)
            return redirect(
                "disclosure-redact", request_id=footage.request_id, footage_id=footage.pk
            )
        if request.POST.get("action") == "propose":
            # The detector decodes the original: only once the purpose of viewing it was given,
            # as for the editor's own proposals.
            if not consulted(request, footage.recording):
                return HttpResponseForbidden("State why you are viewing this footage first.")
            proposals = propose_face_boxes(footage.recording)
            if not proposals:
                error = "No faces were found: draw the boxes by hand."
        else:
            try:
                boxes = json.loads(
                    request.POST.get("boxes") or "[]", parse_float=_finite, parse_constant=_finite
                )
                mutes = json.loads(
                    request.POST.get("mutes") or "[]", parse_float=_finite, parse_constant=_finite
                )
                if not isinstance(boxes, list) or not isinstance(mutes, list):
                    raise RedactionError("boxes and muted ranges are lists")
                footage_redact(
                    footage=footage,
                    boxes=boxes,
                    mutes=mutes,
                    actor=request.user,
                    reason=request.POST.get("reason", ""),
                )
                messages.success(
                    request,
                    "The redacted copy is being made; the original is unchanged. "
                    "Its progress is shown with the footage.",
                )
                return redirect("disclosure-request", request_id=footage.request_id)
            except (ValueError, RedactionError, RequestError) as exc:
                error = (
                    str(exc)
                    if isinstance(exc, RedactionError | RequestError)
                    else "boxes and muted ranges are not valid JSON with finite numbers"
                )
    info = footage.recording.media_info or {}
    return render(
        request,
        "staff/disclosure_redact.html",
        {
            "footage": footage,
            "player": _editor_player(request, footage),
            "error": error,
            "proposals": proposals,
            "proposals_json": json.dumps(proposals),
            # What was sent comes back with its error, so the boxes drawn are not lost.
            "boxes_json": request.POST.get("boxes") or "[]",
            "mutes_json": request.POST.get("mutes") or "[]",
            "width": info.get("width"),
            "height": info.get("height"),
            "job": _latest_job(footage),
        },
        status=400 if error and request.method == "POST" and not proposals else 200,
    )


@require_GET
@never_cache
@staff_required
def redaction_job_view(request, request_id, footage_id, job_id):
    """How far a redaction job is, as JSON, for the page that polls it (static/js/redaction.js)."""
    if not _may_disclose(request.user):
        return HttpResponseForbidden("For disclosure officers.")
    footage = _footage_for(request, request_id, footage_id)
    job = footage.jobs.filter(pk=job_id).first()
    if job is None:
        raise Http404
    return JsonResponse(
        {
            "status": job.status,
            "status_text": job.get_status_display(),
            "progress": job.progress,
            "finished": job.finished,
            "error": job.error,
            "faces_found": job.faces_found,
        }
    )


@staff_required
def derived_view(request, request_id, footage_id):
    """The redacted copy, for the disclosure officers to check before release: served as an
    original is, a range at a time (206 for a Range request)."""
    if not _may_disclose(request.user):
        return HttpResponseForbidden("For disclosure officers.")
    footage = _footage_for(request, request_id, footage_id)
    if footage.derived is None:
        raise Http404
    return media_response(footage.derived, request.headers.get("Range", ""))


# -- The redaction editor ----------------------------------------------------------------------------
# The redact page's editor (static/js/redact-editor.js) draws the boxes over the player; these small
# endpoints give it the face proposals, a tracked box's keyframes and a preview of a redacted frame.
# Each is for the disclosure officers of the request's borough, once the purpose of viewing the
# footage was given; their input is JSON, and bad input is a 400 that says what is wrong.


def _consult_for_redaction(request, footage: RequestFootage) -> None:
    """The editor plays the original: a consultation whose purpose is the request's redaction."""
    if not consulted(request, footage.recording):
        recording_consult(
            recording=footage.recording,
            actor=request.user,
            purpose=f"access request {footage.request.reference}: redaction",
        )
        mark_consulted(request, footage.recording)


def _editor_player(request, footage: RequestFootage):
    """The player of the original for the editor, once the purpose of viewing it was given."""
    if not consulted(request, footage.recording):
        return None
    recording = footage.recording
    return player_for(
        recording,
        element_id="redact-video",
        src=reverse("recording-media", args=[recording.pk]),
        poster=reverse("recording-poster", args=[recording.pk]) if recording.poster_key else "",
    )


def _editor_footage(request, request_id, footage_id):
    """The footage an editor endpoint works on, or the response refusing it."""
    if not _may_disclose(request.user):
        return None, HttpResponseForbidden("Redaction is for disclosure officers.")
    footage = _footage_for(request, request_id, footage_id)
    if not consulted(request, footage.recording):
        return None, HttpResponseForbidden("State why you are viewing this footage first.")
    return footage, None


def _finite(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(text)
    return value


def _json_body(request) -> dict:
    """The request's JSON object; NaN, Infinity and numbers beyond a float are refused here, as
    the rest of the path expects finite numbers."""
    try:
        body = json.loads(request.body or b"{}", parse_float=_finite, parse_constant=_finite)
    except (ValueError, UnicodeDecodeError, RecursionError):
        raise RedactionError("the request is not valid JSON") from None
    if not isinstance(body, dict):
        raise RedactionError("the request is a JSON object")
    return body


def _seconds(value, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise RedactionError(f"the {what} is a number of seconds from the clip's start")
    return float(value)


def _bad(exc: Exception) -> HttpResponse:
    message = str(exc)
    return HttpResponse(
        message[:1].upper() + message[1:] + ".", status=400, content_type="text/plain"
    )


@staff_required
@require_POST
def redact_faces_view(request, request_id, footage_id):
    """The face detector's proposals, as boxes of the specification (one keyframe each)."""
    footage, refused = _editor_footage(request, request_id, footage_id)
    if refused:
        return refused
    proposals = [
        {
            "start": p["start"],
            "end": p["end"],
            "mode": p["mode"],
            "keyframes": [{"t": p["start"], "x": p["x"], "y": p["y"], "w": p["w"], "h": p["h"]}],
        }
        for p in propose_face_boxes(footage.recording)
    ]
    return JsonResponse({"proposals": proposals})


@staff_required
@require_POST
def redact_track_view(request, request_id, footage_id):
    """`{"t", "x", "y", "w", "h", "until"}`: the box followed from `t` to `until`, as keyframes."""
    footage, refused = _editor_footage(request, request_id, footage_id)
    if refused:
        return refused
    try:
        body = _json_body(request)
        rect = []
        for name in ("x", "y", "w", "h"):
            value = body.get(name)
            try:
                if isinstance(value, bool) or not isinstance(value, int | float):
                    raise TypeError(name)
                rect.append(int(value))  # an integer too large for a float: OverflowError
            except (TypeError, OverflowError):
                raise RedactionError(
                    "the box needs x, y, w and h in pixels of the picture"
                ) from None
        keyframes = track_box(
            recording=footage.recording,
            t=_seconds(body.get("t"), "tracking's start"),
            rect=tuple(rect),
            until=_seconds(body.get("until"), "tracking's end"),
        )
    except RedactionError as exc:
        return _bad(exc)
    return JsonResponse({"keyframes": keyframes})


@staff_required
@require_POST
def redact_preview_view(request, request_id, footage_id):
    """`{"t", "boxes"}`: a PNG of the frame at `t` with the boxes drawn as the copy would be."""
    footage, refused = _editor_footage(request, request_id, footage_id)
    if refused:
        return refused
    try:
        body = _json_body(request)
        png = redaction_preview(
            recording=footage.recording,
            actor=request.user,
            at_seconds=_seconds(body.get("t"), "preview's time"),
            boxes=body.get("boxes"),
            purpose=f"access request {footage.request.reference}: preview of a redaction",
        )
    except RedactionError as exc:
        return _bad(exc)
    response = HttpResponse(png, content_type="image/png")
    response["Cache-Control"] = "private, no-store"
    return response
