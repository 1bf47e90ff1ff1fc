"""Staff pages of the evidence app. Thin: parse, call a selector or service, render."""

from __future__ import annotations

from datetime import timedelta
from urllib.parse import urlencode

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import get_user_model
from django.db.models import Count
from django.http import Http404, HttpResponse, HttpResponseForbidden
from django.shortcuts import get_object_or_404, redirect, render
from django.template.defaultfilters import pluralize
from django.urls import reverse
from django.utils import timezone
from django.utils.dateformat import format as date_format
from django.views.decorators.http import require_POST

from common.auth import staff_required
from common.roles import Role, user_has_role
from common.web import page_of, safe_local_path, sort_by
from custody.models import AuditEvent
from devices.models import Borough
from devices.selectors import user_borough
from evidence.media import recording_filmstrip, recording_poster
from evidence.models import BoroughAccessGrant
from evidence.playback import (
    Marker,
    consulted,
    mark_consulted,
    media_response,
    player_for,
)
from evidence.probe import poster_thumbnail
from evidence.selectors import recording_get_for, staff_borough_ids
from evidence.services import (
    BookmarkError,
    ConsultationError,
    GrantError,
    StillError,
    bookmark_add,
    borough_grant_create,
    borough_grant_revoke,
    recording_consult,
    recording_still_take,
    recordings_consult,
)
from review.audit_words import audit_lines
from review.models import EvidenceFlag, FlagKind
from review.selectors import (
    case_decider,
    case_get_for,
    case_list_for,
    incident_get_for,
    incident_list_for,
    incident_recordings_for,
    recording_overlaps_for,
    recording_search,
)
from review.services import (
    ReviewError,
    case_add_recording,
    case_close,
    case_create,
    case_remove_recording,
    recording_flag,
    recording_unflag,
)


@staff_required
def recording_search_view(request):
    # Every filter is optional: no filters is a valid search (the same filters as the API's).
    filters, page = recording_search(user=request.user, params=request.GET)
    next_url = None
    if page is not None and page.next_cursor:
        params = {k: v for k, v in request.GET.items() if k != "cursor" and v}
        next_url = "?" + urlencode({**params, "cursor": page.next_cursor})
    context = {"form": filters.form, "page": page, "next_url": next_url}
    return render(request, "staff/recordings.html", context)


def recording_markers(recording, *, bookmarks=(), flags=()) -> list[Marker]:
    """The timeline's markers of a recording: its bookmarks, its active flags (a flag holds the
    whole recording, so its marker is at the start) and the ranges of its redacted copies' boxes."""
    markers = [
        Marker("bookmark", b.at_seconds, f"Bookmark at {b.at_seconds:.1f} s: {b.note}")
        for b in bookmarks
    ]
    markers += [
        Marker("flag", 0.0, f"Flagged: {flag.get_kind_display().lower()} (the whole recording)")
        for flag in flags
        if flag.active
    ]
    for derived in recording.derived.all():
        for box in (derived.spec or {}).get("boxes", []):
            start, end = float(box["start"]), float(box["end"])
            markers.append(
                Marker("redaction", start, f"Redacted from {start:.1f} s to {end:.1f} s", end)
            )
    return markers


@staff_required
def recording_detail_view(request, recording_id):
    """The recording page. Opening footage asks once for the purpose, recorded as a consultation."""
    recording = recording_get_for(user=request.user, recording_id=recording_id)
    error = None
    if request.method == "POST":
        try:
            recording_consult(
                recording=recording, actor=request.user, purpose=request.POST.get("purpose", "")
            )
        except ConsultationError as exc:
            error = str(exc)
        else:
            mark_consulted(request, recording)
            return redirect(request.path)
    if not consulted(request, recording):
        return render(
            request, "staff/recording_purpose.html", {"recording": recording, "error": error}
        )
    flags = list(recording.flags.select_related("flagged_by__officer", "lifted_by__officer"))
    bookmarks = list(recording.bookmarks.select_related("created_by"))
    context = {
        "recording": recording,
        "player": _staff_player(recording, bookmarks=bookmarks, flags=flags),
        "flags": flags,
        "holds": recording.holds.filter(active=True),
        "events": audit_lines(
            AuditEvent.objects.filter(
                object_type="evidence.recording", object_id=str(recording.pk)
            ).order_by("-seq")[:100]
        ),
        "can_flag": request.user.has_perm("evidence.flag_recording"),
        "can_change_cases": request.user.has_perm("review.change_case"),
        "cases": recording.cases.all(),
        "bookmarks": bookmarks,
        "open_cases": case_list_for(user=request.user).filter(
            borough=recording.borough, closed_at__isnull=True
        )[:100],
        "incidents": incident_list_for(user=request.user)
        .filter(tags__recording=recording)
        .order_by("opened_at"),
        "days_left": (recording.delete_after - timezone.now()).days,
        "crime_ref_example": settings.BWV_CRIME_REF_EXAMPLE,
        "can_watch_together": _may_watch_together(request.user),
    }
    return render(request, "staff/recording.html", context)


