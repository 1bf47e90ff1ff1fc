"""Writes of the devices app: issuing and returning cameras, docks and their keys. All audited."""

from __future__ import annotations

import hashlib
import secrets
from datetime import datetime

from django.db import IntegrityError, transaction
from django.utils import timezone

from devices.models import Borough, Camera, CameraAssignment, CameraStatus, Dock, Officer
from evidence.services import audit_record


class CameraError(Exception):
    """A camera operation that cannot be done, with a message for the person who asked."""


def _new_dock_key() -> tuple[str, str, str]:
    key_id = secrets.token_hex(6)
    key = f"bwvdock_{key_id}_{secrets.token_urlsafe(32)}"
    return key_id, key, hashlib.sha256(key.encode()).hexdigest()


@transaction.atomic
def camera_issue(
    *, camera: Camera, officer: Officer, actor, at: datetime | None = None, note: str = ""
) -> CameraAssignment:
    """Issue a camera to an officer. Fails clearly if the camera is already out or unusable."""
    at = at or timezone.now()
    camera = Camera.objects.select_for_update().get(pk=camera.pk)
    if camera.status in (CameraStatus.LOST, CameraStatus.RETIRED, CameraStatus.FAULTY):
        raise CameraError(f"camera {camera.serial} is {camera.get_status_display().lower()}")
    if camera.borough_id != officer.borough_id:
        raise CameraError(f"camera {camera.serial} belongs to another borough")
    try:
        # The savepoint keeps the outer transaction usable when the constraint fires.
        with transaction.atomic():
            assignment = CameraAssignment.objects.create(
                camera=camera, officer=officer, issued_at=at, issued_by=actor, note=note
            )
    except IntegrityError as exc:
        raise CameraError(f"camera {camera.serial} is already issued") from exc
    camera.status = CameraStatus.ISSUED
    camera.save(update_fields=["status"])
    audit_record(
        actor=actor, action="camera.issued", obj=camera, borough=camera.borough,
        detail={"officer": officer.collar_number, "at": at.isoformat(), "note": note},
    )  # fmt: skip
    return assignment


@transaction.atomic
def camera_return(*, camera: Camera, actor, at: datetime | None = None, note: str = "") -> None:
    at = at or timezone.now()
    camera = Camera.objects.select_for_update().get(pk=camera.pk)
    assignment = CameraAssignment.objects.filter(camera=camera, returned_at__isnull=True).first()
    if assignment is None:
        raise CameraError(f"camera {camera.serial} is not issued")
    # Closing the open row is the only change an assignment ever gets: history is appended to.
    CameraAssignment.objects.filter(pk=assignment.pk, returned_at__isnull=True).update(
        returned_at=at, returned_by=actor
    )
    camera.status = CameraStatus.IN_STOCK
    camera.save(update_fields=["status"])
    audit_record(
        actor=actor, action="camera.returned", obj=camera, borough=camera.borough,
        detail={"officer": assignment.officer.collar_number, "at": at.isoformat(), "note": note},
    )  # fmt: skip


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
