"""Staff pages of the evidence app. Thin: parse, call a selector or service, render."""

from __future__ import annotations

from urllib.parse import urlencode

from django import forms
from django.conf import settings
from django.contrib import messages
from django.http import Http404, HttpResponse, HttpResponseForbidden
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.views.decorators.http import require_POST

from bwv.auth_views import staff_required
from evidence.crypto import open_blob, unwrap_data_key
from evidence.models import AuditEvent, EvidenceFlag
from evidence.playback import media_response
from evidence.selectors import SearchFilters, recording_get_for, recording_search
from evidence.services import FlagError, recording_consult, recording_flag, recording_unflag
from evidence.storage import blob_store


class SearchForm(forms.Form):
    officer = forms.CharField(
        required=False, max_length=100, label="Officer (name or collar number)"
    )
    camera = forms.CharField(required=False, max_length=64, label="Camera serial")
    started_from = forms.DateTimeField(
        required=False,
        label="Recorded from",
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}),
    )
    started_to = forms.DateTimeField(
        required=False,
        label="Recorded before",
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}),
    )
    flagged = forms.ChoiceField(
        required=False,
        label="Flagged",
        choices=[("", "Any"), ("yes", "Flagged"), ("no", "Not flagged")],
    )
    crime_reference = forms.CharField(required=False, max_length=40, label="Crime reference")
    case = forms.IntegerField(required=False, min_value=1, label="Case number")
    deleting_within = forms.IntegerField(
        required=False, min_value=0, max_value=366, label="Deleting within (days)"
    )
    sort = forms.ChoiceField(
        required=False, choices=[("newest", "Newest first"), ("oldest", "Oldest first")]
    )
    cursor = forms.CharField(required=False, max_length=200, widget=forms.HiddenInput)  # fmt: skip

    def filters(self) -> SearchFilters:
        d = self.cleaned_data
        return SearchFilters(
            officer=d["officer"], camera=d["camera"], started_from=d["started_from"],
            started_to=d["started_to"],
            flagged={"yes": True, "no": False}.get(d["flagged"]),
            crime_reference=d["crime_reference"], case=d["case"],
            deleting_within_days=d["deleting_within"], oldest_first=d["sort"] == "oldest",
        )  # fmt: skip


@staff_required
def recording_search_view(request):
    form = SearchForm(request.GET)  # every field is optional: no filters is a valid search
    page, next_url = None, None
    if form.is_valid():
        page = recording_search(user=request.user, filters=form.filters(),
                                cursor=form.cleaned_data.get("cursor") or "")  # fmt: skip
        if page.next_cursor:
            params = {k: v for k, v in request.GET.items() if k != "cursor" and v}
            next_url = "?" + urlencode({**params, "cursor": page.next_cursor})
    return render(
        request, "staff/recordings.html", {"form": form, "page": page, "next_url": next_url}
    )


CONSULTED = "bwv_consulted"  # session: recording ids whose purpose was given in this session


def _consulted(request, recording) -> bool:
    return str(recording.pk) in request.session.get(CONSULTED, {})


@staff_required
def recording_detail_view(request, recording_id):
    """The recording page. Opening footage asks once for the purpose, recorded as a consultation."""
    recording = recording_get_for(user=request.user, recording_id=recording_id)
    error = None
    if request.method == "POST":
        try:
            recording_consult(recording=recording, actor=request.user,
                              purpose=request.POST.get("purpose", ""))  # fmt: skip
        except FlagError as exc:
            error = str(exc)
        else:
            consulted = request.session.get(CONSULTED, {})
            consulted[str(recording.pk)] = timezone.now().isoformat()
            request.session[CONSULTED] = consulted
            return redirect(request.path)
    if not _consulted(request, recording):
        return render(request, "staff/recording_purpose.html",
                      {"recording": recording, "error": error})  # fmt: skip
    context = {
        "recording": recording,
        "flags": recording.flags.select_related("flagged_by", "lifted_by"),
        "holds": recording.holds.filter(active=True),
        "events": AuditEvent.objects.filter(object_type="evidence.recording",
                                            object_id=str(recording.pk)).order_by("-id")[:100],
        "can_flag": request.user.has_perm("evidence.flag_recording"),
        "days_left": (recording.delete_after - timezone.now()).days,
        "crime_ref_example": settings.BWV_CRIME_REF_EXAMPLE,
    }  # fmt: skip
    return render(request, "staff/recording.html", context)


@staff_required
def recording_media_view(request, recording_id):
    """The clip's plaintext, by HTTP Range, decrypting only the segments asked for."""
    recording = recording_get_for(user=request.user, recording_id=recording_id)
    if not _consulted(request, recording):
        return HttpResponseForbidden("State why you are viewing this footage first.")
    return media_response(recording, request.headers.get("Range", ""))


@staff_required
def recording_poster_view(request, recording_id):
    recording = recording_get_for(user=request.user, recording_id=recording_id)
    if not _consulted(request, recording) or not recording.poster_key:
        raise Http404
    key = unwrap_data_key(recording.wrapped_key, kek_id=recording.kek_id, recording_id=recording.id)
    image = open_blob(key, recording_id=recording.id, purpose="poster",
                      sealed=blob_store().get(recording.poster_key))  # fmt: skip
    response = HttpResponse(image, content_type="image/jpeg")
    response["Cache-Control"] = "private, no-store"
    return response


@staff_required
@require_POST
def recording_flag_view(request, recording_id):
    recording = recording_get_for(user=request.user, recording_id=recording_id)
    if not request.user.has_perm("evidence.flag_recording"):
        return HttpResponseForbidden("Your role cannot flag recordings.")
    try:
        recording_flag(recording=recording, kind=request.POST.get("kind", ""), actor=request.user,
                       reason=request.POST.get("reason", ""),
                       crime_reference=request.POST.get("crime_reference", ""))  # fmt: skip
    except FlagError as exc:
        messages.error(request, str(exc))
    else:
        messages.success(request, "Flagged: the recording is held and will not be deleted.")
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
    except FlagError as exc:
        messages.error(request, str(exc))
    else:
        messages.success(request, "Flag lifted.")
    return redirect("recording-detail", recording_id=recording.pk)