@staff_required
def recording_media_view(request, recording_id):
    """The clip's plaintext, by HTTP Range, decrypting only the segments asked for."""
    recording = recording_get_for(user=request.user, recording_id=recording_id)
    if not consulted(request, recording):
        return HttpResponseForbidden("State why you are viewing this footage first.")
    return media_response(recording, request.headers.get("Range", ""))


@staff_required
@require_POST
def recording_still_view(request, recording_id):
    """A PNG of the frame at the player's position, as a download; each one is audited."""
    recording = recording_get_for(user=request.user, recording_id=recording_id)
    if not consulted(request, recording):
        return HttpResponseForbidden("State why you are viewing this footage first.")
    try:
        at = float(request.POST.get("at_seconds", ""))
        png, _event = recording_still_take(
            recording=recording,
            actor=request.user,
            at_seconds=at,
            purpose="still of a frame for a witness statement",
        )
    except ValueError:
        return HttpResponse("The still needs a time in seconds.", status=400)
    except StillError as exc:
        return HttpResponse(str(exc).capitalize() + ".", status=400)
    response = HttpResponse(png, content_type="image/png")
    name = f"{recording.camera.serial}-{recording.started_at:%Y%m%dT%H%M%SZ}-{at:09.3f}s.png"
    response["Content-Disposition"] = f'attachment; filename="{name}"'
    response["Cache-Control"] = "private, no-store"
    return response


@staff_required
def recording_poster_view(request, recording_id):
    recording = recording_get_for(user=request.user, recording_id=recording_id)
    if not consulted(request, recording) or not recording.poster_key:
        raise Http404
    response = HttpResponse(recording_poster(recording), content_type="image/jpeg")
    response["Cache-Control"] = "private, no-store"
    return response


@staff_required
def recording_thumbnail_view(request, recording_id):
    """The small poster of a recording in a list (the search, a case), for anyone whose scope
    covers the recording (404 otherwise, like the list that shows it).

    Not a consultation: no purpose is asked and nothing is audited. It is the clip's first frame
    at the size of a list's cell, shown only to someone who may already see the recording's row,
    and it opens none of the footage; the poster at full size, the filmstrip and the clip itself
    stay behind the purpose given on the recording's page, which is audited. A page of 25
    results therefore writes no audit event, and leaks nothing outside the user's scope."""
    recording = recording_get_for(user=request.user, recording_id=recording_id)
    if not recording.poster_key:
        raise Http404
    response = HttpResponse(
        poster_thumbnail(recording_poster(recording)), content_type="image/jpeg"
    )
    response["Cache-Control"] = "private, no-store"
    return response


@staff_required
def recording_filmstrip_view(request, recording_id):
    """The timeline's preview frames (evidence/filmstrip.py): footage, so only once its purpose
    was given, like the clip they come from."""
    recording = recording_get_for(user=request.user, recording_id=recording_id)
    if not consulted(request, recording) or not recording.filmstrip_key:
        raise Http404
    response = HttpResponse(recording_filmstrip(recording), content_type="image/jpeg")
    response["Cache-Control"] = "private, no-store"
    return response


