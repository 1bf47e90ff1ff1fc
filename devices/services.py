"""Writes of the devices app: issuing, returning and transferring cameras, the shared pool, the
camera lifecycle, docks and their keys, bulk imports. All audited; assignment history and status
history are appended to, never edited (closing an open assignment is the one change they get)."""

from __future__ import annotations

import csv
import hashlib
import io
import secrets
from dataclasses import dataclass
from datetime import datetime

from django.contrib.auth import get_user_model
from django.core.mail import send_mail
from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils import timezone

from common.roles import Role
from custody.services import audit_record
from devices.models import (
    Borough,
    Camera,
    CameraAssignment,
    CameraKind,
    CameraStatus,
    CameraStatusChange,
    Dock,
    LostCameraAlert,
    Officer,
    Rank,
    Unit,
)


class CameraError(Exception):
    """A camera operation that cannot be done, with a message for the person who asked."""


def _new_dock_key() -> tuple[str, str, str]:
    key_id = secrets.token_hex(6)
    key = f"bwvdock_{key_id}_{secrets.token_urlsafe(32)}"
    return key_id, key, hashlib.sha256(key.encode()).hexdigest()


def _status_change(
    camera: Camera, to_status: str, *, actor, reason: str, at=None, detail: dict | None = None
) -> None:
    at = at or timezone.now()
    CameraStatusChange.objects.create(
        camera=camera,
        from_status=camera.status,
        to_status=to_status,
        reason=reason,
        changed_by=actor if getattr(actor, "pk", None) else None,
        changed_at=at,
        detail=detail or {},
    )
    camera.status, camera.status_reason, camera.status_changed_at = to_status, reason, at
    camera.save(update_fields=["status", "status_reason", "status_changed_at"])


@transaction.atomic
def camera_issue(
    *,
    camera: Camera,
    officer: Officer,
    actor,
    at: datetime | None = None,
    note: str = "",
    allow_second: bool = False,
    pool: bool = False,
) -> CameraAssignment:
    """Issue a camera to an officer (or check a pool camera out). Fails clearly if the camera is
    already out or unusable, or if the officer already holds a camera of that kind and the admin
    has not said a second one is wanted (`allow_second`, with the reason in `note`)."""
    at = at or timezone.now()
    camera = Camera.objects.select_for_update().get(pk=camera.pk)
    if camera.status in (CameraStatus.LOST, CameraStatus.RETIRED, CameraStatus.FAULTY):
        raise CameraError(f"camera {camera.serial} is {camera.get_status_display().lower()}")
    if camera.borough_id != officer.borough_id:
        raise CameraError(f"camera {camera.serial} belongs to another borough")
    if not officer.active:
        raise CameraError(f"{officer.display_name} is not an active officer")
    if pool and not camera.shared_pool:
        raise CameraError(f"camera {camera.serial} is a personal issue, not a pool camera")
    held = (
        CameraAssignment.objects.filter(
            officer=officer, returned_at__isnull=True, camera__kind=camera.kind
        )
        .exclude(camera=camera)
        .select_related("camera")
        .first()
    )
    if held is not None and not allow_second:
        raise CameraError(
            f"{officer.display_name} already holds {camera.get_kind_display().lower()} camera "
            f"{held.camera.serial}; return it first, or tick 'a second camera' and say why"
        )
    if held is not None and not note.strip():
        raise CameraError("say why this officer needs a second camera of the same kind")
    try:
        # The savepoint keeps the outer transaction usable when the constraint fires.
        with transaction.atomic():
            assignment = CameraAssignment.objects.create(
                camera=camera, officer=officer, issued_at=at, issued_by=actor, note=note
            )
    except IntegrityError as exc:
        holder = (
            CameraAssignment.objects.filter(camera=camera, returned_at__isnull=True)
            .select_related("officer")
            .first()
        )
        who = f" to {holder.officer.display_name}" if holder else ""
        raise CameraError(f"camera {camera.serial} is already issued{who}") from exc
    _status_change(
        camera,
        CameraStatus.ISSUED,
        actor=actor,
        at=at,
        reason="checked out from the pool" if pool else f"issued to {officer.collar_number}",
    )
    audit_record(
        actor=actor,
        action="camera.checked_out" if pool else "camera.issued",
        obj=camera,
        borough=camera.borough,
        detail={
            "officer": officer.collar_number,
            "at": at.isoformat(),
            "note": note,
            "second_camera": held.camera.serial if held else None,
        },
    )
    return assignment


