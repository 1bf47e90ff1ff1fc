"""Writes of the estate pages that need to know about footage as well as cameras."""

from __future__ import annotations

from django.db import transaction

from devices.models import Camera
from devices.services import camera_set_status
from evidence.selectors import camera_footage


@transaction.atomic
def camera_status_change(*, camera: Camera, status: str, actor, reason: str) -> Camera:
    """Move a camera along its lifecycle (devices.services.camera_set_status), with what the
    footage store knows of it: its unfinished uploads (a camera is not retired with clips still
    on their way) and its last clip (for a lost camera's alert)."""
    return camera_set_status(
        camera=camera,
        status=status,
        actor=actor,
        reason=reason,
        footage=camera_footage(camera=camera),
    )