def _flag_words(flag: EvidenceFlag) -> str:
    """ "Flagged as evidence, crime reference 1234567/26" or "Flagged for a policing purpose"."""
    if flag.kind == FlagKind.EVIDENCE:
        ref = f", crime reference {flag.crime_reference}" if flag.crime_reference else ""
        return f"Flagged as evidence{ref}"
    return f"Flagged as {flag.get_kind_display().lower()}"


@staff_required
@require_POST
def recording_flag_view(request, recording_id):
    recording = recording_get_for(user=request.user, recording_id=recording_id)
    if not request.user.has_perm("evidence.flag_recording"):
        return HttpResponseForbidden("Your role cannot flag recordings.")
    try:
        flag = recording_flag(
            recording=recording,
            kind=request.POST.get("kind", ""),
            actor=request.user,
            reason=request.POST.get("reason", ""),
            crime_reference=request.POST.get("crime_reference", ""),
        )
    except ReviewError as exc:
        messages.error(request, str(exc))
    else:
        messages.success(
            request, f"{_flag_words(flag)}: the recording is held and will not be deleted."
        )
    return redirect("recording-detail", recording_id=recording.pk)


@staff_required
@require_POST
def recording_unflag_view(request, recording_id, flag_id):
    recording = recording_get_for(user=request.user, recording_id=recording_id)
    if not request.user.has_perm("evidence.flag_recording"):
        return HttpResponseForbidden("Your role cannot lift flags.")
    flag = get_object_or_404(EvidenceFlag, pk=flag_id, recording=recording)
    try:
        recording_unflag(flag=flag, actor=request.user, reason=request.POST.get("reason", ""))
    except ReviewError as exc:
        messages.error(request, str(exc))
    else:
        messages.success(
            request,
            f"Flag lifted ({_flag_words(flag)[len('Flagged as ') :]}). The recording is kept "
            "only while another flag, a case or a hold keeps it.",
        )
    return redirect("recording-detail", recording_id=recording.pk)


@staff_required
def case_list_view(request):
    cases = (
        case_list_for(user=request.user).select_related("borough").annotate(n=Count("recordings"))
    )
    can_create = request.user.has_perm("review.add_case")
    if request.method == "POST":
        if not can_create:
            return HttpResponseForbidden("Your role cannot open cases.")
        borough = user_borough(request.user)
        if borough is None:
            messages.error(request, "Only staff of a borough can open its cases.")
            return redirect("case-list")
        try:
            case = case_create(
                crime_reference=request.POST.get("crime_reference", ""),
                title=request.POST.get("title", ""),
                borough=borough,
                actor=request.user,
            )
        except ReviewError as exc:
            messages.error(request, str(exc))
            return redirect("case-list")
        return redirect("case-detail", case_id=case.pk)
    show = request.GET.get("show", "")
    if show in ("open", "closed"):
        cases = cases.filter(closed_at__isnull=show == "open")
    cases, sort = sort_by(
        request,
        cases,
        columns={
            "reference": ("crime_reference", "id"),
            "opened": ("created_at", "id"),
            "recordings": ("n", "id"),
            "borough": ("borough__name", "id"),
        },
        default="-opened",
    )
    return render(
        request,
        "staff/cases.html",
        {
            "page": (page := page_of(request, cases)),
            "cases": page,
            "sort": sort,
            "show": show,
            "can_create": can_create,
            "example": settings.BWV_CRIME_REF_EXAMPLE,
        },
    )


def _staff_player(recording, *, bookmarks, flags) -> dict:
    """The player of a recording on a staff page: its footage, poster and still endpoints, and its
    bookmarks and flags on the timeline."""
    return player_for(
        recording,
        element_id="player",
        src=reverse("recording-media", args=[recording.pk]),
        poster=reverse("recording-poster", args=[recording.pk]) if recording.poster_key else "",
        still_url=reverse("recording-still", args=[recording.pk]),
        markers=recording_markers(recording, bookmarks=bookmarks, flags=flags),
        filmstrip=reverse("recording-filmstrip", args=[recording.pk])
        if recording.filmstrip_key
        else "",
    )


def _case_player(request, recordings) -> tuple[object, dict] | tuple[None, None]:
    """The recording chosen with ?play= and its player, once its opening has been recorded."""
    chosen = next((r for r in recordings if str(r.pk) == request.GET.get("play")), None)
    if chosen is None or not consulted(request, chosen):
        return None, None
    return chosen, _staff_player(chosen, bookmarks=chosen.bookmarks.all(), flags=chosen.flags.all())