@transaction.atomic
def camera_return(
    *, camera: Camera, actor, at: datetime | None = None, note: str = "", pool: bool = False
) -> CameraAssignment:
    at = at or timezone.now()
    camera = Camera.objects.select_for_update().get(pk=camera.pk)
    assignment = (
        CameraAssignment.objects.filter(camera=camera, returned_at__isnull=True)
        .select_related("officer")
        .first()
    )
    if assignment is None:
        raise CameraError(f"camera {camera.serial} is not issued")
    # Closing the open row is the only change an assignment ever gets: history is appended to.
    CameraAssignment.objects.filter(pk=assignment.pk, returned_at__isnull=True).update(
        returned_at=at, returned_by=actor
    )
    if camera.status == CameraStatus.ISSUED:
        _status_change(
            camera,
            CameraStatus.IN_STOCK,
            actor=actor,
            at=at,
            reason=note or ("checked in" if pool else "returned"),
        )
    audit_record(
        actor=actor,
        action="camera.checked_in" if pool else "camera.returned",
        obj=camera,
        borough=camera.borough,
        detail={"officer": assignment.officer.collar_number, "at": at.isoformat(), "note": note},
    )
    assignment.returned_at = at
    return assignment


@transaction.atomic
def camera_transfer(*, camera: Camera, officer: Officer, actor, note: str = "") -> CameraAssignment:
    """Return a camera from its holder and issue it to another officer at the same instant."""
    at = timezone.now()
    previous = camera_return(camera=camera, actor=actor, at=at, note=f"transferred: {note}".strip())
    if previous.officer_id == officer.pk:
        raise CameraError(f"camera {camera.serial} is already held by {officer.display_name}")
    return camera_issue(
        camera=camera,
        officer=officer,
        actor=actor,
        at=at,
        note=f"transfer from {previous.officer.collar_number} {note}".strip(),
    )


@dataclass
class RowError:
    row: int
    message: str


class ImportRefused(Exception):
    """A file with at least one bad row: nothing was changed. `errors` says what to fix."""

    def __init__(self, errors: list[RowError]):
        super().__init__(f"{len(errors)} row(s) to fix; nothing was changed")
        self.errors = errors


def camera_bulk_issue(*, lines: list[str], borough_ids: list[int] | None, actor) -> int:
    """Issue cameras from "SERIAL, COLLAR" lines: all of them, or none if any line is wrong."""
    errors: list[RowError] = []
    pairs = []
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        parts = [p.strip() for p in line.replace("\t", ",").split(",")]
        if len(parts) != 2 or not all(parts):
            errors.append(RowError(number, "expected: camera serial, collar number"))
            continue
        pairs.append((number, *parts))
    if not pairs and not errors:
        raise ImportRefused([RowError(0, "the list is empty")])
    with transaction.atomic():
        for number, serial, collar in pairs:
            camera = Camera.objects.filter(serial=serial).first()
            officer = Officer.objects.filter(collar_number=collar).first()
            in_scope = borough_ids is None or (camera and camera.borough_id in borough_ids)
            if camera is None or not in_scope:
                errors.append(RowError(number, f"no camera {serial} in your borough"))
                continue
            if officer is None or (
                borough_ids is not None and officer.borough_id not in borough_ids
            ):
                errors.append(RowError(number, f"no officer {collar} in your borough"))
                continue
            try:
                with transaction.atomic():
                    camera_issue(camera=camera, officer=officer, actor=actor)
            except CameraError as exc:
                errors.append(RowError(number, str(exc)))
        if errors:
            raise ImportRefused(sorted(errors, key=lambda e: e.row))
    return len(pairs)


