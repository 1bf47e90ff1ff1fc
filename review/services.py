"""Writes of the review desk: flags and cases, each audited, each holding footage through the one
retention service (`retention.services.hold_place` / `holds_lift`), in the same transaction."""

from __future__ import annotations

import re

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from custody.models import Export
from custody.services import ExportError, audit_record, export_record, export_terms_check
from evidence.models import Recording, RecordingState
from retention.models import HoldSource
from retention.services import RecordingGone, hold_place, holds_lift
from review.models import CandidateState, Case, CaseCandidate, EvidenceFlag, FlagKind


class ReviewError(Exception):
    """A decision that cannot be made as asked, with a message for the person who asked."""


class CrimeReferenceError(ReviewError):
    """A crime reference not in the force's format."""


class CaseError(ReviewError):
    """A case that cannot be created, changed or closed as asked."""


class FlagError(ReviewError):
    """A flag that cannot be placed or lifted, with a message for the person who asked."""


def crime_reference_validate(value: str) -> str:
    """Normalise and check a crime reference in the force's format (settings.BWV_CRIME_REF_PATTERN)."""
    value = (value or "").strip().upper()
    if not re.fullmatch(settings.BWV_CRIME_REF_PATTERN, value):
        raise CrimeReferenceError(
            f"{value or 'an empty value'} is not a crime reference in the form "
            f"{settings.BWV_CRIME_REF_EXAMPLE}"
        )
    return value


@transaction.atomic
def recording_flag(
    *, recording: Recording, kind: str, actor, reason: str, crime_reference: str = ""
) -> EvidenceFlag:
    """Flag a recording as evidence (with a crime reference) or for a policing purpose.

    The flag places a hold through the retention service, which locks the recording: if the sweep
    has already deleted it, the flag is refused with a clear message and nothing is written.
    """
    if kind not in FlagKind.values:
        raise FlagError(f"unknown flag kind {kind!r}")
    if not reason.strip():
        raise FlagError("a flag needs a reason")
    if kind == FlagKind.EVIDENCE or crime_reference:  # evidence needs one; any given must be valid
        crime_reference = crime_reference_validate(crime_reference)
    flag = EvidenceFlag.objects.create(
        recording=recording,
        kind=kind,
        crime_reference=crime_reference,
        reason=reason,
        flagged_by=actor,
        flagged_at=timezone.now(),
    )
    source = HoldSource.EVIDENCE if kind == FlagKind.EVIDENCE else HoldSource.POLICING_PURPOSE
    try:
        hold_place(
            recording=recording,
            source=source,
            actor=actor,
            reason=reason,
            source_ref=f"flag:{flag.pk}",
        )
    except RecordingGone as exc:
        raise FlagError(f"cannot flag: {exc}") from exc
    audit_record(
        actor=actor,
        action="recording.flagged",
        obj=recording,
        justification=reason,
        detail={"flag": flag.pk, "kind": kind, "crime_reference": crime_reference},
    )
    return flag


@transaction.atomic
def recording_unflag(*, flag: EvidenceFlag, actor, reason: str) -> EvidenceFlag:
    """Lift a flag (with a reason) and the hold it placed; the flag itself stays on record."""
    if not reason.strip():
        raise FlagError("lifting a flag needs a reason")
    updated = EvidenceFlag.objects.filter(pk=flag.pk, lifted_at__isnull=True).update(
        lifted_at=timezone.now(), lifted_by=actor, lift_reason=reason
    )
    flag.refresh_from_db()
    if not updated:
        return flag
    holds_lift(source_ref=f"flag:{flag.pk}", recording=flag.recording, actor=actor, reason=reason)
    audit_record(
        actor=actor,
        action="recording.unflagged",
        obj=flag.recording,
        justification=reason,
        detail={"flag": flag.pk, "kind": flag.kind, "crime_reference": flag.crime_reference},
    )
    return flag


@transaction.atomic
def case_create(*, crime_reference: str, title: str, borough, actor, officer_in_case=None) -> Case:
    crime_reference = crime_reference_validate(crime_reference)
    if not title.strip():
        raise CaseError("a case needs a title")
    case = Case.objects.create(
        crime_reference=crime_reference,
        title=title.strip()[:200],
        borough=borough,
        created_by=actor,
        officer_in_case=officer_in_case,
    )
    audit_record(
        actor=actor,
        action="case.created",
        obj=case,
        detail={
            "crime_reference": crime_reference,
            "officer_in_case": officer_in_case.collar_number if officer_in_case else None,
        },
    )
    return case


