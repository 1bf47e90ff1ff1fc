"""Public requests for footage: right of access (DPA 2018 Part 3, s.45) and Freedom of Information.

A request is saved before any e-mail is sent; nothing happens to footage until its e-mail address is
verified, when its statutory clock starts and every candidate recording is put on hold so the
retention sweep keeps it while the request is open. The requester follows it through a secret
status link; disclosure officers work it from a queue sorted by due date.
"""

from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models

from devices.models import Borough


class RequestKind(models.TextChoices):
    RIGHT_OF_ACCESS = "sar", "Right of access (Data Protection Act 2018)"
    FOI = "foi", "Freedom of Information"


class RequestStatus(models.TextChoices):
    UNVERIFIED = "unverified", "Waiting for e-mail verification"
    RECEIVED = "received", "Received"
    AWAITING_ID = "awaiting_id", "Waiting for identity evidence"
    IN_PROGRESS = "in_progress", "Being processed"
    AWAITING_APPROVAL = "awaiting_approval", "Waiting for approval"
    RELEASED = "released", "Released"
    REFUSED = "refused", "Refused"
    CLOSED = "closed", "Closed"


class Decision(models.TextChoices):
    FULL = "full", "Disclose in full"
    PARTIAL = "partial", "Disclose in part, with exemptions"
    REFUSE = "refuse", "Refuse"
    NCND = "ncnd", "Neither confirm nor deny"


class AccessRequest(models.Model):
    """A written request from a member of the public for footage of themselves."""

    reference = models.CharField(max_length=20, unique=True, help_text="e.g. SAR-2026-000123")
    kind = models.CharField(max_length=3, choices=RequestKind.choices)
    status = models.CharField(
        max_length=20, choices=RequestStatus.choices, default=RequestStatus.UNVERIFIED
    )
    name = models.CharField(max_length=200)
    email = models.EmailField()
    postal_address = models.TextField(blank=True)
    incident_at = models.DateTimeField()
    borough = models.ForeignKey(Borough, on_delete=models.PROTECT, related_name="access_requests")
    place = models.CharField(max_length=300)
    description = models.TextField()
    appearance = models.TextField(blank=True, help_text="How to recognise the requester")
    collar_number = models.CharField(max_length=20, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    received_at = models.DateTimeField(null=True, blank=True, help_text="When e-mail was verified")
    due_at = models.DateField(null=True, blank=True)
    closed_at = models.DateTimeField(null=True, blank=True)

    submitted_ip = models.GenericIPAddressField(null=True, blank=True)
    verify_token_hash = models.CharField(max_length=64, unique=True, null=True, blank=True)
    verify_expires_at = models.DateTimeField(null=True, blank=True)
    verification_mailed_at = models.DateTimeField(null=True, blank=True)
    status_token_hash = models.CharField(max_length=64, unique=True, null=True, blank=True)
    clock_started_at = models.DateTimeField(null=True, blank=True)
    id_requested_at = models.DateTimeField(null=True, blank=True)
    id_received_at = models.DateTimeField(null=True, blank=True)
    id_checked_at = models.DateTimeField(null=True, blank=True)
    assigned_to = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    decision = models.CharField(max_length=8, choices=Decision.choices, blank=True)
    decision_reasons = models.TextField(blank=True)
    exemptions = models.CharField(max_length=300, blank=True)
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    decided_at = models.DateTimeField(null=True, blank=True)
    approved_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    approved_at = models.DateTimeField(null=True, blank=True)
    released_at = models.DateTimeField(null=True, blank=True)
    holds_release_at = models.DateTimeField(
        null=True, blank=True, help_text="When the preservation holds are lifted after closing"
    )
    holds_lifted_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["due_at", "created_at"]
        permissions = [("approve_accessrequest", "Can approve another officer's disclosure")]
        indexes = [
            models.Index(fields=["borough", "status", "due_at"], name="request_queue"),
            models.Index(fields=["email", "created_at"], name="request_email_recent"),
        ]

    def __str__(self) -> str:
        return self.reference

    @property
    def is_open(self) -> bool:
        return self.status not in (RequestStatus.UNVERIFIED, RequestStatus.CLOSED)


class RequestStep(models.Model):
    """One step of a request's history, in words the requester can read when `public`."""

    request = models.ForeignKey(AccessRequest, on_delete=models.CASCADE, related_name="steps")
    at = models.DateTimeField()
    title = models.CharField(max_length=200)
    note = models.TextField(blank=True)
    public = models.BooleanField(default=True)
    actor = models.CharField(max_length=150, blank=True)

    class Meta:
        ordering = ["at", "id"]

    def __str__(self) -> str:
        return f"{self.request} {self.title}"


class IdentityDocument(models.Model):
    """Identity evidence uploaded by a requester: sealed in storage, deleted once checked.

    Sealed as a recording is (`evidence.crypto`: its own data key, fixed-size segments), so the
    disclosure officers' download decrypts it segment by segment as it streams."""

    # The accepted types (checked by their first bytes on upload): how they are named on the
    # page, and the extension of the downloaded file.
    KINDS = {
        "image/jpeg": ("JPEG image", "jpg"),
        "image/png": ("PNG image", "png"),
        "application/pdf": ("PDF", "pdf"),
    }

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    request = models.ForeignKey(AccessRequest, on_delete=models.CASCADE, related_name="documents")
    storage_key = models.CharField(max_length=255)
    kek_id = models.CharField(max_length=32)
    wrapped_key = models.BinaryField(null=True)
    content_type = models.CharField(max_length=100)
    size_bytes = models.PositiveIntegerField()
    segment_size = models.PositiveIntegerField(
        null=True,
        blank=True,
        help_text="Plaintext bytes per sealed segment; empty for a document sealed in one piece",
    )
    uploaded_at = models.DateTimeField()
    deleted_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"identity document for {self.request}"

    @property
    def kind_label(self) -> str:
        return self.KINDS.get(self.content_type, ("file", ""))[0]


class RequestFootage(models.Model):
    """A recording attached to a request, and the redacted copy released for it (if any)."""

    request = models.ForeignKey(AccessRequest, on_delete=models.CASCADE, related_name="footage")
    recording = models.ForeignKey(
        "evidence.Recording", on_delete=models.PROTECT, related_name="request_footage"
    )
    derived = models.ForeignKey(
        "evidence.DerivedRecording",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
    )
    attached_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    attached_at = models.DateTimeField()

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["request", "recording"], name="footage_once_per_request"
            )
        ]

    def __str__(self) -> str:
        return f"{self.request} {self.recording_id}"


