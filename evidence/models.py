"""Recordings, their uploads, redacted copies, bookmarks and access grants: the footage store.

Guarantees kept here:
- a `Recording` is `available` only after its whole-file SHA-256 matched what the dock declared;
- a recording's media is stored encrypted under its own data key, wrapped by a key-encryption key
  (`kek_id`); clearing `wrapped_key` destroys every copy of the footage (crypto-shredding).
"""

from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models
from django.db.models import Q

from devices.models import Borough, Camera, Dock, Officer


class RecordingState(models.TextChoices):
    UPLOADING = "uploading", "Uploading"
    AVAILABLE = "available", "Available"
    DELETING = "deleting", "Being deleted by the retention sweep"
    DELETED = "deleted", "Deleted"


class ClockSuspect(models.TextChoices):
    """Why a clip's start time cannot be believed (see evidence/clock.py)."""

    FILE_TIME = "file_time", "The clip carried no creation time: the time is the file's"
    BEFORE_2000 = "before_2000", "Before 2000: the camera's clock was reset"
    BEFORE_REGISTRATION = "before_registration", "Before the camera was registered"
    AHEAD = "ahead", "Ahead of the server's clock"


class Recording(models.Model):
    """One clip from one camera. The officer is whoever held the camera when it started recording.

    `borough` is copied from the camera at ingest so that moving a camera later does not move its
    old footage to another borough's view.
    """

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    camera = models.ForeignKey(Camera, on_delete=models.PROTECT, related_name="recordings")
    borough = models.ForeignKey(Borough, on_delete=models.PROTECT, related_name="recordings")
    officer = models.ForeignKey(
        Officer,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="recordings",
        help_text="Empty when nobody held the camera at the start: an admin must attribute it",
    )
    dock = models.ForeignKey(
        Dock, null=True, blank=True, on_delete=models.SET_NULL, related_name="recordings"
    )
    state = models.CharField(
        max_length=10, choices=RecordingState.choices, default=RecordingState.UPLOADING
    )
    started_at = models.DateTimeField()
    ended_at = models.DateTimeField()
    duration_seconds = models.FloatField(null=True, blank=True)
    size_bytes = models.BigIntegerField()
    sha256 = models.CharField(max_length=64, help_text="SHA-256 of the original clip, hex")
    original_filename = models.CharField(max_length=255, blank=True)
    media_info = models.JSONField(default=dict, blank=True)
    gps_lat = models.FloatField(null=True, blank=True)
    gps_lon = models.FloatField(null=True, blank=True)

    # Storage and encryption
    storage_key = models.CharField(max_length=255)
    poster_key = models.CharField(max_length=255, blank=True)
    # The timeline's preview frames, one sealed JPEG sprite made after ingest (evidence/filmstrip.py);
    # empty until it is made. Its layout (interval, frame count, columns, frame size) beside it.
    # Defaults in the database too, so bulk loads that name the older columns keep working.
    filmstrip_key = models.CharField(max_length=255, blank=True, default="", db_default="")
    filmstrip = models.JSONField(null=True, blank=True)
    segment_size = models.PositiveIntegerField()
    kek_id = models.CharField(max_length=32)
    wrapped_key = models.BinaryField(null=True, blank=True)

    delete_after = models.DateTimeField(db_index=False)
    # A start the camera's clock cannot have got right (evidence/clock.py): retention is counted
    # from arrival and the clip attributed to whoever held the camera then, until a borough admin
    # corrects the time. The reason stays after a correction, as the record of what was wrong.
    clock_suspect = models.BooleanField(default=False)
    clock_suspect_reason = models.CharField(max_length=20, choices=ClockSuspect.choices, blank=True)
    clock_corrected_at = models.DateTimeField(null=True, blank=True)
    # True when `delete_after` is the end of the minimum review window after arrival rather than
    # the retention period: the clip reached the server too late for the period alone.
    review_window_extended = models.BooleanField(default=False)
    # True while any hold is active; kept by retention.services (under the row lock) so that the
    # sweep's index holds only what may really be deleted, however much evidence is retained.
    held = models.BooleanField(default=False)
    created_at = models.DateTimeField(auto_now_add=True)
    available_at = models.DateTimeField(null=True, blank=True)
    deleted_at = models.DateTimeField(null=True, blank=True)
    # Set by the retention sweep when it claims the recording for deletion (see retention.sweep).
    sweep_claim = models.UUIDField(null=True, blank=True)
    sweep_claimed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-started_at", "-id"]
        permissions = [
            ("flag_recording", "Can flag recordings as evidence"),
            ("export_recording", "Can export recordings for court and share them with prosecutors"),
        ]
        constraints = [
            # The same clip from the same camera is one recording, however often it is uploaded.
            models.UniqueConstraint(
                fields=["camera", "sha256"],
                condition=Q(state="available"),
                name="one_available_recording_per_clip",
            ),
            models.CheckConstraint(
                condition=Q(ended_at__gte=models.F("started_at")), name="recording_ends_after_start"
            ),
            models.CheckConstraint(
                condition=Q(clock_suspect=False) | ~Q(clock_suspect_reason=""),
                name="recording_clock_suspect_has_reason",
            ),
        ]
        indexes = [
            # Review search: a borough's footage newest first, keyset-paginated on (started_at, id).
            models.Index(fields=["borough", "-started_at", "-id"], name="rec_borough_started"),
            # The same for those who see every borough (system admins).
            models.Index(fields=["-started_at", "-id"], name="rec_started"),
            models.Index(fields=["officer", "-started_at"], name="rec_officer_started"),
            models.Index(fields=["camera", "-started_at"], name="rec_camera_started"),
            # The sweep asks "available, unheld and past delete_after": only such rows are indexed,
            # so its cost grows with what expires, not with what is stored or retained.
            models.Index(
                fields=["delete_after"],
                condition=Q(state="available", held=False),
                name="rec_expiry_unheld",
            ),
            # The borough admins' list of clock-suspect footage, and the retention page's list of
            # what the review window keeps: both few among many, so only they are indexed.
            models.Index(
                fields=["borough", "delete_after"],
                condition=Q(state="available", clock_suspect=True),
                name="rec_clock_suspect",
            ),
            models.Index(
                fields=["delete_after"],
                condition=Q(state="available", review_window_extended=True),
                name="rec_review_window",
            ),
            # Deletions left unfinished by a crashed or failed run, picked up by the next.
            models.Index(
                fields=["sweep_claimed_at"],
                condition=Q(state="deleting"),
                name="rec_deleting",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.camera.serial} {self.started_at:%Y-%m-%d %H:%M}"


class IngestUpload(models.Model):
    """The server side of one tus upload of a recording, kept until it completes or expires.

    `hash_state` is the SHA-256 context after `offset` bytes, so a resumed upload carries on hashing
    where it stopped, on whichever worker it lands. `pending` is the encrypted tail that has not yet
    filled a storage part (it is re-read at the next PATCH and never holds plaintext).
    """

    class State(models.TextChoices):
        ACTIVE = "active", "Receiving"
        COMPLETE = "complete", "Verified"
        FAILED = "failed", "Rejected"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    recording = models.OneToOneField(
        Recording, null=True, on_delete=models.SET_NULL, related_name="upload"
    )
    recording_ref = models.UUIDField(help_text="The recording's id, kept after a rejection")
    dock = models.ForeignKey(Dock, on_delete=models.PROTECT, related_name="uploads")
    state = models.CharField(max_length=10, choices=State.choices, default=State.ACTIVE)
    length = models.BigIntegerField()
    offset = models.BigIntegerField(default=0)
    metadata = models.JSONField(default=dict)
    declared_sha256 = models.CharField(max_length=64)
    hash_state = models.BinaryField()
    multipart_id = models.CharField(max_length=255, blank=True)
    parts = models.JSONField(default=list, help_text="Stored parts: [[number, etag], ...]")
    # Segments per storage part, chosen at creation from the length (evidence/ingest.py): a
    # resumed upload keeps the parts it began with.
    part_segments = models.PositiveSmallIntegerField()
    pending = models.BinaryField(default=b"")
    error = models.TextField(blank=True)
    # The token of the PATCH writing the upload now, which fences its commits. The claim itself is
    # held by the writer's database session (evidence/ingest.py), so a writer that dies frees it at
    # once; `lease_until` is no longer used.
    lease_token = models.UUIDField(null=True, blank=True)
    lease_until = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    expires_at = models.DateTimeField()

    class Meta:
        indexes = [
            models.Index(fields=["expires_at"], condition=Q(state="active"), name="upload_expiry")
        ]

    def __str__(self) -> str:
        return f"upload {self.id} ({self.offset}/{self.length})"


class BoroughAccessGrant(models.Model):
    """Lets one person see another borough's footage for a limited time (e.g. a cross-border
    investigation). Granted by an admin with a reason, audited, never longer than 7 days."""

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="borough_grants"
    )
    borough = models.ForeignKey(Borough, on_delete=models.PROTECT, related_name="access_grants")
    reason = models.TextField()
    granted_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    starts_at = models.DateTimeField()
    expires_at = models.DateTimeField()
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-starts_at"]
        indexes = [models.Index(fields=["user", "expires_at"], name="grant_user_expiry")]

    def __str__(self) -> str:
        return f"{self.user} → {self.borough} until {self.expires_at:%Y-%m-%d %H:%M}"


