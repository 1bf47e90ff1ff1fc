"""Borough camera administration pages (/estate/) and the officers' shared-pool page (/pool/).

Borough admins see and change their own borough only, system admins every borough; another
borough's officer, camera or dock is 404, as if it did not exist. Other roles get 403.
"""

from __future__ import annotations

import functools

from django import forms
from django.conf import settings
from django.contrib import messages
from django.db.models import F, Q
from django.http import HttpResponse, HttpResponseForbidden
from django.shortcuts import redirect, render
from django.utils import timezone

from common.auth import staff_required
from common.web import csv_response, page_of, sort_by
from devices.models import Borough, Camera, CameraAssignment, CameraKind, CameraStatus, Rank
from devices.selectors import (
    boroughs_for,
    camera_get_for,
    camera_list_for,
    dock_get_for,
    dock_list_for,
    estate_admin,
    lost_alert_list_for,
    officer_get_for,
    officer_list_for,
    unit_list_for,
    user_borough,
)
from devices.services import (
    CameraError,
    ImportRefused,
    camera_bulk_issue,
    camera_issue,
    camera_return,
    camera_transfer,
    cameras_import,
    dock_register,
    dock_revoke,
    dock_rotate_key,
    officers_import,
    unit_create,
)
from estate.selectors import (
    attach_holders,
    cameras_with_holder_id,
    estate_figures,
    officers_with_camera,
    undocked_cameras_for,
)
from estate.services import camera_status_change
from evidence.models import IngestUpload
from evidence.selectors import clock_correctable_get_for, clock_suspect_list_for
from evidence.services import ClockCorrectionError, recording_correct_time

MAX_IMPORT_BYTES = 2 * 1024 * 1024


def estate_required(view):
    @staff_required
    @functools.wraps(view)
    def wrapped(request, *args, **kwargs):
        if not estate_admin(request.user):
            return HttpResponseForbidden("Camera administration is for borough admins.")
        return view(request, *args, **kwargs)

    return wrapped


def _target_borough(request) -> Borough | None:
    """The borough a new officer, camera, unit or dock goes to: a borough admin's own; a system
    admin picks one (POST field `borough`, a code)."""
    code = request.POST.get("borough", "")
    if code:
        return boroughs_for(user=request.user).filter(code=code).first()
    return user_borough(request.user)


def _csv_response(filename: str, rows, header: list[str] | None = None) -> HttpResponse:
    """Rows (dicts) as CSV; `header` names the columns of a generator of rows, else the first
    row's keys do."""
    if header is None:
        rows = list(rows)
        header = list(rows[0]) if rows else []
    return csv_response(filename, header, (row.values() for row in rows))


def _page(request, queryset, per_page=50):
    return page_of(request, queryset, per_page=per_page)


# -- Dashboard --------------------------------------------------------------------------------------


@estate_required
def estate_dashboard_view(request):
    try:
        days = max(1, min(365, int(request.GET.get("days") or 7)))
    except ValueError:
        days = 7
    now = timezone.now()
    undocked = undocked_cameras_for(user=request.user, now=now, days=days)
    table = request.GET.get("csv")
    if table == "undocked":
        return _csv_response(
            "estate-undocked",
            (
                {
                    "serial": c.serial,
                    "borough": c.borough.name,
                    "status": c.get_status_display(),
                    "last_docked": c.last_docked_at.isoformat() if c.last_docked_at else "never",
                }
                for c in undocked.iterator(chunk_size=2000)
            ),
            header=["serial", "borough", "status", "last_docked"],
        )
    figures = estate_figures(user=request.user, now=now)
    if table in ("rollout", "uploads", "storage", "flagged", "deletions", "overdue"):
        return _csv_response(f"estate-{table}", figures[table])
    page = _page(request, undocked)
    return render(
        request,
        "estate/dashboard.html",
        {
            "f": figures,
            "days": days,
            "page": page,
            "undocked": attach_holders(page.object_list),
        },
    )


# -- Officers and units -----------------------------------------------------------------------------