class ReleaseLink(models.Model):
    """The requester's expiring, revocable download of the released (redacted) footage."""

    request = models.ForeignKey(AccessRequest, on_delete=models.CASCADE, related_name="releases")
    token_hash = models.CharField(max_length=64, unique=True)
    created_at = models.DateTimeField()
    expires_at = models.DateTimeField()
    revoked_at = models.DateTimeField(null=True, blank=True)
    downloads = models.PositiveIntegerField(default=0)

    def __str__(self) -> str:
        return f"release of {self.request}"


class RedactionJobStatus(models.TextChoices):
    QUEUED = "queued", "Queued"
    RENDERING = "rendering", "Being made"
    DONE = "done", "Made"
    FAILED = "failed", "Failed"


class RedactionJob(models.Model):
    """A redacted copy asked for and made by a worker (requests_portal.tasks): the checked
    specification, how far the rendering is, and what came of it. A job ends done (with its
    `derived` copy, and the faces the detector still found in it) or failed (with `error`), never
    with half a copy: `pending_key` names the object an attempt is writing, so an attempt that died
    is cleaned up by the next."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    footage = models.ForeignKey(RequestFootage, on_delete=models.CASCADE, related_name="jobs")
    spec = models.JSONField()  # {"boxes": [Box.as_dict()], "mutes": [[start, end]]}, checked
    status = models.CharField(
        max_length=12, choices=RedactionJobStatus.choices, default=RedactionJobStatus.QUEUED
    )
    progress = models.PositiveSmallIntegerField(default=0)  # 0-100
    error = models.TextField(blank=True)
    faces_found = models.JSONField(default=list)  # [{"t", "x", "y", "w", "h"}] in the copy
    derived = models.ForeignKey(
        "evidence.DerivedRecording",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
    )
    pending_key = models.CharField(max_length=255, blank=True)
    pending_upload = models.CharField(max_length=255, blank=True)
    attempts = models.PositiveSmallIntegerField(default=0)
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    requested_at = models.DateTimeField()
    purpose = models.CharField(max_length=200)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-requested_at"]

    def __str__(self) -> str:
        return f"redaction job {self.id} ({self.status})"

    @property
    def finished(self) -> bool:
        return self.status in (RedactionJobStatus.DONE, RedactionJobStatus.FAILED)
