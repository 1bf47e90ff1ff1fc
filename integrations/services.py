"""Writes of the integrations: connected systems, and what they send (dispatch incidents, crime
reports, outcomes) turned into tags, cases, candidates, holds and retention reviews.

Guarantees:
- every write is an upsert keyed by the source's identifier, with the source's version: a newer
  version applies, the same version with the same content is a replay that changes nothing, and
  an older version or the same version with other content is refused (409) and changes nothing;
  writes of one key are serialised, so two calls racing cannot both apply;
- a call is all or nothing: anything it refuses (an unknown officer, a borough the client may not
  send for, an outcome before its report) leaves no trace but the call's own record;
- footage is held only through `retention.services`, cases changed only through
  `review.services`, and every change is audited with the connected system as its actor;
- an outcome never lets footage go by itself: it sets a review date (or holds until disposal),
  and only a person releasing the review lifts its holds. Footage on an open case stays held by
  the case whatever the review says.
"""

from __future__ import annotations

import hashlib
import json
import secrets
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import connection, transaction
from django.utils import timezone
from django.utils.text import slugify
from oauth2_provider.models import Application

from custody.services import audit_record
from devices.models import Borough, Officer
from evidence.incidents import Attendance, incident_record
from evidence.models import Incident, IncidentTag, Recording, RecordingState
from integrations.models import (
    CallResult,
    ConnectedSystem,
    CrimeOutcome,
    CrimeReport,
    OutcomeCode,
    OutcomeRetentionRule,
    RetentionReview,
    ReviewState,
    SourceKind,
    SourceRecord,
    SystemKind,
    WebhookSubscriber,
)
from integrations.webhooks import EVENT_TYPES, audit_head_seq
from retention.models import HoldSource
from retention.services import RecordingGone, hold_place, holds_lift
from review.models import Case
from review.services import (
    CrimeReferenceError,
    case_candidate_confirm,
    case_candidates_offer,
    case_close,
    case_create,
    case_update,
    crime_reference_validate,
)


class IntegrationError(Exception):
    """A call that cannot be applied, with its HTTP status and what to tell the client."""

    status = 400

    def __init__(self, message: str | dict):
        super().__init__(message if isinstance(message, str) else json.dumps(message))
        self.detail = message


class InvalidInput(IntegrationError):
    status = 400


class NotAllowed(IntegrationError):
    status = 403


class Conflict(IntegrationError):
    """Stale, contradicting or out of order: the sender's data does not fit what is stored."""

    status = 409


@dataclass
class Applied:
    result: str  # CallResult
    kind: str
    key: str
    version: int
    object_id: str
    extra: dict = field(default_factory=dict)


# -- Connected systems -------------------------------------------------------------------------


@transaction.atomic
def connected_system_create(
    *,
    name: str,
    kind: str,
    scopes: list[str],
    boroughs: list[Borough],
    all_boroughs: bool = False,
    actor,
) -> tuple[ConnectedSystem, str, str]:
    """Register one of the force's systems with its own OAuth 2.0 client: returns the system, its
    client id and its client secret. The secret is shown once here; only its hash is kept."""
    unknown = sorted(set(scopes) - set(settings.INTEGRATION_SCOPES))
    if unknown:
        raise InvalidInput(f"unknown scopes: {', '.join(unknown)}")
    if kind not in SystemKind.values:
        raise InvalidInput(f"unknown kind {kind!r}")
    slug = slugify(name)[:60]
    if not slug or ConnectedSystem.objects.filter(slug=slug).exists():
        raise InvalidInput(
            f"a connected system named {name!r} exists already (or the name is empty)"
        )
    user = get_user_model().objects.create_user(username=f"client:{slug}")
    user.set_unusable_password()
    user.save()
    secret = secrets.token_urlsafe(48)
    application = Application.objects.create(
        name=name,
        user=user,
        client_type=Application.CLIENT_CONFIDENTIAL,
        authorization_grant_type=Application.GRANT_CLIENT_CREDENTIALS,
        client_secret=secret,
        skip_authorization=True,
    )
    system = ConnectedSystem.objects.create(
        name=name,
        slug=slug,
        kind=kind,
        application=application,
        user=user,
        scopes=sorted(set(scopes)),
        all_boroughs=all_boroughs,
    )
    system.boroughs.set(boroughs)
    audit_record(
        actor=actor,
        action="integration.client_created",
        obj=system,
        detail={
            "client_id": application.client_id,
            "scopes": system.scopes,
            "boroughs": "all" if all_boroughs else sorted(b.code for b in boroughs),
        },
    )
    return system, application.client_id, secret