# -- Lifecycle ------------------------------------------------------------------------------------

# Which status may follow which; issuing and returning go through camera_issue/camera_return.
TRANSITIONS = {
    CameraStatus.IN_STOCK: {CameraStatus.FAULTY, CameraStatus.LOST, CameraStatus.RETIRED},
    CameraStatus.ISSUED: {CameraStatus.FAULTY, CameraStatus.LOST},
    CameraStatus.DOCKED: {CameraStatus.FAULTY, CameraStatus.LOST},
    CameraStatus.FAULTY: {CameraStatus.IN_STOCK, CameraStatus.LOST, CameraStatus.RETIRED},
    CameraStatus.LOST: {CameraStatus.IN_STOCK, CameraStatus.RETIRED},
    CameraStatus.RETIRED: set(),
}


@dataclass(frozen=True)
class CameraFootage:
    """What the footage store knows of a camera, for the lifecycle's rules (the caller asks the
    store: `evidence.selectors.camera_footage`): how many uploads of its clips are unfinished, and
    when its last uploaded clip started."""

    unfinished_uploads: int
    last_clip_started_at: datetime | None


@transaction.atomic
def camera_set_status(
    *, camera: Camera, status: str, actor, reason: str, footage: CameraFootage
) -> Camera:
    """Move a camera along its lifecycle with a reason. Reporting it lost closes its assignment
    and raises an alert; retiring it needs every clip uploaded and verified (`footage`)."""
    reason = reason.strip()
    if not reason:
        raise CameraError("say why (the reason is kept with the camera's history)")
    if len(reason) > 300:
        raise CameraError("the reason is longer than 300 characters")
    camera = Camera.objects.select_for_update().get(pk=camera.pk)
    if status not in TRANSITIONS.get(camera.status, set()):
        raise CameraError(
            f"camera {camera.serial} is {camera.get_status_display().lower()}: it cannot become "
            f"{CameraStatus(status).label.lower() if status in CameraStatus.values else status}"
        )
    now = timezone.now()
    if status == CameraStatus.RETIRED:
        pending = footage.unfinished_uploads
        last_return = (
            camera.assignments.exclude(returned_at__isnull=True)
            .order_by("-returned_at")
            .values_list("returned_at", flat=True)
            .first()
        )
        if pending:
            raise CameraError(f"camera {camera.serial} has {pending} upload(s) not finished")
        if last_return and (camera.last_docked_at is None or camera.last_docked_at < last_return):
            raise CameraError(
                f"camera {camera.serial} has not been docked since it was last used: its last "
                "clips may not be uploaded yet"
            )
    open_assignment = (
        camera.assignments.filter(returned_at__isnull=True).select_related("officer").first()
    )
    if status in (CameraStatus.LOST, CameraStatus.FAULTY) and open_assignment is not None:
        CameraAssignment.objects.filter(pk=open_assignment.pk).update(
            returned_at=now, returned_by=actor
        )
    _status_change(camera, status, actor=actor, reason=reason, at=now)
    audit_record(
        actor=actor,
        action=f"camera.{status}",
        obj=camera,
        borough=camera.borough,
        justification=reason,
        detail={"holder": open_assignment.officer.collar_number if open_assignment else None},
    )
    if status == CameraStatus.LOST:
        _lost_alert(
            camera=camera,
            actor=actor,
            reason=reason,
            holder=open_assignment,
            at=now,
            footage=footage,
        )
    elif camera.lost_alerts.filter(closed_at__isnull=True).exists():
        camera.lost_alerts.filter(closed_at__isnull=True).update(
            closed_at=now, closed_reason=reason
        )
    return camera


