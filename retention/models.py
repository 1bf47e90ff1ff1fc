"""Retention policies and holds.

A recording with any active hold is never deleted, whatever its `delete_after`. Holds are placed and
lifted only through `retention.services`, which audits each change; a lifted hold stays on record.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q

from evidence.models import Recording


class RetentionPolicy(models.Model):
    """How long unretained footage is kept. The default policy: 31 days from the recording's start."""

    name = models.CharField(max_length=100, unique=True)
    days = models.PositiveIntegerField(default=31)
    is_default = models.BooleanField(default=False)
    description = models.TextField(blank=True)

    class Meta:
        verbose_name_plural = "retention policies"
        constraints = [
            models.UniqueConstraint(
                fields=["is_default"], condition=Q(is_default=True), name="one_default_policy"
            )
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.days} days)"


class HoldSource(models.TextChoices):
    EVIDENCE = "evidence", "Evidence flag"
    POLICING_PURPOSE = "policing_purpose", "Policing purpose"
    ACCESS_REQUEST = "access_request", "Public access request"
    LEGAL = "legal", "Legal hold"


class Hold(models.Model):
    """A reason to keep one recording beyond its policy. Active until lifted."""

    recording = models.ForeignKey(Recording, on_delete=models.PROTECT, related_name="holds")
    source = models.CharField(max_length=20, choices=HoldSource.choices)
    source_ref = models.CharField(
        max_length=64, blank=True, help_text="The flag, request or order that asked for the hold"
    )
    reason = models.TextField(blank=True)
    active = models.BooleanField(default=True)
    placed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    placed_at = models.DateTimeField()
    lifted_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    lifted_at = models.DateTimeField(null=True, blank=True)
    lift_reason = models.TextField(blank=True)

    class Meta:
        ordering = ["-placed_at"]
        constraints = [
            # One active hold per recording and cause: placing it again is a no-op, not a duplicate.
            models.UniqueConstraint(
                fields=["recording", "source", "source_ref"],
                condition=Q(active=True),
                name="one_active_hold_per_cause",
            )
        ]
        indexes = [
            models.Index(
                fields=["recording"], condition=Q(active=True), name="hold_active_recording"
            )
        ]

    def __str__(self) -> str:
        return f"{self.get_source_display()} on {self.recording_id}"
