"""The force's own systems: who they are (connected systems, OAuth 2.0 clients), what they sent
(the last version of each incident, crime report and outcome, and every call), what followed
(crime reports and their outcomes, retention reviews) and what we tell them (webhooks).

Guarantees kept here:
- each thing a system sends is known by the source's own identifier (`SourceRecord`, one row per
  kind and key) with the source's version: an older version never replaces a newer one, and the
  same version twice is a replay (answered, changing nothing) unless its content differs;
- every call of a connected system is kept in `InboundCall`, with its payload, whatever the answer;
- a webhook delivery keeps its idempotency key (its id) across every attempt and replay.
"""

from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models
from django.db.models import Q

from devices.models import Borough, Officer
from evidence.crypto import unwrap_data_key, wrap_data_key
from evidence.models import Incident
from review.models import Case


class SystemKind(models.TextChoices):
    DISPATCH = "dispatch", "Dispatch (CAD)"
    CRIME_RECORDING = "crime_recording", "Crime recording (RMS)"
    OTHER = "other", "Other"


class ConnectedSystem(models.Model):
    """One of the force's systems, with its own OAuth 2.0 client (client-credentials grant).

    `user` is its service account: it cannot sign in (no usable password, no role), and stands as
    the actor of what the system does (the audit log names it `client:<slug>`; cases it opens and
    flags it places point at it)."""

    name = models.CharField(max_length=100, unique=True)
    slug = models.SlugField(max_length=60, unique=True)
    kind = models.CharField(max_length=20, choices=SystemKind.choices)
    application = models.OneToOneField(
        "oauth2_provider.Application", on_delete=models.PROTECT, related_name="connected_system"
    )
    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="connected_system"
    )
    scopes = models.JSONField(default=list, help_text="The scopes its tokens may carry")
    all_boroughs = models.BooleanField(default=False)
    boroughs = models.ManyToManyField(Borough, blank=True, related_name="+")
    active = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    def may_act_for(self, borough: Borough) -> bool:
        return self.all_boroughs or self.boroughs.filter(pk=borough.pk).exists()

    def borough_ids(self) -> list[int] | None:
        """None for every borough, else the ids it may act for."""
        if self.all_boroughs:
            return None
        return list(self.boroughs.values_list("pk", flat=True))


class SourceKind(models.TextChoices):
    INCIDENT = "incident", "Dispatch incident"
    CRIME_REPORT = "crime_report", "Crime report"
    OUTCOME = "outcome", "Outcome"


class SourceRecord(models.Model):
    """The version of one thing (an incident, a crime report, an outcome) that was last applied,
    keyed by the source's identifier: the upsert key of the API."""

    kind = models.CharField(max_length=20, choices=SourceKind.choices)
    key = models.CharField(max_length=64)
    version = models.BigIntegerField()
    payload_sha256 = models.CharField(max_length=64)
    system = models.ForeignKey(ConnectedSystem, on_delete=models.PROTECT, related_name="+")
    object_id = models.CharField(max_length=64)
    applied_at = models.DateTimeField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["kind", "key"], name="one_source_record_per_key")
        ]

    def __str__(self) -> str:
        return f"{self.kind} {self.key} v{self.version}"


class CallResult(models.TextChoices):
    CREATED = "created", "Created"
    UPDATED = "updated", "Updated"
    UNCHANGED = "unchanged", "Unchanged (a replay)"
    READ = "read", "Read"
    REFUSED = "refused", "Refused"


class InboundCall(models.Model):
    """One call of a connected system, with what it sent and what it was answered. Kept whatever
    the answer, so a refused call loses nothing: its payload is here to read and to send again."""

    audit_type = "integrations.call"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    system = models.ForeignKey(ConnectedSystem, on_delete=models.PROTECT, related_name="calls")
    method = models.CharField(max_length=8)
    path = models.CharField(max_length=200)
    kind = models.CharField(max_length=20, blank=True)
    key = models.CharField(max_length=64, blank=True)
    version = models.BigIntegerField(null=True, blank=True)
    status = models.PositiveSmallIntegerField()
    result = models.CharField(max_length=10, choices=CallResult.choices)
    detail = models.TextField(blank=True)
    payload = models.TextField(blank=True, help_text="The body as received (up to the limit)")
    received_at = models.DateTimeField()

    class Meta:
        ordering = ["-received_at"]
        indexes = [models.Index(fields=["system", "-received_at"], name="call_system_received")]

    def __str__(self) -> str:
        return f"{self.method} {self.path} {self.status}"


