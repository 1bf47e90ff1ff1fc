"""Public requests for footage: right of access (DPA 2018 Part 3, s.45) and Freedom of Information."""

from __future__ import annotations

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

    class Meta:
        ordering = ["due_at", "created_at"]
        indexes = [models.Index(fields=["borough", "status", "due_at"], name="request_queue")]

    def __str__(self) -> str:
        return self.reference