@transaction.atomic
def case_update(*, case: Case, actor, title: str, officer_in_case) -> Case:
    """Change a case's title or its officer in the case (audited with both values)."""
    case = _case_locked(case)
    title = title.strip()[:200]
    if not title:
        raise CaseError("a case needs a title")
    before = {
        "title": case.title,
        "officer_in_case": case.officer_in_case.collar_number if case.officer_in_case else None,
    }
    after = {
        "title": title,
        "officer_in_case": officer_in_case.collar_number if officer_in_case else None,
    }
    if before == after:
        return case
    case.title, case.officer_in_case = title, officer_in_case
    case.save(update_fields=["title", "officer_in_case"])
    audit_record(
        actor=actor, action="case.updated", obj=case, detail={"before": before, "after": after}
    )
    return case


def _case_hold_ref(case: Case) -> str:
    return f"case:{case.pk}"


def _case_locked(case: Case) -> Case:
    """The case row, locked: adding, removing and closing are serialised on it, so a recording
    added while the case closes is either on it before (and its hold lifted) or refused after."""
    return Case.objects.select_for_update().get(pk=case.pk)


@transaction.atomic
def case_add_recording(*, case: Case, recording: Recording, actor) -> None:
    """Put a recording on an open case. Being on the case holds it: the hold (source "case") is
    placed through the retention service in this transaction, so the recording is never on a case
    unheld; footage the sweep has already claimed or deleted is refused with a clear message."""
    if recording.borough_id != case.borough_id:
        raise CaseError("a case holds recordings of its own borough only")
    case = _case_locked(case)
    if not case.is_open:
        raise CaseError(f"case {case.crime_reference} is closed: it takes no new recordings")
    try:
        # Idempotent: a recording already on the case keeps its one hold.
        hold_place(
            recording=recording,
            source=HoldSource.CASE,
            actor=actor,
            reason=f"on case {case.crime_reference}: {case.title}",
            source_ref=_case_hold_ref(case),
        )
    except RecordingGone as exc:
        raise CaseError(f"cannot add to the case: {exc}") from exc
    if case.recordings.filter(pk=recording.pk).exists():
        return
    case.recordings.add(recording)
    audit_record(
        actor=actor,
        action="case.recording_added",
        obj=recording,
        detail={"case": case.pk, "crime_reference": case.crime_reference},
    )


def _case_holds_lift(*, case: Case, actor, reason: str, recording: Recording | None = None) -> int:
    return holds_lift(
        source=HoldSource.CASE,
        source_ref=_case_hold_ref(case),
        recording=recording,
        actor=actor,
        reason=reason,
    )


@transaction.atomic
def case_remove_recording(*, case: Case, recording: Recording, actor, reason: str) -> None:
    """Take a recording off a case (with a reason) and lift the hold the case placed; a hold from
    another case, a flag or a request stays."""
    if not reason.strip():
        raise CaseError("removing a recording from a case needs a reason")
    case = _case_locked(case)
    if not case.recordings.filter(pk=recording.pk).exists():
        return
    case.recordings.remove(recording)
    _case_holds_lift(
        case=case,
        actor=actor,
        reason=f"removed from case {case.crime_reference}: {reason}",
        recording=recording,
    )
    audit_record(
        actor=actor,
        action="case.recording_removed",
        obj=recording,
        justification=reason,
        detail={"case": case.pk, "crime_reference": case.crime_reference},
    )


@transaction.atomic
def case_close(*, case: Case, actor, reason: str) -> Case:
    """Close a case (with a reason): it takes no new recordings, and every hold it placed is
    lifted with that reason, so its footage goes back to its retention policy unless something
    else holds it. The recordings stay listed on the case, for the record."""
    reason = (reason or "").strip()
    if not reason:
        raise CaseError("closing a case needs a reason")
    case = _case_locked(case)
    if not case.is_open:
        raise CaseError(
            f"case {case.crime_reference} was already closed on {case.closed_at:%d %b %Y}"
        )
    case.closed_at = timezone.now()
    case.closed_by = actor if getattr(actor, "is_authenticated", False) else None
    case.close_reason = reason
    case.save(update_fields=["closed_at", "closed_by", "close_reason"])
    lifted = _case_holds_lift(
        case=case, actor=actor, reason=f"case {case.crime_reference} closed: {reason}"
    )
    # Footage still waiting for a decision is not evidence of a closed case.
    for candidate in case.candidates.filter(state=CandidateState.OFFERED).select_related(
        "recording"
    ):
        _candidate_decide(
            candidate,
            state=CandidateState.DISMISSED,
            actor=actor,
            reason=f"case {case.crime_reference} closed: {reason}",
        )
    audit_record(
        actor=actor,
        action="case.closed",
        obj=case,
        justification=reason,
        detail={"crime_reference": case.crime_reference, "holds_lifted": lifted},
    )
    return case


def _candidate_hold_ref(case: Case) -> str:
    return f"case:{case.pk}:candidate"