class CrimeReport(models.Model):
    """A crime report as the crime recording system describes it now. A report that names
    incidents opens a case (`case`) with their footage offered as candidates."""

    crime_reference = models.CharField(max_length=40, unique=True)
    borough = models.ForeignKey(Borough, on_delete=models.PROTECT, related_name="+")
    classification = models.CharField(max_length=120)
    status = models.CharField(max_length=40, help_text="As the crime recording system says")
    officer_in_case = models.ForeignKey(
        Officer, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    incidents = models.ManyToManyField(Incident, blank=True, related_name="crime_reports")
    case = models.OneToOneField(
        Case, null=True, blank=True, on_delete=models.PROTECT, related_name="crime_report"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-updated_at"]

    def __str__(self) -> str:
        return self.crime_reference


class OutcomeCode(models.TextChoices):
    NO_FURTHER_ACTION = "nfa", "No further action"
    CHARGED = "charged", "Charged"
    CONVICTED = "convicted", "Convicted"
    ACQUITTED = "acquitted", "Acquitted"
    DISCONTINUED = "discontinued", "Discontinued"
    OUT_OF_COURT = "out_of_court", "Out-of-court disposal (caution, community resolution)"


class OutcomeRetentionRule(models.Model):
    """The configurable table that turns an outcome into retention (CPIA and MOPI): keep the
    footage until the case is disposed of (`until_disposal`), or ask for a review a number of days
    after the outcome's date. A row for a MOPI group (1-3) wins over the outcome's row for any
    group (0). A system admin edits the table in the admin."""

    outcome = models.CharField(max_length=20, choices=OutcomeCode.choices)
    mopi_group = models.PositiveSmallIntegerField(
        default=0, help_text="MOPI group 1, 2 or 3; 0 for any"
    )
    until_disposal = models.BooleanField(
        default=False, help_text="Held, with no review date, until a later outcome disposes of it"
    )
    review_after_days = models.PositiveIntegerField(null=True, blank=True)
    description = models.CharField(max_length=300, blank=True)

    class Meta:
        ordering = ["outcome", "mopi_group"]
        constraints = [
            models.UniqueConstraint(fields=["outcome", "mopi_group"], name="one_rule_per_outcome"),
            models.CheckConstraint(
                condition=Q(until_disposal=True, review_after_days__isnull=True)
                | Q(until_disposal=False, review_after_days__isnull=False),
                name="rule_is_until_disposal_or_review",
            ),
            models.CheckConstraint(condition=Q(mopi_group__lte=3), name="rule_mopi_group_0_to_3"),
        ]

    def __str__(self) -> str:
        if self.until_disposal:
            return f"{self.get_outcome_display()}: held until disposal"
        return f"{self.get_outcome_display()}: review after {self.review_after_days} days"


class CrimeOutcome(models.Model):
    """One outcome of a crime report, as received (every version kept; the latest applies)."""

    crime_report = models.ForeignKey(CrimeReport, on_delete=models.PROTECT, related_name="outcomes")
    outcome = models.CharField(max_length=20, choices=OutcomeCode.choices)
    mopi_group = models.PositiveSmallIntegerField(default=0)
    decided_on = models.DateField(help_text="The date of the decision, charge or sentence")
    sentence = models.CharField(max_length=200, blank=True)
    version = models.BigIntegerField()
    rule = models.CharField(max_length=120, help_text="The retention rule applied, as it read")
    review_at = models.DateTimeField(null=True, blank=True)
    received_at = models.DateTimeField()

    class Meta:
        ordering = ["-version"]

    def __str__(self) -> str:
        return f"{self.crime_report} {self.outcome}"


class ReviewState(models.TextChoices):
    WAITING = "waiting", "Held until the case is disposed of"
    SCHEDULED = "scheduled", "Review scheduled"
    RELEASED = "released", "Released: back to the retention policy"


class RetentionReview(models.Model):
    """The retention an outcome set for a case's footage: held by outcome holds until a person
    reviews it. When `due_at` passes it appears in the officer in the case's work queue; nothing
    is deleted until someone releases it there."""

    case = models.OneToOneField(Case, on_delete=models.PROTECT, related_name="retention_review")
    outcome = models.ForeignKey(CrimeOutcome, on_delete=models.PROTECT, related_name="+")
    state = models.CharField(max_length=10, choices=ReviewState.choices)
    due_at = models.DateTimeField(null=True, blank=True)
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    decided_at = models.DateTimeField(null=True, blank=True)
    decision_reason = models.TextField(blank=True)

    class Meta:
        indexes = [
            models.Index(fields=["due_at"], condition=Q(state="scheduled"), name="review_due")
        ]

    def __str__(self) -> str:
        return f"retention review of case {self.case_id} ({self.state})"


class WebhookSubscriber(models.Model):
    """A receiver of our events (e.g. the crime recording system), with its own signing secret.

    Every delivery is signed with HMAC-SHA256 under its secret (see integrations/webhooks.py).
    The secret is kept sealed under the key-encryption key, bound to `secret_id`, like a
    recording's data key: a copy of the database alone does not let anyone sign as us."""

    name = models.CharField(max_length=100, unique=True)
    url = models.URLField(max_length=500)
    secret_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    secret_kek_id = models.CharField(max_length=64, editable=False)
    secret_sealed = models.BinaryField(editable=False, help_text="Shared with the receiver")
    events = models.JSONField(default=list, help_text="The event types it receives")
    all_boroughs = models.BooleanField(default=False)
    boroughs = models.ManyToManyField(Borough, blank=True, related_name="+")
    active = models.BooleanField(default=True)
    from_seq = models.BigIntegerField(
        default=0, help_text="It is told of the audit events after this one (its start)"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    def secret_set(self, secret: str) -> None:
        self.secret_kek_id, self.secret_sealed = wrap_data_key(
            secret.encode(), object_id=self.secret_id
        )

    def secret(self) -> str:
        """The signing secret, unsealed (raises crypto.TamperedError if the row was altered)."""
        return unwrap_data_key(
            self.secret_sealed, kek_id=self.secret_kek_id, object_id=self.secret_id
        ).decode()


class WebhookCursor(models.Model):
    """How far the outbox has read the audit log (one row): events past it are yet to be turned
    into deliveries."""

    last_seq = models.BigIntegerField(default=0)

    def __str__(self) -> str:
        return f"webhooks read the audit log up to #{self.last_seq}"


class DeliveryState(models.TextChoices):
    PENDING = "pending", "Waiting to be delivered"
    DELIVERED = "delivered", "Delivered"
    FAILED = "failed", "Gave up: replay it from the log"


class WebhookDelivery(models.Model):
    """One event for one subscriber. Deliveries with the same `ordering_key` (the case, else the
    recording) go out one at a time in the order of the events; `id` is the idempotency key."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    subscriber = models.ForeignKey(
        WebhookSubscriber, on_delete=models.PROTECT, related_name="deliveries"
    )
    event_seq = models.BigIntegerField(help_text="The audit event it reports")
    event = models.CharField(max_length=40)
    ordering_key = models.CharField(max_length=64)
    payload = models.JSONField()
    state = models.CharField(
        max_length=10, choices=DeliveryState.choices, default=DeliveryState.PENDING
    )
    attempts = models.PositiveIntegerField(default=0)
    next_attempt_at = models.DateTimeField()
    first_failed_at = models.DateTimeField(null=True, blank=True)
    claim = models.UUIDField(null=True, blank=True)
    claimed_until = models.DateTimeField(null=True, blank=True)
    last_status = models.PositiveSmallIntegerField(null=True, blank=True)
    last_error = models.CharField(max_length=500, blank=True)
    delivered_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField()

    class Meta:
        ordering = ["-event_seq"]
        constraints = [
            models.UniqueConstraint(
                fields=["subscriber", "event_seq"], name="one_delivery_per_event"
            )
        ]
        indexes = [
            # The head of each stream: its oldest undelivered event.
            models.Index(
                fields=["subscriber", "ordering_key", "event_seq"],
                condition=~Q(state="delivered"),
                name="delivery_stream_head",
            ),
            models.Index(
                fields=["next_attempt_at"], condition=Q(state="pending"), name="delivery_due"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.event} #{self.event_seq} to {self.subscriber_id} ({self.state})"


class WebhookAttempt(models.Model):
    """One try of a delivery, with the receiver's answer."""

    delivery = models.ForeignKey(WebhookDelivery, on_delete=models.CASCADE, related_name="tries")
    at = models.DateTimeField()
    status = models.PositiveSmallIntegerField(null=True, blank=True)
    error = models.CharField(max_length=500, blank=True)
    duration_ms = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["at", "id"]

    def __str__(self) -> str:
        return f"attempt {self.at:%Y-%m-%d %H:%M:%S} {self.status or self.error[:40]}"