def _case_page(request, case, *, close_error: str = "", status: int = 200):
    recordings = list(case.recordings.select_related("camera", "officer").order_by("started_at"))
    playing, player = _case_player(request, recordings)
    context = {
        "case": case,
        "recordings": recordings,
        "player": player,
        "playing": playing,
        "candidates": case.candidates.select_related(
            "recording__officer", "recording__camera", "decided_by"
        ),
        "can_decide": case_decider(user=request.user, case=case),
        "can_change": request.user.has_perm("review.change_case"),
        "close_error": close_error,
        "close_reason": request.POST.get("reason", "") if close_error else "",
    }
    return render(request, "staff/case.html", context, status=status)


@staff_required
def case_detail_view(request, case_id):
    return _case_page(request, case_get_for(user=request.user, case_id=case_id))


@staff_required
@require_POST
def case_play_view(request, case_id, recording_id):
    """Play a recording of the case on the case's page: opening it is a consultation, recorded
    with the case's crime reference as its purpose."""
    case = case_get_for(user=request.user, case_id=case_id)
    recording = recording_get_for(user=request.user, recording_id=recording_id)
    if not case.recordings.filter(pk=recording.pk).exists():
        raise Http404
    if not consulted(request, recording):
        recording_consult(
            recording=recording,
            actor=request.user,
            purpose=f"case {case.crime_reference}: {case.title}",
        )
        mark_consulted(request, recording)
    return redirect(f"{reverse('case-detail', args=[case.pk])}?play={recording.pk}#player")


@staff_required
@require_POST
def case_close_view(request, case_id):
    """Close a case with a reason; its holds are lifted. A missing reason is shown at the field."""
    case = case_get_for(user=request.user, case_id=case_id)
    if not request.user.has_perm("review.change_case"):
        return HttpResponseForbidden("Your role cannot change cases.")
    try:
        case = case_close(case=case, actor=request.user, reason=request.POST.get("reason", ""))
    except ReviewError as exc:
        case.refresh_from_db()
        return _case_page(request, case, close_error=str(exc), status=400)
    messages.success(
        request,
        f"Case {case.crime_reference} closed. Its recordings are no longer held by it: each "
        "is kept only while a flag, another case or another hold keeps it.",
    )
    return redirect("case-detail", case_id=case.pk)


@staff_required
@require_POST
def case_add_view(request, recording_id):
    recording = recording_get_for(user=request.user, recording_id=recording_id)
    if not request.user.has_perm("review.change_case"):
        return HttpResponseForbidden("Your role cannot change cases.")
    case = case_get_for(user=request.user, case_id=request.POST.get("case") or 0)
    try:
        case_add_recording(case=case, recording=recording, actor=request.user)
    except ReviewError as exc:
        messages.error(request, str(exc))
    else:
        messages.success(request, f"Added to case {case.crime_reference}.")
    return redirect("recording-detail", recording_id=recording.pk)


@staff_required
@require_POST
def case_remove_view(request, case_id, recording_id):
    case = case_get_for(user=request.user, case_id=case_id)
    recording = recording_get_for(user=request.user, recording_id=recording_id)
    if not request.user.has_perm("review.change_case"):
        return HttpResponseForbidden("Your role cannot change cases.")
    try:
        case_remove_recording(
            case=case,
            recording=recording,
            actor=request.user,
            reason=request.POST.get("reason", ""),
        )
    except ReviewError as exc:
        messages.error(request, str(exc))
    return redirect("case-detail", case_id=case.pk)