@transaction.atomic
def case_candidates_offer(
    *, case: Case, recordings: list[Recording], actor, reason: str
) -> list[CaseCandidate]:
    """Offer recordings to an open case for the officer in the case to decide on; each is held
    while it waits. Recordings of another borough (a case holds its own borough's), recordings
    already offered or on the case, and footage already gone are left out. Returns the new ones."""
    case = _case_locked(case)
    if not case.is_open:
        raise CaseError(f"case {case.crime_reference} is closed: it takes no new recordings")
    offered = set(case.candidates.values_list("recording_id", flat=True))
    offered |= set(case.recordings.values_list("pk", flat=True))
    made = []
    for recording in sorted(recordings, key=lambda r: str(r.pk)):  # one lock order for all
        if recording.pk in offered or recording.borough_id != case.borough_id:
            continue
        try:
            hold_place(
                recording=recording,
                source=HoldSource.CASE,
                actor=actor,
                reason=f"offered to case {case.crime_reference}: {reason}",
                source_ref=_candidate_hold_ref(case),
            )
        except RecordingGone:
            continue
        candidate = CaseCandidate.objects.create(
            case=case, recording=recording, reason=reason[:200], offered_at=timezone.now()
        )
        audit_record(
            actor=actor,
            action="case.candidate_offered",
            obj=recording,
            justification=reason,
            detail={"case": case.pk, "crime_reference": case.crime_reference},
        )
        offered.add(recording.pk)
        made.append(candidate)
    return made


def _candidate_decide(candidate: CaseCandidate, *, state: str, actor, reason: str) -> None:
    updated = CaseCandidate.objects.filter(pk=candidate.pk, state=CandidateState.OFFERED).update(
        state=state,
        decided_at=timezone.now(),
        decided_by=actor if getattr(actor, "is_authenticated", False) else None,
        decision_reason=reason,
    )
    if not updated:
        raise CaseError("a decision was already made on this recording")
    case = candidate.case
    holds_lift(
        source=HoldSource.CASE,
        source_ref=_candidate_hold_ref(case),
        recording=candidate.recording,
        actor=actor,
        reason=f"{CandidateState(state).label.lower()} for case {case.crime_reference}: {reason}",
    )
    audit_record(
        actor=actor,
        action=f"case.candidate_{state}",
        obj=candidate.recording,
        justification=reason,
        detail={"case": case.pk, "crime_reference": case.crime_reference},
    )
    candidate.refresh_from_db()


@transaction.atomic
def case_candidate_confirm(*, candidate: CaseCandidate, actor, reason: str = "") -> CaseCandidate:
    """The officer in the case confirms a candidate as evidence: it is flagged as evidence with the
    case's crime reference and put on the case (both hold it), and its waiting hold is lifted."""
    case = _case_locked(candidate.case)
    candidate.case = case
    reason = reason.strip() or f"confirmed as evidence for {case.crime_reference}"
    if candidate.state != CandidateState.OFFERED:
        raise CaseError("a decision was already made on this recording")
    # Added first: a closed case refuses, and nothing else is written.
    case_add_recording(case=case, recording=candidate.recording, actor=actor)
    recording_flag(
        recording=candidate.recording,
        kind=FlagKind.EVIDENCE,
        actor=actor,
        reason=f"{reason} ({candidate.reason})",
        crime_reference=case.crime_reference,
    )
    _candidate_decide(candidate, state=CandidateState.CONFIRMED, actor=actor, reason=reason)
    return candidate


@transaction.atomic
def case_candidate_dismiss(*, candidate: CaseCandidate, actor, reason: str) -> CaseCandidate:
    """Not evidence for this case (with a reason): its waiting hold is lifted."""
    reason = (reason or "").strip()
    if not reason:
        raise CaseError("say why this footage is not evidence for the case")
    _case_locked(candidate.case)
    _candidate_decide(candidate, state=CandidateState.DISMISSED, actor=actor, reason=reason)
    return candidate


@transaction.atomic
def export_create(
    *, actor, recordings: list[Recording], recipient: str, purpose: str, case: Case | None = None
) -> Export:
    """A court/CPS export of these recordings (and their case) for a recipient: recorded and
    audited by the chain of custody (`custody.services.export_record`) once the recordings are
    locked and known to be available, all of one borough."""
    export_terms_check(recipient=recipient, purpose=purpose, count=len(recordings))
    ids = [r.pk for r in recordings]
    # Lock the rows: a recording deleted by the sweep meanwhile cannot be exported.
    live = list(
        Recording.objects.select_for_update()
        .filter(pk__in=ids, state=RecordingState.AVAILABLE)
        .order_by("pk")
    )
    if len(live) != len(set(ids)):
        raise ExportError("a chosen recording is no longer available (deleted by retention?)")
    boroughs = {r.borough_id for r in live}
    if case is not None:
        boroughs.add(case.borough_id)
    if len(boroughs) != 1:
        raise ExportError("an export holds recordings of one borough; make one per borough")
    return export_record(
        actor=actor,
        recordings=live,
        borough_id=boroughs.pop(),
        case=case,
        recipient=recipient,
        purpose=purpose,
    )