@transaction.atomic
def connected_system_new_secret(*, system: ConnectedSystem, actor) -> str:
    """Give a connected system's client a new secret (shown once, only its hash kept); the old one
    stops working at once, and tokens already issued run out."""
    secret = secrets.token_urlsafe(48)
    application = system.application
    application.client_secret = secret
    application.save(update_fields=["client_secret"])
    audit_record(
        actor=actor,
        action="integration.client_secret_changed",
        obj=system,
        detail={"client_id": application.client_id},
    )
    return secret


# -- Versions ------------------------------------------------------------------------------------


def payload_digest(data: dict) -> str:
    """The SHA-256 of a call's content in canonical form: the same content sent again in another
    layout is the same content."""
    canonical = json.dumps(data, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()


def _lock_key(kind: str, key: str) -> None:
    """Serialise writes of one source key until the transaction ends (SQLite: one writer)."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT pg_advisory_xact_lock(1112561481, hashtext(%s))", [f"{kind}:{key}"]
            )


def _version_check(*, kind: str, key: str, version: int, digest: str) -> SourceRecord | None | bool:
    """The stored record to replace (None when the key is new), or True for a replay."""
    _lock_key(kind, key)
    record = SourceRecord.objects.filter(kind=kind, key=key).first()
    if record is None:
        return None
    label = SourceKind(kind).label.lower()
    if version < record.version:
        raise Conflict(
            f"stale: version {version} of {label} {key} is older than version {record.version}, "
            "which is applied; nothing was changed"
        )
    if version == record.version:
        if digest == record.payload_sha256:
            return True
        raise Conflict(
            f"version {version} of {label} {key} was received before with other content: send "
            "a change with a higher version; nothing was changed"
        )
    return record


def _version_store(
    record: SourceRecord | None, *, kind, key, version, digest, system, object_id
) -> None:
    values = {
        "version": version,
        "payload_sha256": digest,
        "system": system,
        "object_id": str(object_id),
        "applied_at": timezone.now(),
    }
    if record is None:
        SourceRecord.objects.create(kind=kind, key=key, **values)
    else:
        SourceRecord.objects.filter(pk=record.pk).update(**values)


def _borough_for(system: ConnectedSystem, code: str) -> Borough:
    borough = Borough.objects.filter(code=code.strip().upper()).first()
    if borough is None:
        raise InvalidInput({"borough": [f"no borough has the code {code!r}"]})
    if not system.may_act_for(borough):
        raise NotAllowed(f"this client may not send for borough {borough.code}")
    return borough


def _officers_for(system: ConnectedSystem, collars: list[str], field_name: str) -> dict:
    """Officers by collar number, among the boroughs the client may send for; an officer of
    another borough is as unknown as one who does not exist."""
    wanted = {c.strip().upper() for c in collars}
    officers = Officer.objects.filter(collar_number__in=wanted)
    allowed = system.borough_ids()
    if allowed is not None:
        officers = officers.filter(borough_id__in=allowed)
    found = {o.collar_number.upper(): o for o in officers}
    missing = sorted(wanted - set(found))
    if missing:
        raise InvalidInput(
            {field_name: [f"no officer has the collar number {', '.join(missing)}: nothing saved"]}
        )
    return found


# -- Dispatch incidents --------------------------------------------------------------------------


@transaction.atomic
def incident_receive(*, system: ConnectedSystem, data: dict) -> Applied:
    """A dispatch incident as the CAD system describes it now (see the module's guarantees).

    `data`: reference, version, borough (code), opened_at, closed_at, location, grade, officers
    ([{collar_number, arrived_at, cleared_at}])."""
    reference = " ".join(data["reference"].split())
    version, digest = data["version"], payload_digest(data)
    borough = _borough_for(system, data["borough"])
    if data.get("closed_at") and data["closed_at"] < data["opened_at"]:
        raise InvalidInput({"closed_at": ["the incident closes before it opens"]})
    officers = _officers_for(system, [o["collar_number"] for o in data["officers"]], "officers")
    attendances = []
    for n, o in enumerate(data["officers"]):
        if o.get("cleared_at") and o["cleared_at"] < o["arrived_at"]:
            raise InvalidInput({"officers": [f"officer {n + 1} clears before arriving"]})
        attendances.append(
            Attendance(
                officer=officers[o["collar_number"].strip().upper()],
                arrived_at=o["arrived_at"],
                cleared_at=o.get("cleared_at"),
            )
        )
    record = _version_check(kind=SourceKind.INCIDENT, key=reference, version=version, digest=digest)
    if record is True:
        incident = Incident.objects.get(reference=reference)
        return Applied(CallResult.UNCHANGED, SourceKind.INCIDENT, reference, version, incident.pk)
    incident, created, (added, removed) = incident_record(
        reference=reference,
        borough=borough,
        opened_at=data["opened_at"],
        closed_at=data.get("closed_at"),
        location=data.get("location", ""),
        grade=data.get("grade", ""),
        attendances=attendances,
        actor=system.user,
    )
    _version_store(
        record,
        kind=SourceKind.INCIDENT,
        key=reference,
        version=version,
        digest=digest,
        system=system,
        object_id=incident.pk,
    )
    # A crime report that names this incident offers its footage to its case as it is tagged.
    for report in incident.crime_reports.select_related("case"):
        _offer_incident_footage(report=report, system=system)
    return Applied(
        CallResult.CREATED if created else CallResult.UPDATED,
        SourceKind.INCIDENT,
        reference,
        version,
        incident.pk,
        {"tags_added": added, "tags_removed": removed},
    )


# -- Crime reports -------------------------------------------------------------------------------


def _offer_incident_footage(*, report: CrimeReport, system: ConnectedSystem) -> int:
    """Offer the footage of the report's incidents to its case (new footage only); with the
    force's setting on, confirm it at once as the system. Returns how many were offered."""
    case = report.case
    if case is None or not case.is_open:
        return 0
    offered = 0
    for incident in report.incidents.order_by("reference"):
        recordings = list(
            Recording.objects.filter(
                state=RecordingState.AVAILABLE,
                pk__in=IncidentTag.objects.filter(incident=incident).values("recording_id"),
            ).order_by("started_at", "id")
        )
        candidates = case_candidates_offer(
            case=case,
            recordings=recordings,
            actor=system.user,
            reason=f"recorded at incident {incident.reference}",
        )
        offered += len(candidates)
        if settings.BWV_CASE_CANDIDATES_AUTO_FLAG:
            for candidate in candidates:
                case_candidate_confirm(
                    candidate=candidate,
                    actor=system.user,
                    reason=f"flagged automatically by the force's setting, from {system.name}",
                )
    return offered


@transaction.atomic
def crime_report_receive(*, system: ConnectedSystem, data: dict) -> Applied:
    """A crime report as the crime recording system describes it now. One that names incidents
    opens a case (or joins the open case of its crime reference in its borough) and offers their
    footage as candidates for the officer in the case to confirm.

    `data`: crime_reference, version, borough, classification, status, officer_in_case (collar
    number or ""), incidents ([references])."""
    try:
        reference = crime_reference_validate(data["crime_reference"])
    except CrimeReferenceError as exc:
        raise InvalidInput({"crime_reference": [str(exc)]}) from exc
    version, digest = data["version"], payload_digest(data)
    borough = _borough_for(system, data["borough"])
    oic = None
    if data.get("officer_in_case"):
        oic = _officers_for(system, [data["officer_in_case"]], "officer_in_case")[
            data["officer_in_case"].strip().upper()
        ]
    names = sorted({" ".join(r.split()) for r in data.get("incidents", [])})
    incidents = list(Incident.objects.filter(reference__in=names))
    allowed = system.borough_ids()
    if allowed is not None:
        incidents = [i for i in incidents if i.borough_id in allowed]
    missing = sorted(set(names) - {i.reference for i in incidents})
    if missing:
        raise Conflict(
            f"incident {', '.join(missing)} has not been received: send the incident first, "
            "then this report again; nothing was changed"
        )
    record = _version_check(
        kind=SourceKind.CRIME_REPORT, key=reference, version=version, digest=digest
    )
    if record is True:
        report = CrimeReport.objects.get(crime_reference=reference)
        return Applied(CallResult.UNCHANGED, SourceKind.CRIME_REPORT, reference, version, report.pk)
    report = CrimeReport.objects.select_for_update().filter(crime_reference=reference).first()
    created = report is None
    values = {
        "borough": borough,
        "classification": data["classification"].strip()[:120],
        "status": data.get("status", "").strip()[:40],
        "officer_in_case": oic,
    }
    if created:
        report = CrimeReport.objects.create(crime_reference=reference, **values)
    else:
        CrimeReport.objects.filter(pk=report.pk).update(**values)
        report.refresh_from_db()
    report.incidents.set(incidents)
    if report.case is None and incidents:
        case = (
            Case.objects.filter(crime_reference=reference, borough=borough, closed_at__isnull=True)
            .order_by("created_at")
            .first()
        )
        if case is None:
            case = case_create(
                crime_reference=reference,
                title=report.classification,
                borough=borough,
                actor=system.user,
                officer_in_case=oic,
            )
        report.case = case
        report.save(update_fields=["case"])
    if report.case is not None and report.case.is_open:
        case_update(
            case=report.case,
            actor=system.user,
            title=report.case.title,
            officer_in_case=oic or report.case.officer_in_case,
        )
    audit_record(
        actor=system.user,
        action="crime_report.recorded" if created else "crime_report.updated",
        obj=report,
        detail={
            "crime_reference": reference,
            "classification": report.classification,
            "status": report.status,
            "officer_in_case": oic.collar_number if oic else None,
            "incidents": names,
            "case": report.case_id,
        },
    )
    offered = _offer_incident_footage(report=report, system=system)
    _version_store(
        record,
        kind=SourceKind.CRIME_REPORT,
        key=reference,
        version=version,
        digest=digest,
        system=system,
        object_id=report.pk,
    )
    return Applied(
        CallResult.CREATED if created else CallResult.UPDATED,
        SourceKind.CRIME_REPORT,
        reference,
        version,
        report.pk,
        {"case": report.case_id, "candidates_offered": offered},
    )


# -- Outcomes and retention ----------------------------------------------------------------------


def retention_rule_for(outcome: str, mopi_group: int) -> OutcomeRetentionRule | None:
    rules = {r.mopi_group: r for r in OutcomeRetentionRule.objects.filter(outcome=outcome)}
    return rules.get(mopi_group) or rules.get(0)


def _review_due(decided_on: date, days: int) -> datetime:
    """A review falls due at the start of the London day `days` after the decision."""
    day = decided_on + timedelta(days=days)
    return timezone.make_aware(datetime.combine(day, time.min), timezone.get_default_timezone())


def _outcome_hold_ref(case: Case) -> str:
    return f"outcome:case:{case.pk}"


@transaction.atomic
def outcome_receive(*, system: ConnectedSystem, data: dict) -> Applied:
    """The outcome of a crime report. It sets the retention of its case's footage from the
    configurable table (`OutcomeRetentionRule`): the footage is held by the outcome (a hold per
    recording), with a review date or until a later outcome disposes of the case, and an outcome
    that ends the case closes it (the outcome's holds keep its footage).

    `data`: crime_reference, version, outcome, mopi_group (0-3), decided_on, sentence."""
    try:
        reference = crime_reference_validate(data["crime_reference"])
    except CrimeReferenceError as exc:
        raise InvalidInput({"crime_reference": [str(exc)]}) from exc
    version, digest = data["version"], payload_digest(data)
    report = (
        CrimeReport.objects.select_related("case", "borough")
        .filter(crime_reference=reference)
        .first()
    )
    if report is None:
        raise Conflict(
            f"crime report {reference} has not been received: send the report before its "
            "outcome; nothing was changed"
        )
    if not system.may_act_for(report.borough):
        raise NotAllowed(f"this client may not send for borough {report.borough.code}")
    if data["decided_on"] > timezone.localdate() + timedelta(days=1):
        raise InvalidInput({"decided_on": ["the decision is dated in the future"]})
    record = _version_check(kind=SourceKind.OUTCOME, key=reference, version=version, digest=digest)
    if record is True:
        latest = report.outcomes.order_by("-version").first()
        return Applied(CallResult.UNCHANGED, SourceKind.OUTCOME, reference, version, latest.pk)
    code, group = data["outcome"], data.get("mopi_group", 0)
    rule = retention_rule_for(code, group)
    until_disposal = rule is None or rule.until_disposal
    review_at = None if until_disposal else _review_due(data["decided_on"], rule.review_after_days)
    if rule is None:
        rule_text = "no rule in the table for this outcome: held until disposal"
    else:
        rule_text = str(rule)
    outcome = CrimeOutcome.objects.create(
        crime_report=report,
        outcome=code,
        mopi_group=group,
        decided_on=data["decided_on"],
        sentence=data.get("sentence", "").strip()[:200],
        version=version,
        rule=rule_text[:120],
        review_at=review_at,
        received_at=timezone.now(),
    )
    label = OutcomeCode(code).label
    audit_record(
        actor=system.user,
        action="crime_report.outcome",
        obj=report,
        detail={
            "outcome": code,
            "mopi_group": group,
            "decided_on": data["decided_on"].isoformat(),
            "rule": rule_text,
            "review_at": review_at.isoformat() if review_at else None,
            "case": report.case_id,
        },
    )
    case = report.case
    held = 0
    if case is not None:
        reason = f"{label} ({reference}): {rule_text}"
        for recording in case.recordings.order_by("pk"):
            try:
                hold_place(
                    recording=recording,
                    source=HoldSource.OUTCOME,
                    actor=system.user,
                    reason=reason,
                    source_ref=_outcome_hold_ref(case),
                )
                held += 1
            except RecordingGone:
                continue
        RetentionReview.objects.update_or_create(
            case=case,
            defaults={
                "outcome": outcome,
                "state": ReviewState.WAITING if until_disposal else ReviewState.SCHEDULED,
                "due_at": review_at,
                "decided_by": None,
                "decided_at": None,
                "decision_reason": "",
            },
        )
        if not until_disposal and case.is_open:
            case_close(case=case, actor=system.user, reason=f"outcome: {label.lower()}")
    _version_store(
        record,
        kind=SourceKind.OUTCOME,
        key=reference,
        version=version,
        digest=digest,
        system=system,
        object_id=outcome.pk,
    )
    return Applied(
        CallResult.CREATED if record is None else CallResult.UPDATED,
        SourceKind.OUTCOME,
        reference,
        version,
        outcome.pk,
        {
            "case": case.pk if case else None,
            "recordings_held": held,
            "review_at": review_at.isoformat() if review_at else None,
        },
    )


class ReviewError(Exception):
    """A retention review decision that cannot be made as asked."""


@transaction.atomic
def retention_review_keep(*, review: RetentionReview, actor, until: date, reason: str):
    """Keep a case's footage under its outcome until a new review date (with a reason)."""
    reason = (reason or "").strip()
    if not reason:
        raise ReviewError("say why the footage is still needed")
    review = RetentionReview.objects.select_for_update().get(pk=review.pk)
    if review.state == ReviewState.RELEASED:
        raise ReviewError("this footage was already released")
    if until <= timezone.localdate():
        raise ReviewError("the next review must be after today")
    before = review.due_at
    review.due_at = _review_due(until, 0)
    review.state = ReviewState.SCHEDULED
    review.decided_by = actor
    review.decided_at = timezone.now()
    review.decision_reason = reason
    review.save()
    audit_record(
        actor=actor,
        action="retention_review.kept",
        obj=review.case,
        justification=reason,
        detail={
            "before": before.isoformat() if before else None,
            "until": review.due_at.isoformat(),
        },
    )
    return review


@transaction.atomic
def retention_review_release(*, review: RetentionReview, actor, reason: str):
    """Release a case's footage from its outcome (with a reason): the outcome's holds are lifted,
    so footage nothing else holds goes back to its retention policy. An open case still holds
    its own footage."""
    reason = (reason or "").strip()
    if not reason:
        raise ReviewError("say why the footage is no longer needed")
    review = RetentionReview.objects.select_for_update().select_related("case").get(pk=review.pk)
    if review.state == ReviewState.RELEASED:
        raise ReviewError("this footage was already released")
    lifted = holds_lift(
        source=HoldSource.OUTCOME,
        source_ref=_outcome_hold_ref(review.case),
        actor=actor,
        reason=f"retention review: {reason}",
    )
    review.state = ReviewState.RELEASED
    review.decided_by = actor
    review.decided_at = timezone.now()
    review.decision_reason = reason
    review.save()
    audit_record(
        actor=actor,
        action="retention_review.released",
        obj=review.case,
        justification=reason,
        detail={"holds_lifted": lifted},
    )
    return review


@transaction.atomic
def webhook_subscriber_create(
    *,
    name: str,
    url: str,
    events: list[str],
    boroughs: list[Borough],
    all_boroughs: bool = False,
    actor,
) -> tuple[WebhookSubscriber, str]:
    """Register a receiver of our events; returns it and its signing secret (shown once here).
    It is told of the events from now on, not of the history before it."""
    unknown = sorted(set(events) - set(EVENT_TYPES))
    if unknown or not events:
        raise InvalidInput(f"events must be among {', '.join(EVENT_TYPES)}")
    if not url.startswith(("https://", "http://")):
        raise InvalidInput("the URL must be http:// or https://")
    secret = secrets.token_urlsafe(32)
    subscriber = WebhookSubscriber(
        name=name,
        url=url,
        events=sorted(set(events)),
        all_boroughs=all_boroughs,
        from_seq=audit_head_seq(),
    )
    subscriber.secret_set(secret)
    subscriber.save()
    subscriber.boroughs.set(boroughs)
    audit_record(
        actor=actor,
        action="webhook.subscriber_created",
        obj=subscriber,
        detail={
            "url": url,
            "events": subscriber.events,
            "boroughs": "all" if all_boroughs else sorted(b.code for b in boroughs),
        },
    )
    return subscriber, secret