class Bookmark(models.Model):
    """A moment in a recording with a note, e.g. "arrest at 03:12"."""

    recording = models.ForeignKey(Recording, on_delete=models.PROTECT, related_name="bookmarks")
    at_seconds = models.FloatField()
    note = models.CharField(max_length=500)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["at_seconds"]

    def __str__(self) -> str:
        return f"{self.at_seconds:.1f}s {self.note[:40]}"


class DerivedRecording(models.Model):
    """A copy made from a recording (a redaction), stored encrypted beside it; the original is
    never touched. `spec` says exactly how it was derived; `sha256` is the derived file's hash."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    original = models.ForeignKey(Recording, on_delete=models.PROTECT, related_name="derived")
    kind = models.CharField(max_length=20, default="redaction")
    spec = models.JSONField(default=dict)
    storage_key = models.CharField(max_length=255)
    size_bytes = models.BigIntegerField()
    # Sealed in segments like an original (crypto.SegmentCipher), read a range at a time. Null for
    # a copy made before that, sealed as one blob (crypto.seal_blob): still read, whole.
    segment_size = models.PositiveIntegerField(null=True, blank=True)
    sha256 = models.CharField(max_length=64)
    kek_id = models.CharField(max_length=32)
    wrapped_key = models.BinaryField()
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    created_at = models.DateTimeField()

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.kind} of {self.original_id}"


class Incident(models.Model):
    """A dispatch (CAD) incident: where and when officers were sent. Recordings of an officer who
    was at it, while they were there, are tagged with it (`IncidentTag`, evidence/incidents.py).

    The force's dispatch system sends these through the integrations API, which keeps the source's
    versions; this app keeps only what the footage needs to be found by incident."""

    reference = models.CharField(
        max_length=40,
        unique=True,
        help_text="The dispatch system's reference, e.g. CAD 1234/25NOV26",
    )
    borough = models.ForeignKey(Borough, on_delete=models.PROTECT, related_name="incidents")
    opened_at = models.DateTimeField()
    closed_at = models.DateTimeField(null=True, blank=True)
    location = models.CharField(max_length=200, blank=True)
    grade = models.CharField(max_length=20, blank=True, help_text="Response grade, e.g. I, S, E")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-opened_at"]
        indexes = [models.Index(fields=["borough", "-opened_at"], name="incident_borough_opened")]

    def __str__(self) -> str:
        return self.reference


class IncidentAttendance(models.Model):
    """One officer at one incident, from arrival to clear. `window_start`/`window_end` are the
    times a recording of theirs must overlap to be tagged (arrival and clear widened by the margin
    in force when the attendance was written; an attendance not yet cleared runs on), and
    `scan_from` lies a longest recording before `window_start`, so that the tagging walks the
    recordings' (officer, start) index over a bounded range."""

    incident = models.ForeignKey(Incident, on_delete=models.CASCADE, related_name="attendances")
    officer = models.ForeignKey(Officer, on_delete=models.PROTECT, related_name="attendances")
    arrived_at = models.DateTimeField()
    cleared_at = models.DateTimeField(null=True, blank=True)
    window_start = models.DateTimeField()
    window_end = models.DateTimeField()
    scan_from = models.DateTimeField()

    class Meta:
        ordering = ["arrived_at", "id"]
        indexes = [
            # Ingest asks "which incidents was this officer at while the clip ran": the officer's
            # attendances whose window ends after the clip starts.
            models.Index(fields=["officer", "window_end"], name="attendance_officer_window"),
        ]
        constraints = [
            models.CheckConstraint(
                condition=Q(cleared_at__isnull=True) | Q(cleared_at__gte=models.F("arrived_at")),
                name="attendance_cleared_after_arrival",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.officer_id} at {self.incident_id}"


class IncidentTag(models.Model):
    """A recording tagged with an incident its officer was at while it ran. Made and removed only
    by evidence/incidents.py, each change audited on the recording."""

    recording = models.ForeignKey(Recording, on_delete=models.PROTECT, related_name="incident_tags")
    incident = models.ForeignKey(Incident, on_delete=models.PROTECT, related_name="tags")
    tagged_at = models.DateTimeField()

    class Meta:
        ordering = ["tagged_at", "id"]
        constraints = [
            models.UniqueConstraint(fields=["recording", "incident"], name="one_tag_per_incident"),
        ]
        indexes = [models.Index(fields=["incident", "recording"], name="tag_incident_recording")]

    def __str__(self) -> str:
        return f"{self.recording_id} at {self.incident_id}"