@staff_required
@require_POST
def recording_bulk_flag_view(request):
    """Flag the recordings ticked on the search page: each in scope, each its own flag and hold."""
    if not request.user.has_perm("evidence.flag_recording"):
        return HttpResponseForbidden("Your role cannot flag recordings.")
    ids = request.POST.getlist("ids")[:200]
    done, refused = 0, []
    for recording_id in ids:
        try:
            recording = recording_get_for(user=request.user, recording_id=recording_id)
            recording_flag(
                recording=recording,
                kind=request.POST.get("kind", ""),
                actor=request.user,
                reason=request.POST.get("reason", ""),
                crime_reference=request.POST.get("crime_reference", ""),
            )
            done += 1
        except (ReviewError, Http404) as exc:
            refused.append(str(exc) or "not found")
    if done:
        kind = FlagKind(request.POST["kind"]).label.lower()
        ref = request.POST.get("crime_reference", "").strip().upper()
        messages.success(
            request,
            f"Flagged {done} recording{pluralize(done)} as {kind}"
            + (
                f", crime reference {ref}"
                if ref and request.POST["kind"] == FlagKind.EVIDENCE
                else ""
            )
            + ": held, and not deleted.",
        )
    for reason in sorted(set(refused)):
        messages.error(request, f"Not flagged ({refused.count(reason)}): {reason}")
    # Back to the search the form came from: a path of this site only, never another site.
    return redirect(safe_local_path(request, request.POST.get("back"), reverse("recording-search")))


@staff_required
@require_POST
def bookmark_add_view(request, recording_id):
    recording = recording_get_for(user=request.user, recording_id=recording_id)
    if not consulted(request, recording):
        return HttpResponseForbidden("State why you are viewing this footage first.")
    try:
        at = float(request.POST.get("at_seconds", ""))
        bookmark_add(
            recording=recording,
            actor=request.user,
            at_seconds=at,
            note=request.POST.get("note", ""),
        )
    except ValueError:
        messages.error(request, "The bookmark needs a time in seconds.")
    except BookmarkError as exc:
        messages.error(request, str(exc))
    return redirect("recording-detail", recording_id=recording.pk)


@staff_required
def grant_list_view(request):
    """System admins give time-limited access to another borough's footage, and revoke it."""
    if not user_has_role(request.user, Role.SYSTEM_ADMIN):
        raise Http404
    if request.method == "POST":
        try:
            if request.POST.get("revoke"):
                grant = get_object_or_404(BoroughAccessGrant, pk=request.POST["revoke"])
                borough_grant_revoke(
                    grant=grant, actor=request.user, reason=request.POST.get("reason", "revoked")
                )
            else:
                user = (
                    get_user_model()
                    .objects.filter(username=request.POST.get("username", ""))
                    .first()
                )
                borough = Borough.objects.filter(
                    code=request.POST.get("borough", "").upper()
                ).first()
                if user is None or borough is None:
                    raise GrantError("no such user or borough")
                borough_grant_create(
                    user=user,
                    borough=borough,
                    actor=request.user,
                    reason=request.POST.get("reason", ""),
                    hours=int(request.POST.get("hours") or 0),
                )
        except (GrantError, ValueError) as exc:
            messages.error(request, str(exc))
        return redirect("grant-list")
    grants = BoroughAccessGrant.objects.filter(
        revoked_at__isnull=True, expires_at__gt=timezone.now()
    ).select_related("user__officer", "borough", "granted_by__officer")
    page = page_of(request, grants.order_by("expires_at", "id"))
    return render(
        request,
        "staff/grants.html",
        {"page": page, "grants": page, "boroughs": Borough.objects.all()},
    )


@staff_required
def incident_detail_view(request, incident_id):
    """A dispatch incident: where, when, who was sent, and every officer's footage of it that the
    user may see, officer by officer in the order it was recorded."""
    incident = incident_get_for(user=request.user, incident_id=incident_id)
    recordings = list(incident_recordings_for(user=request.user, incident=incident))
    attendances = incident.attendances.select_related("officer")
    by_officer: dict = {}
    for recording in recordings:
        by_officer.setdefault(recording.officer, []).append(recording)
    context = {
        "incident": incident,
        "attendances": attendances,
        "by_officer": sorted(
            by_officer.items(), key=lambda item: item[0].collar_number if item[0] else ""
        ),
        "count": len(recordings),
        "search_url": reverse("recording-search")
        + "?"
        + urlencode({"incident": incident.reference}),
        "can_watch_together": _may_watch_together(request.user),
    }
    return render(request, "staff/incident.html", context)


# -- The incident view: several recordings of the same time, played in step ---------------------


