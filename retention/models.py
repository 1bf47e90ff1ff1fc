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
    CASE = "case", "On a case"
    OUTCOME = "outcome", "Crime outcome (CPIA / MOPI retention)"


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


class SweepRun(models.Model):
    """One run of the retention sweep, with what it did. Written as it goes, so a crash shows.

    A run whose process died (killed, or its database session lost) is closed as abandoned by the
    next run, which also takes over the recordings it had claimed (see `retention.sweep`).
    """

    class Status(models.TextChoices):
        RUNNING = "running", "Running"
        COMPLETED = "completed", "Completed"
        # Runs before storage failures stopped the run: kept so that old records still read.
        COMPLETED_WITH_ERRORS = "completed_with_errors", "Completed with errors"
        GUARD_STOPPED = "guard_stopped", "Stopped by the blast-radius guard"
        STORAGE_FAILED = "storage_failed", "Stopped: storage failed"
        ABANDONED = "abandoned", "Abandoned: its worker stopped"
        DRY_RUN = "dry_run", "Dry run"
        FAILED = "failed", "Failed"

    started_at = models.DateTimeField()
    finished_at = models.DateTimeField(null=True, blank=True)
    status = models.CharField(max_length=24, choices=Status.choices, default=Status.RUNNING)
    triggered_by = models.CharField(max_length=150, default="schedule")
    dry_run = models.BooleanField(default=False)
    candidates = models.PositiveIntegerField(default=0)
    deleted = models.PositiveIntegerField(default=0)
    failed = models.PositiveIntegerField(default=0)
    bytes_freed = models.BigIntegerField(default=0)
    errors = models.JSONField(default=list, blank=True)
    message = models.TextField(blank=True)
    # The token the run claims recordings with (Recording.sweep_claim); also names the run's
    # liveness lock on PostgreSQL.
    claim_token = models.UUIDField(null=True, blank=True, unique=True)
    released = models.PositiveIntegerField(
        default=0, help_text="Claimed recordings given back undeleted when the run stopped"
    )
    heartbeat_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-started_at"]

    def __str__(self) -> str:
        return f"sweep {self.started_at:%Y-%m-%d %H:%M} {self.status}"

    @property
    def is_problem(self) -> bool:
        return self.status in PROBLEM_STATUSES or bool(self.failed)

    @property
    def duration_seconds(self) -> float | None:
        if self.finished_at is None:
            return None
        return (self.finished_at - self.started_at).total_seconds()


# Outcomes the retention page shows as a problem, for someone to look at.
PROBLEM_STATUSES = frozenset(
    {
        SweepRun.Status.GUARD_STOPPED,
        SweepRun.Status.STORAGE_FAILED,
        SweepRun.Status.ABANDONED,
        SweepRun.Status.FAILED,
        SweepRun.Status.COMPLETED_WITH_ERRORS,
    }
)


class DeletionCertificate(models.Model):
    """Proof that a recording was erased under a policy: what, which hash, when, why. One each."""

    recording = models.OneToOneField(
        Recording, on_delete=models.PROTECT, related_name="deletion_certificate"
    )
    sweep_run = models.ForeignKey(
        SweepRun, null=True, on_delete=models.PROTECT, related_name="certificates"
    )
    deleted_at = models.DateTimeField()
    sha256 = models.CharField(max_length=64)
    size_bytes = models.BigIntegerField()
    policy = models.CharField(max_length=150)
    delete_after = models.DateTimeField()
    objects_deleted = models.JSONField(default=list)
    statement = models.JSONField(help_text="The certificate as issued (canonical JSON)")
    digest = models.CharField(max_length=64, help_text="SHA-256 of the canonical statement")

    class Meta:
        ordering = ["-deleted_at"]

    def __str__(self) -> str:
        return f"deletion certificate {self.recording_id}"