def _lost_alert(
    *, camera: Camera, actor, reason: str, holder, at, footage: CameraFootage
) -> LostCameraAlert:
    since = camera.last_docked_at
    holders = camera.assignments.select_related("officer")
    if since is not None:
        holders = holders.filter(Q(returned_at__isnull=True) | Q(returned_at__gte=since))
    summary = {
        "last_docked_at": since.isoformat() if since else None,
        "footage_at_risk_from": (since or camera.created_at).isoformat(),
        "holders_since_last_dock": [
            {
                "officer": a.officer.display_name,
                "from": a.issued_at.isoformat(),
                "to": a.returned_at.isoformat() if a.returned_at else at.isoformat(),
            }
            for a in holders.order_by("issued_at")[:50]
        ],
        "unfinished_uploads": footage.unfinished_uploads,
        "last_uploaded_clip_started": (
            footage.last_clip_started_at.isoformat() if footage.last_clip_started_at else None
        ),
    }
    alert = LostCameraAlert.objects.create(
        camera=camera,
        borough=camera.borough,
        raised_at=at,
        raised_by=actor,
        reason=reason,
        last_docked_at=since,
        summary=summary,
    )
    recipients = _borough_admin_emails(camera.borough)
    body = (
        f"Camera {camera.serial} ({camera.borough}) was reported lost: {reason}\n"
        f"Last docked: {since:%d %b %Y %H:%M} UTC\n"
        if since
        else f"Camera {camera.serial} ({camera.borough}) was reported lost: {reason}\nNever docked.\n"
    )
    body += "Footage recorded since then may still be on it and is not in the evidence store.\n"
    for h in summary["holders_since_last_dock"]:
        body += f"Held by {h['officer']} from {h['from']} to {h['to']}\n"
    if recipients:
        transaction.on_commit(
            lambda: send_mail(
                f"Lost camera {camera.serial}: possible data breach",
                body,
                None,
                recipients,
                fail_silently=True,
            )
        )
    return alert


def _borough_admin_emails(borough: Borough) -> list[str]:
    users = (
        get_user_model()
        .objects.filter(groups__name=Role.BOROUGH_ADMIN, officer__borough=borough, is_active=True)
        .exclude(email="")
    )
    return sorted(set(users.values_list("email", flat=True)))


# -- Units and bulk import --------------------------------------------------------------------------


@transaction.atomic
def unit_create(*, name: str, borough: Borough, actor, specialist: bool = False) -> Unit:
    name = name.strip()
    if not name or len(name) > 120:
        raise CameraError("a unit needs a name of at most 120 characters")
    if Unit.objects.filter(name__iexact=name, borough=borough).exists():
        raise CameraError(f"{borough} already has a unit called {name}")
    unit = Unit.objects.create(name=name, borough=borough, specialist=specialist)
    audit_record(actor=actor, action="unit.created", obj=unit, borough=borough)
    return unit


MAX_IMPORT_ROWS = 5000
OFFICER_COLUMNS = ["collar_number", "first_name", "last_name", "rank", "unit"]
CAMERA_COLUMNS = ["serial", "model", "kind", "shared_pool", "firmware"]
_YES = {"yes", "y", "true", "1"}
_NO = {"no", "n", "false", "0", ""}


def _read_csv(text: str, required: list[str]) -> list[dict]:
    reader = csv.DictReader(io.StringIO(text))
    header = [h.strip().lower() for h in (reader.fieldnames or [])]
    missing = [c for c in required if c not in header]
    if missing:
        raise ImportRefused([RowError(1, f"the header needs the column(s): {', '.join(missing)}")])
    reader.fieldnames = header
    rows = []
    for row in reader:
        if None in row:
            raise ImportRefused([RowError(reader.line_num, "more fields than the header has")])
        rows.append({k: (v or "").strip() for k, v in row.items()})
        if len(rows) > MAX_IMPORT_ROWS:
            raise ImportRefused([RowError(0, f"at most {MAX_IMPORT_ROWS} rows in one file")])
    if not rows:
        raise ImportRefused([RowError(1, "the file has no rows under its header")])
    return rows


