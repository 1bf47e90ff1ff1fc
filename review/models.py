"""The review desk's decisions: evidence flags and cases.

These models came from the evidence app and keep its table names (and their audit names,
"evidence.case"), so a database made before the move keeps its rows and the audit log its words.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q

from devices.models import Borough, Officer
from evidence.models import Recording


class FlagKind(models.TextChoices):
    EVIDENCE = "evidence", "Evidence"
    POLICING_PURPOSE = "policing_purpose", "Policing purpose"


class EvidenceFlag(models.Model):
    """A decision to keep a recording: as evidence (with a crime reference) or for a policing purpose.

    A flag is lifted, never deleted, so the decision and its reversal both stay on record.
    """

    recording = models.ForeignKey(Recording, on_delete=models.PROTECT, related_name="flags")
    kind = models.CharField(max_length=20, choices=FlagKind.choices)
    crime_reference = models.CharField(max_length=40, blank=True)
    reason = models.TextField()
    flagged_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    flagged_at = models.DateTimeField()
    lifted_at = models.DateTimeField(null=True, blank=True)
    lifted_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    lift_reason = models.TextField(blank=True)

    class Meta:
        db_table = "evidence_evidenceflag"
        ordering = ["-flagged_at"]
        indexes = [models.Index(fields=["crime_reference"], name="flag_crime_ref")]
        constraints = [
            models.CheckConstraint(
                condition=~Q(kind="evidence") | ~Q(crime_reference=""),
                name="evidence_flag_has_crime_reference",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} flag on {self.recording_id}"

    @property
    def active(self) -> bool:
        return self.lifted_at is None


class Case(models.Model):
    """A case built around a crime reference, gathering the recordings that bear on it.

    Being on an open case holds a recording (a retention hold whose source is the case, placed and
    lifted by `review.services` through `retention.services`)."""

    # The audit log names cases as it always has: its words do not change with the code.
    audit_type = "evidence.case"

    crime_reference = models.CharField(max_length=40, db_index=True)
    title = models.CharField(max_length=200)
    borough = models.ForeignKey(Borough, on_delete=models.PROTECT, related_name="cases")
    recordings = models.ManyToManyField(Recording, related_name="cases", blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    # A closed case takes no new recordings and holds none: closing lifts its holds.
    closed_at = models.DateTimeField(null=True, blank=True)
    closed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    close_reason = models.TextField(blank=True)
    # The officer in the case (OIC): confirms which candidate footage is evidence, and is asked to
    # review its retention when an outcome's review falls due.
    officer_in_case = models.ForeignKey(
        Officer, null=True, blank=True, on_delete=models.PROTECT, related_name="cases_in_charge"
    )

    class Meta:
        db_table = "evidence_case"
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.crime_reference} {self.title}"

    @property
    def is_open(self) -> bool:
        return self.closed_at is None


class CandidateState(models.TextChoices):
    OFFERED = "offered", "Waiting for the officer in the case"
    CONFIRMED = "confirmed", "Confirmed as evidence"
    DISMISSED = "dismissed", "Not evidence"


class CaseCandidate(models.Model):
    """A recording offered to a case (for example, footage of an incident its crime report names),
    waiting for the officer in the case to confirm it as evidence or dismiss it. While it waits it
    is held (a case hold of its own), so the sweep cannot take it before anyone has looked."""

    case = models.ForeignKey(Case, on_delete=models.PROTECT, related_name="candidates")
    recording = models.ForeignKey(
        Recording, on_delete=models.PROTECT, related_name="case_candidacies"
    )
    reason = models.CharField(max_length=200, help_text="Why it is offered, e.g. the incident")
    state = models.CharField(
        max_length=10, choices=CandidateState.choices, default=CandidateState.OFFERED
    )
    offered_at = models.DateTimeField()
    decided_at = models.DateTimeField(null=True, blank=True)
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    decision_reason = models.TextField(blank=True)

    class Meta:
        ordering = ["offered_at", "id"]
        constraints = [
            models.UniqueConstraint(fields=["case", "recording"], name="one_candidacy_per_case"),
        ]
        indexes = [
            models.Index(
                fields=["case", "offered_at"], condition=Q(state="offered"), name="candidate_open"
            )
        ]

    def __str__(self) -> str:
        return f"{self.recording_id} for case {self.case_id} ({self.state})"