@estate_required
def officer_list_view(request):
    report = None
    if request.method == "POST":
        report = _import(request, officers_import, "officers")
        if report is None:
            return redirect("estate-officers")
    officers = officer_list_for(user=request.user)
    q = request.GET.get("q", "").strip()
    if q:
        officers = officers.filter(
            Q(collar_number__iexact=q) | Q(last_name__icontains=q) | Q(first_name__icontains=q)
        )
    if request.GET.get("unit"):
        officers = (
            officers.filter(unit_id=request.GET["unit"])
            if request.GET["unit"].isdigit()
            else officers.none()
        )
    if request.GET.get("rank") in Rank.values:
        officers = officers.filter(rank=request.GET["rank"])
    officers, sort = sort_by(
        request,
        officers_with_camera(officers),
        columns={
            "name": ("last_name", "first_name", "id"),
            "collar": ("collar_number",),
            "rank": ("rank", "last_name", "id"),
            "camera": (F("camera_serial").asc(nulls_last=True), "last_name", "id"),
        },
        default="name",
    )
    return render(
        request,
        "estate/officers.html",
        {
            "page": _page(request, officers),
            "sort": sort,
            "q": q,
            "ranks": Rank.choices,
            "units": unit_list_for(user=request.user),
            "report": report,
            "boroughs": boroughs_for(user=request.user),
        },
        status=400 if report else 200,
    )


@estate_required
def officer_detail_view(request, officer_id):
    officer = officer_get_for(user=request.user, officer_id=officer_id)
    return render(
        request,
        "estate/officer.html",
        {
            "officer": officer,
            "assignments": officer.assignments.select_related(
                "camera", "issued_by__officer", "returned_by"
            )[:100],
        },
    )


@estate_required
def unit_list_view(request):
    if request.method == "POST":
        borough = _target_borough(request)
        if borough is None:
            messages.error(request, "Choose a borough.")
        else:
            try:
                unit = unit_create(
                    name=request.POST.get("name", ""),
                    borough=borough,
                    actor=request.user,
                    specialist=bool(request.POST.get("specialist")),
                )
                messages.success(request, f"Unit {unit.name} added.")
            except CameraError as exc:
                messages.error(request, str(exc))
        return redirect("estate-units")
    return render(
        request,
        "estate/units.html",
        {
            "page": (
                page := _page(request, unit_list_for(user=request.user).order_by("name", "id"))
            ),
            "units": page,
            "boroughs": boroughs_for(user=request.user),
        },
    )


def _import(request, importer, what: str):
    """Run a CSV import; None when it succeeded (with a message), else the report to show."""
    borough = _target_borough(request)
    upload = request.FILES.get("file")
    if borough is None:
        return {"errors": [{"row": 0, "message": "choose a borough"}]}
    if upload is None:
        return {"errors": [{"row": 0, "message": "choose a CSV file"}]}
    if upload.size > MAX_IMPORT_BYTES:
        return {"errors": [{"row": 0, "message": "the file is larger than 2 MB"}]}
    try:
        text = upload.read().decode("utf-8-sig")
    except UnicodeDecodeError:
        return {
            "errors": [{"row": 0, "message": "the file is not UTF-8 text (save it as CSV UTF-8)"}]
        }
    try:
        count = importer(text=text, borough=borough, actor=request.user)
    except ImportRefused as exc:
        return {
            "errors": [{"row": e.row, "message": e.message} for e in exc.errors],
            "filename": upload.name,
        }
    messages.success(request, f"Imported {count} {what} into {borough}.")
    return None


# -- Cameras ----------------------------------------------------------------------------------------


@estate_required
def camera_list_view(request):
    report = None
    if request.method == "POST":
        if request.POST.get("action") == "bulk_issue":
            borough_ids = list(boroughs_for(user=request.user).values_list("pk", flat=True))
            try:
                n = camera_bulk_issue(
                    lines=request.POST.get("lines", "").splitlines()[:2000],
                    borough_ids=borough_ids,
                    actor=request.user,
                )
                messages.success(request, f"Issued {n} cameras.")
                return redirect("estate-cameras")
            except ImportRefused as exc:
                report = {
                    "errors": [{"row": e.row, "message": e.message} for e in exc.errors],
                    "lines": request.POST.get("lines", ""),
                }
        else:
            report = _import(request, cameras_import, "cameras")
            if report is None:
                return redirect("estate-cameras")
    cameras = camera_list_for(user=request.user)
    q = request.GET.get("q", "").strip()
    if q:
        cameras = cameras.filter(serial__icontains=q)
    if request.GET.get("status") in CameraStatus.values:
        cameras = cameras.filter(status=request.GET["status"])
    if request.GET.get("kind") in CameraKind.values:
        cameras = cameras.filter(kind=request.GET["kind"])
    if request.GET.get("pool") in ("yes", "no"):
        cameras = cameras.filter(shared_pool=request.GET["pool"] == "yes")
    cameras, sort = sort_by(
        request,
        cameras_with_holder_id(cameras),
        columns={
            "serial": ("serial",),
            "status": ("status", "serial"),
            "docked": (F("last_docked_at").desc(nulls_last=True), "serial"),
            "borough": ("borough__name", "serial"),
        },
        default="serial",
    )
    return render(
        request,
        "estate/cameras.html",
        {
            "page": (page := _page(request, cameras)),
            "cameras": attach_holders(page.object_list),
            "sort": sort,
            "q": q,
            "report": report,
            "statuses": CameraStatus.choices,
            "kinds": CameraKind.choices,
            "boroughs": boroughs_for(user=request.user),
        },
        status=400 if report else 200,
    )