def officers_import(*, text: str, borough: Borough, actor) -> int:
    """Create officers from CSV (collar_number, first_name, last_name, rank, unit). Every row is
    checked first; any bad row means nothing is created and each bad row is reported."""
    rows = _read_csv(text, ["collar_number", "first_name", "last_name", "rank"])
    ranks = {c.lower(): c for c in Rank.values} | {label.lower(): v for v, label in Rank.choices}
    units = {u.name.lower(): u for u in Unit.objects.filter(Q(borough=borough) | Q(borough=None))}
    existing = set(
        Officer.objects.filter(collar_number__in=[r["collar_number"] for r in rows]).values_list(
            "collar_number", flat=True
        )
    )
    errors, seen, new = [], {}, []
    for number, row in enumerate(rows, 2):  # row 1 is the header
        collar = row["collar_number"]
        problems = []
        if not collar or len(collar) > 20 or not collar.replace("-", "").isalnum():
            problems.append("collar_number must be 1-20 letters or digits")
        elif collar in existing:
            problems.append(f"collar number {collar} already exists")
        elif collar in seen:
            problems.append(f"collar number {collar} repeats row {seen[collar]}")
        for field in ("first_name", "last_name"):
            if not row[field] or len(row[field]) > 100:
                problems.append(f"{field} must be 1-100 characters")
        rank = ranks.get(row["rank"].lower())
        if rank is None:
            problems.append(f"rank {row['rank']!r} is not one of {', '.join(Rank.values)}")
        unit = None
        if row.get("unit"):
            unit = units.get(row["unit"].lower())
            if unit is None:
                problems.append(f"no unit {row['unit']!r} in {borough}")
        if problems:
            errors.append(RowError(number, "; ".join(problems)))
        else:
            new.append(
                Officer(
                    collar_number=collar,
                    first_name=row["first_name"],
                    last_name=row["last_name"],
                    rank=rank,
                    unit=unit,
                    borough=borough,
                )
            )
        seen.setdefault(collar, number)
    if errors:
        raise ImportRefused(errors)
    with transaction.atomic():
        Officer.objects.bulk_create(new)
        audit_record(
            actor=actor,
            action="officers.imported",
            object_type="devices.borough",
            object_id=str(borough.pk),
            borough=borough,
            detail={"count": len(new), "collar_numbers": [o.collar_number for o in new][:500]},
        )
    return len(new)


def cameras_import(*, text: str, borough: Borough, actor) -> int:
    """Register cameras from CSV (serial, model, kind, shared_pool, firmware): all or nothing."""
    rows = _read_csv(text, ["serial"])
    kinds = {v: v for v in CameraKind.values} | {
        label.lower(): v for v, label in CameraKind.choices
    }
    existing = set(
        Camera.objects.filter(serial__in=[r["serial"] for r in rows]).values_list(
            "serial", flat=True
        )
    )
    errors, seen, new = [], {}, []
    for number, row in enumerate(rows, 2):
        serial = row["serial"]
        problems = []
        if not serial or len(serial) > 64 or any(c.isspace() for c in serial):
            problems.append("serial must be 1-64 characters without spaces")
        elif serial in existing:
            problems.append(f"camera {serial} is already registered")
        elif serial in seen:
            problems.append(f"serial {serial} repeats row {seen[serial]}")
        kind = kinds.get((row.get("kind") or "body").lower())
        if kind is None:
            problems.append(
                f"kind {row.get('kind')!r} is not one of {', '.join(CameraKind.values)}"
            )
        pool = (row.get("shared_pool") or "").lower()
        if pool not in _YES | _NO:
            problems.append("shared_pool must be yes or no")
        if len(row.get("model", "")) > 100 or len(row.get("firmware", "")) > 50:
            problems.append("model (100) or firmware (50) too long")
        if problems:
            errors.append(RowError(number, "; ".join(problems)))
        else:
            new.append(
                Camera(
                    serial=serial,
                    model=row.get("model", ""),
                    kind=kind,
                    shared_pool=pool in _YES,
                    firmware=row.get("firmware", ""),
                    borough=borough,
                )
            )
        seen.setdefault(serial, number)
    if errors:
        raise ImportRefused(errors)
    with transaction.atomic():
        Camera.objects.bulk_create(new)
        audit_record(
            actor=actor,
            action="cameras.imported",
            object_type="devices.borough",
            object_id=str(borough.pk),
            borough=borough,
            detail={"count": len(new), "serials": [c.serial for c in new][:500]},
        )
    return len(new)


