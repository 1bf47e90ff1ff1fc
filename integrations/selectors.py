"""Reads of the integrations. A connected system reads only its boroughs' footage (out of scope
is the same as missing: 404); staff read through the review desk's scopes."""

from __future__ import annotations

from django.db.models import Exists, OuterRef, QuerySet
from django.http import Http404
from django.utils import timezone

from evidence.models import Incident, Recording, RecordingState
from integrations.models import (
    ConnectedSystem,
    CrimeReport,
    DeliveryState,
    RetentionReview,
    ReviewState,
    WebhookDelivery,
)
from review.models import EvidenceFlag, FlagKind
from review.selectors import cases_in_charge_for
from review.services import CrimeReferenceError, crime_reference_validate


def _client_recordings(system: ConnectedSystem) -> QuerySet[Recording]:
    recordings = Recording.objects.filter(state=RecordingState.AVAILABLE)
    allowed = system.borough_ids()
    if allowed is not None:
        recordings = recordings.filter(borough_id__in=allowed)
    evidence = EvidenceFlag.objects.filter(
        recording=OuterRef("pk"), kind=FlagKind.EVIDENCE, lifted_at__isnull=True
    )
    return recordings.annotate(evidence=Exists(evidence)).select_related(
        "officer", "camera", "borough"
    )


def client_incident_recordings(*, system: ConnectedSystem, reference: str) -> QuerySet[Recording]:
    """The footage tagged with an incident of the client's boroughs, or 404."""
    incidents = Incident.objects.filter(reference=" ".join(reference.split()))
    allowed = system.borough_ids()
    if allowed is not None:
        incidents = incidents.filter(borough_id__in=allowed)
    incident = incidents.first()
    if incident is None:
        raise Http404
    return (
        _client_recordings(system)
        .filter(incident_tags__incident=incident)
        .order_by("started_at", "id")
    )


def client_case_recordings(*, system: ConnectedSystem, crime_reference: str):
    """The footage on the case of a crime report of the client's boroughs, or 404."""
    try:
        crime_reference = crime_reference_validate(crime_reference)
    except CrimeReferenceError:
        raise Http404 from None
    reports = CrimeReport.objects.filter(crime_reference=crime_reference)
    allowed = system.borough_ids()
    if allowed is not None:
        reports = reports.filter(borough_id__in=allowed)
    report = reports.select_related("case").first()
    if report is None:
        raise Http404
    if report.case is None:
        return _client_recordings(system).none()
    return _client_recordings(system).filter(cases=report.case).order_by("started_at", "id")


def reviews_due_for(*, user, now=None) -> QuerySet[RetentionReview]:
    """Retention reviews that have fallen due on the cases the user is in charge of."""
    now = now or timezone.now()
    return (
        RetentionReview.objects.filter(
            state=ReviewState.SCHEDULED,
            due_at__lte=now,
            case__in=cases_in_charge_for(user=user),
        )
        .select_related("case", "outcome", "case__officer_in_case")
        .order_by("due_at")
    )


def review_get_for(*, user, review_id) -> RetentionReview:
    review = (
        RetentionReview.objects.filter(pk=review_id, case__in=cases_in_charge_for(user=user))
        .select_related("case", "outcome")
        .first()
        if str(review_id).isdigit() and int(review_id) < 2**63
        else None
    )
    if review is None:
        raise Http404
    return review


def delivery_log(*, state: str = "") -> QuerySet[WebhookDelivery]:
    deliveries = WebhookDelivery.objects.select_related("subscriber").order_by("-event_seq")
    if state in DeliveryState.values:
        deliveries = deliveries.filter(state=state)
    return deliveries