@estate_required
def camera_detail_view(request, camera_id):
    camera = camera_get_for(user=request.user, camera_id=camera_id)
    if request.method == "POST":
        action = request.POST.get("action")
        note = request.POST.get("note", "").strip()[:200]
        try:
            if action in ("issue", "transfer"):
                collar = request.POST.get("collar_number", "").strip()
                officer = officer_list_for(user=request.user).filter(collar_number=collar).first()
                if officer is None:
                    raise CameraError(
                        f"no officer with collar number {collar or '(none)'} in your borough"
                    )
                if action == "issue":
                    camera_issue(
                        camera=camera,
                        officer=officer,
                        actor=request.user,
                        note=note,
                        allow_second=bool(request.POST.get("allow_second")),
                    )
                    messages.success(request, f"Issued to {officer.display_name}.")
                else:
                    camera_transfer(camera=camera, officer=officer, actor=request.user, note=note)
                    messages.success(request, f"Transferred to {officer.display_name}.")
            elif action == "return":
                camera_return(camera=camera, actor=request.user, note=note)
                messages.success(request, f"Camera {camera.serial} returned to stock.")
            elif action == "status":
                camera_status_change(
                    camera=camera,
                    status=request.POST.get("status", ""),
                    actor=request.user,
                    reason=request.POST.get("reason", ""),
                )
                camera.refresh_from_db()
                messages.success(
                    request, f"Camera {camera.serial} is now {camera.get_status_display().lower()}."
                )
            else:
                raise CameraError("unknown action")
        except CameraError as exc:
            messages.error(request, str(exc))
        return redirect("estate-camera", camera_id=camera.pk)
    holder = camera.assignments.filter(returned_at__isnull=True).select_related("officer").first()
    return render(
        request,
        "estate/camera.html",
        {
            "camera": camera,
            "holder": holder,
            "assignments": camera.assignments.select_related(
                "officer", "issued_by__officer", "returned_by"
            )[:100],
            "changes": camera.status_changes.select_related("changed_by__officer")[:100],
            "alerts": camera.lost_alerts.all()[:10],
            "statuses": [
                (s, label)
                for s, label in CameraStatus.choices
                if s not in (CameraStatus.ISSUED, CameraStatus.DOCKED)
            ],
        },
    )


@estate_required
def alert_list_view(request):
    alerts = lost_alert_list_for(user=request.user).select_related("raised_by__officer")
    page = _page(request, alerts.order_by("-raised_at", "-id"))
    return render(request, "estate/alerts.html", {"page": page, "alerts": page})


# -- Clock-suspect recordings -----------------------------------------------------------------------


@estate_required
def clock_suspect_list_view(request):
    """Footage whose camera clock was wrong: kept from arrival until an admin corrects its time."""
    page = _page(request, clock_suspect_list_for(user=request.user))
    return render(request, "estate/clock_suspect.html", {"page": page})


class ClockCorrectionForm(forms.Form):
    started_at = forms.DateTimeField(
        label="When the recording really started (London time)",
        input_formats=["%Y-%m-%dT%H:%M:%S", "%Y-%m-%dT%H:%M"],
        widget=forms.DateTimeInput(
            attrs={"type": "datetime-local", "step": "1"}, format="%Y-%m-%dT%H:%M:%S"
        ),
        error_messages={
            "required": "Enter the date and time the recording started",
            "invalid": "Enter a real date and time",
        },
    )
    reason = forms.CharField(
        label="How do you know?",
        help_text="For example: the time shown on the custody suite clock in the footage",
        max_length=500,
        widget=forms.Textarea(attrs={"rows": 3}),
        error_messages={"required": "Say how the correct time is known"},
    )


@estate_required
def clock_correct_view(request, recording_id):
    recording = clock_correctable_get_for(user=request.user, recording_id=recording_id)
    form = ClockCorrectionForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            recording = recording_correct_time(
                recording=recording,
                started_at=form.cleaned_data["started_at"],
                actor=request.user,
                reason=form.cleaned_data["reason"],
            )
        except ClockCorrectionError as exc:
            message = str(exc)
            form.add_error("started_at", message[:1].upper() + message[1:])
        else:
            messages.success(
                request,
                f"Time corrected: {recording.camera.serial} now starts "
                f"{timezone.localtime(recording.started_at):%d %b %Y %H:%M:%S}, attributed to "
                f"{recording.officer.display_name if recording.officer else 'nobody'}, deleted "
                f"after {timezone.localtime(recording.delete_after):%d %b %Y} unless held.",
            )
            return redirect("estate-clock")
    return render(
        request,
        "estate/clock_correct.html",
        {"recording": recording, "form": form, "review_days": settings.BWV_MIN_REVIEW_DAYS},
        status=400 if form.errors else 200,
    )