@transaction.atomic
def dock_register(*, borough: Borough, station: str, name: str, actor) -> tuple[Dock, str]:
    """Register a dock. Returns the dock and its API key, which is shown once and never stored."""
    key_id, key, key_hash = _new_dock_key()
    dock = Dock.objects.create(
        borough=borough, station=station, name=name, key_id=key_id, key_hash=key_hash
    )
    audit_record(actor=actor, action="dock.registered", obj=dock, detail={"station": station})
    return dock, key


@transaction.atomic
def dock_rotate_key(*, dock: Dock, actor) -> str:
    """Replace a dock's key; the old one stops working at once."""
    key_id, key, key_hash = _new_dock_key()
    Dock.objects.filter(pk=dock.pk).update(
        key_id=key_id, key_hash=key_hash, key_rotated_at=timezone.now()
    )
    audit_record(actor=actor, action="dock.key_rotated", obj=dock)
    dock.refresh_from_db()
    return key


@transaction.atomic
def dock_revoke(*, dock: Dock, actor, reason: str) -> None:
    Dock.objects.filter(pk=dock.pk, revoked_at__isnull=True).update(revoked_at=timezone.now())
    audit_record(actor=actor, action="dock.revoked", obj=dock, justification=reason)
    dock.refresh_from_db()


class OfficerError(Exception):
    """A change to an officer record that cannot be made, with a message for the person."""


@transaction.atomic
def officer_account_place(
    *,
    user,
    borough: Borough,
    actor,
    collar_number: str = "",
    first_name: str = "",
    last_name: str = "",
) -> Officer:
    """The officer record of a staff account, in `borough`: the one it has, moved there if it is
    elsewhere; else the record of `collar_number` when no account holds it yet (an officer
    imported with their cameras, signing in for the first time); else a new record, numbered
    `collar_number` or, when there is none, "SSO-<account id>". Each change is audited.

    For directory sign-in, which says where someone works at every sign-in."""
    officer = Officer.objects.select_for_update().filter(user=user).first()
    if officer is None and collar_number:
        officer = Officer.objects.select_for_update().filter(collar_number=collar_number).first()
        if officer is not None and officer.user_id not in (None, user.pk):
            raise OfficerError(
                f"The staff number {collar_number} belongs to another account. Ask a system "
                "admin to check both accounts."
            )
        if officer is not None:
            officer.user = user
            officer.save(update_fields=["user"])
            audit_record(
                actor=actor,
                action="officer.account_linked",
                obj=officer,
                detail={"user": user.get_username(), "collar_number": collar_number},
            )
    if officer is None:
        officer = Officer.objects.create(
            user=user,
            collar_number=collar_number or f"SSO-{user.pk}",
            first_name=first_name or user.get_username()[:100],
            last_name=last_name,
            rank=Rank.STAFF,
            borough=borough,
        )
        audit_record(
            actor=actor,
            action="officer.created",
            obj=officer,
            detail={"user": user.get_username(), "collar_number": officer.collar_number},
        )
        return officer
    if officer.borough_id != borough.pk:
        before = officer.borough
        officer.borough = borough
        officer.save(update_fields=["borough"])
        audit_record(
            actor=actor,
            action="officer.borough_changed",
            obj=officer,
            detail={"from": before.code, "to": borough.code},
        )
    return officer