def _may_watch_together(user) -> bool:
    """The incident view is for those who review a borough's footage (and system admins): an
    officer, who sees only their own footage, has nothing to set beside it."""
    return staff_borough_ids(user=user, with_grants=True) != []


@staff_required
def recording_together_view(request, recording_id):
    """A recording beside every other of its borough that the user may see recorded at the same
    time (and, where both carry GPS, nearby), played in step on one timeline."""
    if not _may_watch_together(request.user):
        return HttpResponseForbidden("Your role cannot open the incident view.")
    recording = recording_get_for(user=request.user, recording_id=recording_id)
    recordings = recording_overlaps_for(
        user=request.user,
        recording=recording,
        within_metres=settings.BWV_INCIDENT_VIEW_DISTANCE_METRES,
    )
    return _together_page(
        request,
        recordings,
        anchor=recording,
        caption=f"Camera {recording.camera.serial}, {_local(recording.started_at)}",
        back=(reverse("recording-detail", args=[recording.pk]), "Back to the recording"),
    )


@staff_required
def incident_together_view(request, incident_id):
    """Every officer's footage of a dispatch incident that the user may see, played in step."""
    if not _may_watch_together(request.user):
        return HttpResponseForbidden("Your role cannot open the incident view.")
    incident = incident_get_for(user=request.user, incident_id=incident_id)
    return _together_page(
        request,
        list(incident_recordings_for(user=request.user, incident=incident)),
        anchor=None,
        caption=f"Incident {incident.reference}",
        back=(reverse("incident-detail", args=[incident.pk]), "Back to the incident"),
    )


def _local(when) -> str:
    return date_format(timezone.localtime(when), "D j M Y H:i:s")


def _together_page(request, recordings, *, anchor, caption: str, back: tuple[str, str]):
    """Asks once for the purpose of opening the footage not yet opened in this session (one
    consultation recorded for each recording), then plays them side by side. The form names the
    recordings it opens, and only those are recorded: one that appeared since is asked for again."""
    shown = recordings[: settings.BWV_INCIDENT_VIEW_MAX]
    if anchor is not None and anchor not in shown:
        # Too many of the same time: the recording itself, and those that started nearest it.
        nearest = sorted(
            recordings, key=lambda r: (r.pk != anchor.pk, abs(r.started_at - anchor.started_at))
        )
        shown = [r for r in recordings if r in nearest[: settings.BWV_INCIDENT_VIEW_MAX]]
    more = [r for r in recordings if r not in shown]
    unopened = [r for r in shown if not consulted(request, r)]
    error = None
    if request.method == "POST":
        named = set(request.POST.getlist("recording"))
        opening = [r for r in unopened if str(r.pk) in named]
        try:
            if not opening:
                raise ConsultationError("the footage to open has changed: check the list again")
            recordings_consult(
                recordings=opening, actor=request.user, purpose=request.POST.get("purpose", "")
            )
        except ConsultationError as exc:
            error = str(exc)
        else:
            for recording in opening:
                mark_consulted(request, recording)
            return redirect(request.path)
    context = {
        "caption": caption,
        "back_url": back[0],
        "back_label": back[1],
        "anchor": anchor,
        "more": more,
        "count": len(recordings),
    }
    if unopened:
        context |= {"unopened": unopened, "error": error}
        return render(request, "staff/together_purpose.html", context, status=400 if error else 200)
    tiles = [
        {
            "recording": r,
            "player": player_for(
                r,
                element_id=f"player-{n}",
                src=reverse("recording-media", args=[r.pk]),
                poster=reverse("recording-poster", args=[r.pk]) if r.poster_key else "",
            ),
            "ends_at": _media_end(r),
        }
        for n, r in enumerate(shown, start=1)
    ]
    context |= {
        "tiles": tiles,
        "timeline_start": min((r.started_at for r in shown), default=None),
        "timeline_end": max((t["ends_at"] for t in tiles), default=None),
    }
    return render(request, "staff/together.html", context)


def _media_end(recording):
    """When the clip's footage ends on the wall clock: its start plus the probed length, which is
    what plays (the end the camera declared may disagree with the file)."""
    if recording.duration_seconds:
        return recording.started_at + timedelta(seconds=recording.duration_seconds)
    return recording.ended_at