# -- Docks ------------------------------------------------------------------------------------------


@estate_required
def dock_list_view(request):
    new_key = None
    if request.method == "POST":
        borough = _target_borough(request)
        station, name = (
            request.POST.get("station", "").strip(),
            request.POST.get("name", "").strip(),
        )
        if borough is None or not station or not name or len(station) > 120 or len(name) > 100:
            messages.error(request, "A dock needs a borough, a station (120) and a name (100).")
        else:
            dock, new_key = dock_register(
                borough=borough, station=station, name=name, actor=request.user
            )
            messages.success(request, f"Dock {dock} registered.")
    docks, sort = sort_by(
        request,
        dock_list_for(user=request.user).select_related("borough"),
        columns={
            "station": ("station", "name", "id"),
            "borough": ("borough__name", "station", "name", "id"),
            "seen": (F("last_seen_at").desc(nulls_last=True), "id"),
        },
        default="station",
    )
    return render(
        request,
        "estate/docks.html",
        {
            "page": (page := _page(request, docks)),
            "docks": page,
            "sort": sort,
            "new_key": new_key,
            "boroughs": boroughs_for(user=request.user),
        },
    )


@estate_required
def dock_detail_view(request, dock_id):
    dock = dock_get_for(user=request.user, dock_id=dock_id)
    new_key = None
    if request.method == "POST":
        if request.POST.get("action") == "rotate":
            # The old key stops at once: the dock uploads nothing until the new one is entered.
            if request.POST.get("confirm") != "yes":
                messages.error(
                    request,
                    "Tick the box to confirm a new key: the dock stops uploading until it is "
                    "entered on the dock.",
                )
            else:
                new_key = dock_rotate_key(dock=dock, actor=request.user)
                messages.success(
                    request,
                    f"New key made for {dock}. The old one no longer works: enter this one on "
                    "the dock now.",
                )
        elif request.POST.get("action") == "revoke":
            reason = request.POST.get("reason", "").strip()
            if not reason:
                messages.error(request, "Say why the dock is being revoked.")
            else:
                dock_revoke(dock=dock, actor=request.user, reason=reason)
                messages.success(request, "Dock revoked: it can no longer upload.")
                return redirect("estate-dock", dock_id=dock.pk)
    uploads = (
        IngestUpload.objects.filter(dock=dock)
        .select_related("recording")
        .order_by("-created_at")[:50]
    )
    return render(
        request, "estate/dock.html", {"dock": dock, "uploads": uploads, "new_key": new_key}
    )


# -- Shared pool (officers) -------------------------------------------------------------------------


@staff_required
def pool_view(request):
    """Officers check a pool camera out at the start of a shift and back in at its end."""
    officer = getattr(request.user, "officer", None)
    if officer is None:
        return HttpResponseForbidden("Only officers with an officer record use the camera pool.")
    if request.method == "POST":
        serial = request.POST.get("serial", "").strip()
        camera = Camera.objects.filter(
            serial=serial, borough=officer.borough, shared_pool=True
        ).first()
        try:
            if camera is None:
                raise CameraError(f"no pool camera {serial or '(none)'} in {officer.borough}")
            if request.POST.get("action") == "in":
                held = CameraAssignment.objects.filter(
                    camera=camera, officer=officer, returned_at__isnull=True
                ).exists()
                if not held:
                    raise CameraError(f"you do not hold camera {camera.serial}")
                camera_return(camera=camera, actor=request.user, pool=True)
                messages.success(request, f"Camera {camera.serial} checked in.")
            else:
                camera_issue(camera=camera, officer=officer, actor=request.user, pool=True)
                messages.success(request, f"Camera {camera.serial} checked out to you.")
        except CameraError as exc:
            messages.error(request, str(exc))
        return redirect("pool")
    held = CameraAssignment.objects.filter(
        officer=officer, returned_at__isnull=True
    ).select_related("camera")
    available = Camera.objects.filter(
        borough=officer.borough, shared_pool=True, status=CameraStatus.IN_STOCK
    ).order_by("serial")[:200]
    return render(request, "estate/pool.html", {"held": held, "available": available})
