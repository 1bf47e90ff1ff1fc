"""Small factories for tests: each makes a valid object with sensible defaults."""

from __future__ import annotations

import hashlib
import io
import itertools
from datetime import datetime, timedelta

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.utils import timezone

from common.roles import Role
from devices.models import Borough, Camera, Force, Officer, Rank
from devices.services import camera_issue, dock_register

_seq = itertools.count(1)


def borough(code: str = "QA", name: str | None = None) -> Borough:
    names = {"QA": "Harrow", "EK": "Camden"}
    obj, _ = Borough.objects.get_or_create(
        code=code, defaults={"name": name or names.get(code, code)}
    )
    return obj


def force(*, camera_target: int = 22_000) -> Force:
    """The force's one row (its migration makes it; a test that empties tables needs it back)."""
    obj, _ = Force.objects.update_or_create(pk=1, defaults={"camera_target": camera_target})
    return obj


def user(
    role: str | None = None,
    *,
    borough_code: str = "QA",
    username: str | None = None,
    rank: str = Rank.SERGEANT,
    password: str = "correct-horse-battery-9",
):
    n = next(_seq)
    u = get_user_model().objects.create_user(username=username or f"user{n}", password=password)
    if role:
        from common.roles import roles_sync

        if not Group.objects.filter(name=role).exists():
            roles_sync()
        u.groups.add(Group.objects.get(name=role))
        if role == Role.SYSTEM_ADMIN:
            u.is_staff = u.is_superuser = True
            u.save()
    officer(borough_code=borough_code, user=u, rank=rank)
    return u


def officer(*, borough_code: str = "QA", user=None, rank: str = Rank.CONSTABLE) -> Officer:
    n = next(_seq)
    return Officer.objects.create(
        user=user,
        collar_number=f"{n:05d}{borough_code}",
        first_name="Alex",
        last_name=f"Officer{n}",
        rank=rank,
        borough=borough(borough_code),
    )


def camera(*, borough_code: str = "QA", **kwargs) -> Camera:
    n = next(_seq)
    return Camera.objects.create(
        serial=f"CAM-{borough_code}-{n:06d}",
        borough=borough(borough_code),
        model="Test Cam",
        **kwargs,
    )


def issued_camera(
    *, officer_obj: Officer | None = None, at: datetime | None = None, borough_code: str = "QA"
) -> tuple[Camera, Officer]:
    officer_obj = officer_obj or officer(borough_code=borough_code)
    cam = camera(borough_code=officer_obj.borough.code)
    admin = user(Role.BOROUGH_ADMIN, borough_code=officer_obj.borough.code)
    camera_issue(
        camera=cam, officer=officer_obj, actor=admin, at=at or timezone.now() - timedelta(days=90)
    )
    return cam, officer_obj


def dock(*, borough_code: str = "QA"):
    admin = user(Role.BOROUGH_ADMIN, borough_code=borough_code)
    return dock_register(
        borough=borough(borough_code), station="Test station", name="Dock", actor=admin
    )


def clip_metadata(
    cam: Camera, data: bytes, *, started: datetime | None = None, seconds: float = 4.0, **overrides
) -> dict[str, str]:
    start = started or timezone.now().replace(microsecond=0) - timedelta(hours=2)
    meta = {
        "camera": cam.serial,
        "start": start.isoformat(),
        "end": (start + timedelta(seconds=seconds)).isoformat(),
        "sha256": hashlib.sha256(data).hexdigest(),
        "filename": "CLIP0001.MP4",
    }
    meta.update(overrides)
    return meta


def ingested_recording(
    *,
    cam: Camera | None = None,
    data: bytes | None = None,
    start: datetime | None = None,
    dock_obj=None,
    seconds: float = 2,
    **metadata,
):
    """A recording that went through the real ingest path into the real store; `seconds` is the
    length the dock declares, and `metadata` more of what it sends (say `gps="51.5,-0.1"`)."""
    from evidence.ingest import upload_append, upload_create
    from evidence.models import Recording
    from evidence.sample_media import make_clip

    if cam is None:
        # In service since before the clip started: a start before then is a suspect clock.
        in_service = min(start or timezone.now(), timezone.now() - timedelta(days=90))
        cam, _ = issued_camera(at=in_service - timedelta(days=1))
    if dock_obj is None:
        dock_obj, _key = dock(borough_code=cam.borough.code)
    data = data or make_clip(seconds=2, tone_hz=200 + next(_seq) % 800)
    meta = clip_metadata(cam, data, started=start, seconds=seconds, **metadata)
    upload = upload_create(dock=dock_obj, length=len(data), metadata=meta)
    upload = upload_append(
        upload_id=upload.id,
        dock=dock_obj,
        offset=0,
        body=io.BytesIO(data),
        content_length=len(data),
    )
    return Recording.objects.get(pk=upload.recording_ref)


def recording_row(*, cam: Camera | None = None, started: datetime | None = None, **kwargs):
    """A recording row without media (for pages and queries that never read the footage)."""
    import uuid

    from evidence.models import Recording, RecordingState

    cam = cam or camera()
    started = started or timezone.now() - timedelta(days=1)
    n = next(_seq)
    values = {
        "camera": cam,
        "borough": cam.borough,
        "state": RecordingState.AVAILABLE,
        "started_at": started,
        "ended_at": started + timedelta(seconds=30),
        "size_bytes": 1000,
        "sha256": f"{n:064x}",
        "storage_key": f"recordings/{uuid.uuid4()}/media",
        "segment_size": 1 << 20,
        "kek_id": "none",
        "wrapped_key": b"",
        "delete_after": started + timedelta(days=31),
    }
    values.update(kwargs)
    return Recording.objects.create(**values)


def sign_in(client, user) -> None:
    """Sign a user in with both factors, as the staff pages require (a confirmed TOTP device)."""
    from django_otp import DEVICE_ID_SESSION_KEY
    from django_otp.plugins.otp_totp.models import TOTPDevice

    device = TOTPDevice.objects.create(user=user, name="test", confirmed=True)
    client.force_login(user)
    session = client.session
    session[DEVICE_ID_SESSION_KEY] = device.persistent_id
    session.save()


def signed_in(client, role: str | None, borough_code: str = "QA"):
    """A new user of `role` in `borough_code`, signed in with both factors on `client`."""
    account = user(role, borough_code=borough_code)
    sign_in(client, account)
    return account
