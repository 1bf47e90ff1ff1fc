"""Writes of public access requests. Every step is recorded on the request (RequestStep) and, where
it touches footage, in the audit log. E-mail is sent after commit and never inside a transaction:
a failing mail server loses nothing (the request is saved first; unsent verification mails are
retried by beat)."""

from __future__ import annotations

import hashlib
import logging
import secrets
import uuid
from collections.abc import Iterator
from datetime import datetime, timedelta

from django.conf import settings
from django.core.mail import EmailMultiAlternatives, send_mail
from django.db import IntegrityError, transaction
from django.template.loader import render_to_string
from django.utils import timezone

from blobstore import blob_store
from custody.services import audit_record, audit_record_many
from evidence.crypto import SegmentCipher, new_data_key, open_blob, unwrap_data_key, wrap_data_key
from evidence.media import plaintext_range
from evidence.models import Recording, RecordingState
from evidence.redaction import derived_chunks, redaction_check
from requests_portal import tasks  # the module: tasks.py calls services back
from requests_portal.deadlines import foi_due, london_date, right_of_access_due
from requests_portal.models import (
    AccessRequest,
    Decision,
    IdentityDocument,
    RedactionJob,
    RedactionJobStatus,
    ReleaseLink,
    RequestFootage,
    RequestKind,
    RequestStatus,
    RequestStep,
)
from requests_portal.selectors import ReleaseLinkUnusable, release_contents, release_link_get
from retention.models import HoldSource
from retention.services import RecordingGone, hold_place, holds_lift

log = logging.getLogger(__name__)

ID_TYPES = {"image/jpeg": b"\xff\xd8\xff", "image/png": b"\x89PNG", "application/pdf": b"%PDF"}
ID_MAX_BYTES = 10 * 1024 * 1024
# Identity evidence is sealed in segments of this size, so a download holds one in memory.
ID_SEGMENT_SIZE = 256 * 1024


class RequestError(Exception):
    """A step that cannot be taken, with a message for the person who asked."""


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _step(
    req: AccessRequest, title: str, *, note: str = "", public: bool = True, actor=None
) -> None:
    label = actor.get_username() if getattr(actor, "pk", None) else (actor or "")
    RequestStep.objects.create(
        request=req, at=timezone.now(), title=title, note=note, public=public, actor=label
    )


def _mail(req: AccessRequest, template: str, context: dict) -> bool:
    """Send one e-mail (text and HTML) to the requester; False if the mail server failed."""
    context = {"req": req, "site": settings.SITE_URL, **context}
    subject = render_to_string(f"emails/{template}_subject.txt", context).strip()
    message = EmailMultiAlternatives(
        subject, render_to_string(f"emails/{template}.txt", context), None, [req.email]
    )
    message.attach_alternative(render_to_string(f"emails/{template}.html", context), "text/html")
    try:
        message.send()
    except Exception:  # noqa: BLE001 - any mail failure: the request is kept, the send retried
        log.exception("mail %s for %s failed", template, req.reference)
        return False
    return True


def _mail_after_commit(req: AccessRequest, template: str, context: dict) -> None:
    transaction.on_commit(lambda: _mail(req, template, context))


def _reference(kind: str, now: datetime) -> str:
    prefix = f"{'SAR' if kind == RequestKind.RIGHT_OF_ACCESS else 'FOI'}-{now.year}-"
    last = (
        AccessRequest.objects.filter(reference__startswith=prefix)
        .order_by("-reference")
        .values_list("reference", flat=True)
        .first()
    )
    return f"{prefix}{(int(last.rsplit('-', 1)[1]) if last else 0) + 1:06d}"


def request_submit(*, data: dict, ip: str | None) -> AccessRequest:
    """Save a request (unverified) and send the verification e-mail after commit."""
    now = timezone.now()
    for _ in range(5):  # two submissions at once may pick the same number: take the next
        try:
            with transaction.atomic():
                req = AccessRequest.objects.create(
                    reference=_reference(data["kind"], now), submitted_ip=ip, **data
                )
                _step(req, "Request received online; waiting for you to confirm your e-mail")
            break
        except IntegrityError:
            continue
    else:  # pragma: no cover - five collisions in a row
        raise RequestError("the system is busy: please send the form again")
    verification_send(req)
    return req


def verification_send(req: AccessRequest) -> bool:
    """A fresh verification link (the last one stops working), mailed now. The link's secret is
    never stored, only its hash; a failed mail leaves `verification_mailed_at` empty for beat."""
    token = secrets.token_urlsafe(32)
    AccessRequest.objects.filter(pk=req.pk).update(
        verify_token_hash=_hash(token),
        verify_expires_at=timezone.now() + timedelta(hours=settings.BWV_REQUEST_VERIFY_HOURS),
    )
    sent = _mail(req, "verify", {"link": f"{settings.SITE_URL}/requests/verify/{token}/"})
    if sent:
        AccessRequest.objects.filter(pk=req.pk).update(verification_mailed_at=timezone.now())
    return sent


def verification_retry_unsent() -> int:
    """Beat: send the verification mails that failed (the mail server was down)."""
    pending = AccessRequest.objects.filter(
        status=RequestStatus.UNVERIFIED,
        verification_mailed_at__isnull=True,
        created_at__gte=timezone.now() - timedelta(days=7),
    )
    return sum(1 for req in pending[:200] if verification_send(req))


def _due(req: AccessRequest, start: datetime):
    received = london_date(start)
    return foi_due(received) if req.kind == RequestKind.FOI else right_of_access_due(received)


def candidate_recordings(req: AccessRequest):
    window = timedelta(hours=settings.BWV_REQUEST_WINDOW_HOURS)
    return Recording.objects.filter(
        borough=req.borough,
        started_at__gte=req.incident_at - window,
        started_at__lte=req.incident_at + window,
    )


def request_verify(*, token: str) -> tuple[str, AccessRequest | None]:
    """Confirm the e-mail address. Returns ("verified" | "already" | "expired" | "unknown", req).
    On first verification: the clock starts, candidate footage is held, the status link is sent."""
    req = AccessRequest.objects.filter(verify_token_hash=_hash(token)).first()
    if req is None:
        return "unknown", None
    if req.status != RequestStatus.UNVERIFIED:
        return "already", req
    now = timezone.now()
    if req.verify_expires_at and req.verify_expires_at < now:
        return "expired", req
    status_token = secrets.token_urlsafe(32)
    with transaction.atomic():
        locked = AccessRequest.objects.select_for_update().get(pk=req.pk)
        if locked.status != RequestStatus.UNVERIFIED:
            return "already", locked
        locked.status, locked.received_at, locked.clock_started_at = (
            RequestStatus.RECEIVED,
            now,
            now,
        )
        locked.due_at = _due(locked, now)
        locked.status_token_hash = _hash(status_token)
        locked.save()
        held = 0
        for recording in candidate_recordings(locked).filter(state=RecordingState.AVAILABLE):
            try:
                hold_place(
                    recording=recording,
                    source=HoldSource.ACCESS_REQUEST,
                    actor=f"request:{locked.reference}",
                    source_ref=locked.reference,
                    reason=f"preserved for {locked.reference} until it is closed",
                )
                held += 1
            except RecordingGone:
                continue
        _step(
            locked,
            "E-mail confirmed: your request is received",
            note=f"We must answer by {locked.due_at:%d %B %Y}.",
        )
        _step(locked, f"{held} recording(s) preserved while the request is open", public=False)
        audit_record(
            actor=f"request:{locked.reference}",
            action="request.verified",
            obj=locked,
            detail={"held": held, "due": locked.due_at.isoformat()},
        )
        _mail_after_commit(
            locked,
            "status",
            {
                "link": f"{settings.SITE_URL}/requests/status/{status_token}/",
                "message": f"Your request {locked.reference} is received. We must answer by "
                f"{locked.due_at:%d %B %Y}. Follow it here:",
            },
        )
    return "verified", locked


def request_for_status(*, token: str) -> AccessRequest | None:
    return AccessRequest.objects.filter(status_token_hash=_hash(token)).first() if token else None


def _notify(req: AccessRequest, message: str) -> None:
    """Tell the requester a step happened; the status link itself is not re-sent (never stored)."""
    _mail_after_commit(req, "status", {"message": message, "link": ""})


def _require(req: AccessRequest, *statuses: str) -> None:
    if req.status not in statuses:
        raise RequestError(
            f"{req.reference} is {req.get_status_display().lower()}: not possible now"
        )


@transaction.atomic
def request_ask_identity(*, req: AccessRequest, actor, note: str) -> None:
    _require(req, RequestStatus.RECEIVED, RequestStatus.IN_PROGRESS)
    if req.kind != RequestKind.RIGHT_OF_ACCESS:
        raise RequestError("identity evidence is asked for right of access requests only")
    req.status, req.id_requested_at, req.due_at = RequestStatus.AWAITING_ID, timezone.now(), None
    req.save(update_fields=["status", "id_requested_at", "due_at"])
    _step(req, "We need proof of your identity", note=note, actor=actor)
    _notify(
        req,
        "We need proof of your identity before we can go on: upload it on your status "
        f"page (a photo or scan, JPEG, PNG or PDF, up to 10 MB). {note}",
    )


def identity_upload(*, req: AccessRequest, upload) -> IdentityDocument:
    """Store identity evidence sealed in segments; restart the clock from its receipt."""
    _require(req, RequestStatus.AWAITING_ID)
    if upload.size > ID_MAX_BYTES:
        raise RequestError("the file is larger than 10 MB")
    data = upload.read(ID_MAX_BYTES + 1)
    kind = next((t for t, magic in ID_TYPES.items() if data.startswith(magic)), None)
    if kind is None:
        raise RequestError("send a photo or scan as JPEG, PNG or PDF")
    doc_id = uuid.uuid4()
    key = new_data_key()
    kek_id, wrapped = wrap_data_key(key, object_id=doc_id)
    storage_key = f"identity/{doc_id}"
    cipher = SegmentCipher(key=key, object_id=doc_id, segment_size=ID_SEGMENT_SIZE)
    blob_store().put(storage_key, cipher.seal_all(data))
    now = timezone.now()
    with transaction.atomic():
        doc = IdentityDocument.objects.create(
            id=doc_id,
            request=req,
            storage_key=storage_key,
            kek_id=kek_id,
            wrapped_key=wrapped,
            content_type=kind,
            size_bytes=len(data),
            segment_size=ID_SEGMENT_SIZE,
            uploaded_at=now,
        )
        req.status, req.id_received_at, req.clock_started_at = RequestStatus.IN_PROGRESS, now, now
        req.due_at = _due(req, now)
        req.save(update_fields=["status", "id_received_at", "clock_started_at", "due_at"])
        _step(req, "Proof of identity received", note=f"We must answer by {req.due_at:%d %B %Y}.")
    return doc


def identity_document_plaintext(document: IdentityDocument) -> Iterator[bytes]:
    """The document's bytes, decrypted a segment at a time as they are read; an altered stored
    object raises `evidence.crypto.TamperedError` before any of its bytes are returned."""
    if document.segment_size:
        return plaintext_range(document, 0, document.size_bytes)
    # Sealed in one piece before documents were segmented: at most ID_MAX_BYTES, opened whole.
    key = unwrap_data_key(document.wrapped_key, kek_id=document.kek_id, object_id=document.id)
    sealed = blob_store().get(document.storage_key)
    return iter([open_blob(key, object_id=document.id, purpose="identity", sealed=sealed)])


@transaction.atomic
def identity_document_consult(*, document: IdentityDocument, actor) -> None:
    """Record that a disclosure officer opened a requester's identity evidence, and why
    (DPA 2018 s.62 "consultation"): in the audit log and in the request's internal history."""
    req = document.request
    audit_record(
        actor=actor,
        action="identity_document.viewed",
        obj=document,
        borough=req.borough,
        justification=f"checking the requester's identity for {req.reference}",
        detail={
            "request": req.reference,
            "document": str(document.pk),
            "content_type": document.content_type,
            "size": document.size_bytes,
        },
    )
    _step(req, "Proof of identity opened", note=document.kind_label, actor=actor, public=False)


def identity_checked(*, req: AccessRequest, actor, accepted: bool, note: str = "") -> None:
    """Record the check and delete the evidence at once (storage object and its key)."""
    docs = list(req.documents.filter(deleted_at__isnull=True))
    failed = blob_store().delete_many([d.storage_key for d in docs])
    with transaction.atomic():
        now = timezone.now()
        for d in docs:
            if d.storage_key not in failed:
                IdentityDocument.objects.filter(pk=d.pk).update(deleted_at=now, wrapped_key=None)
        req.id_checked_at = now
        req.save(update_fields=["id_checked_at"])
        _step(
            req,
            "Proof of identity checked and deleted"
            if accepted
            else "Proof of identity not accepted and deleted",
            note=note,
            actor=actor,
        )
        if not accepted:
            req.status = RequestStatus.AWAITING_ID
            req.save(update_fields=["status"])
            _notify(req, f"We could not accept the proof of identity you sent: {note}")


@transaction.atomic
def footage_attach(*, req: AccessRequest, recording: Recording, actor) -> RequestFootage:
    _require(req, RequestStatus.RECEIVED, RequestStatus.IN_PROGRESS)
    if not candidate_recordings(req).filter(pk=recording.pk).exists():
        raise RequestError("that recording is not from this incident's borough and time")
    footage, created = RequestFootage.objects.get_or_create(
        request=req,
        recording=recording,
        defaults={"attached_by": actor, "attached_at": timezone.now()},
    )
    if req.status == RequestStatus.RECEIVED:
        req.status = RequestStatus.IN_PROGRESS
        req.save(update_fields=["status"])
    if created:
        audit_record(
            actor=actor,
            action="recording.attached_to_request",
            obj=recording,
            justification=req.reference,
            detail={"request": req.reference},
        )
    return footage


@transaction.atomic
def footage_redact(
    *, footage: RequestFootage, boxes: list, mutes: list, actor, reason: str = ""
) -> RedactionJob:
    """Ask for a redacted copy: the specification is checked now (a bad one is refused here, with
    its message, and nothing is queued); the copy is made by a worker once this commits
    (`redaction_jobs.redaction_job_run`), and the job shows how far it is. Audited: who asked, and
    why."""
    _require(footage.request, RequestStatus.IN_PROGRESS)
    recording = footage.recording
    parsed, ranges = redaction_check(recording=recording, boxes=boxes, mutes=mutes)
    purpose = f"redaction for {footage.request.reference}" + (
        f": {reason.strip()}" if reason.strip() else ""
    )
    job = RedactionJob.objects.create(
        footage=footage,
        spec={"boxes": [b.as_dict() for b in parsed], "mutes": [list(r) for r in ranges]},
        requested_by=actor,
        requested_at=timezone.now(),
        purpose=purpose[:200],
    )
    audit_record(
        actor=actor,
        action="recording.redaction_requested",
        obj=recording,
        justification=job.purpose,
        detail={"job": str(job.pk), "request": footage.request.reference, **job.spec},
    )
    job_id = str(job.pk)
    transaction.on_commit(lambda: tasks.footage_redaction_task.delay(job_id))
    return job


@transaction.atomic
def request_decide(
    *, req: AccessRequest, actor, decision: str, reasons: str, exemptions: str = ""
) -> None:
    _require(req, RequestStatus.RECEIVED, RequestStatus.IN_PROGRESS)
    if decision not in Decision.values:
        raise RequestError("choose a decision")
    if not reasons.strip():
        raise RequestError("record the reasons for the decision")
    if decision == Decision.PARTIAL and not exemptions.strip():
        raise RequestError("a partial disclosure names the exemptions applied")
    if decision in (Decision.FULL, Decision.PARTIAL):
        footage = list(req.footage.all())
        if not footage:
            raise RequestError("attach the footage to disclose first")
        if decision == Decision.PARTIAL and any(f.derived_id is None for f in footage):
            raise RequestError("a partial disclosure releases redacted copies: redact each clip")
        if RedactionJob.objects.filter(
            footage__request=req,
            status__in=[RedactionJobStatus.QUEUED, RedactionJobStatus.RENDERING],
        ).exists():
            raise RequestError("a redacted copy is still being made: decide once it is ready")
    req.decision, req.decision_reasons, req.exemptions = (
        decision,
        reasons.strip(),
        exemptions.strip(),
    )
    req.decided_by, req.decided_at, req.status = (
        actor,
        timezone.now(),
        RequestStatus.AWAITING_APPROVAL,
    )
    req.save()
    _step(req, f"Decision: {Decision(decision).label}", note=reasons, actor=actor, public=False)
    audit_record(
        actor=actor,
        action="request.decided",
        obj=req,
        justification=reasons,
        detail={"decision": decision, "exemptions": exemptions},
    )


def request_approve(*, req: AccessRequest, actor) -> str | None:
    """A second person approves; disclosure is then released (a link is returned, shown to
    nobody but mailed to the requester) or the refusal is sent."""
    with transaction.atomic():
        req = AccessRequest.objects.select_for_update().get(pk=req.pk)
        _require(req, RequestStatus.AWAITING_APPROVAL)
        if req.decided_by_id == actor.pk:
            raise RequestError("a second person must approve: not the one who decided")
        now = timezone.now()
        req.approved_by, req.approved_at = actor, now
        _step(req, "Decision approved", actor=actor, public=False)
        audit_record(actor=actor, action="request.approved", obj=req)
        if req.decision in (Decision.REFUSE, Decision.NCND):
            req.status = RequestStatus.REFUSED
            req.save()
            _step(req, "Decision sent to you", note=Decision(req.decision).label)
            _notify(
                req,
                f"Decision on {req.reference}: {Decision(req.decision).label}. "
                f"Reasons: {req.decision_reasons}",
            )
            return None
        token = secrets.token_urlsafe(32)
        link = ReleaseLink.objects.create(
            request=req,
            token_hash=_hash(token),
            created_at=now,
            expires_at=now + timedelta(days=settings.BWV_RELEASE_LINK_DAYS),
        )
        req.status, req.released_at = RequestStatus.RELEASED, now
        req.save()
        url = f"{settings.SITE_URL}/requests/release/{token}/"
        _step(req, "Footage released to you", note=f"Download it by {link.expires_at:%d %B %Y}.")
        _mail_after_commit(
            req,
            "status",
            {
                "link": url,
                "message": f"Your footage for {req.reference} is ready. Download it before "
                f"{link.expires_at:%d %B %Y}:",
            },
        )
    return url


def release_download(*, token: str, ip: str) -> tuple[AccessRequest, list]:
    """The released files for a valid link, as (name, size, chunks()) to stream; each download
    is audited per recording."""
    try:
        link = release_link_get(token=token)
    except ReleaseLinkUnusable as exc:
        raise RequestError(str(exc)) from None
    req = link.request
    files = []
    for name, size, footage in release_contents(req):
        if footage.derived is not None:
            files.append((name, size, lambda d=footage.derived: derived_chunks(d)))
        else:
            r = footage.recording
            files.append((name, size, lambda r=r: plaintext_range(r, 0, r.size_bytes)))
    with transaction.atomic():
        ReleaseLink.objects.filter(pk=link.pk).update(downloads=link.downloads + 1)
        audit_record_many(
            actor=f"request:{req.reference}",
            action="recording.disclosed",
            entries=[
                {
                    "obj": f.recording,
                    "recipient": req.email,
                    "justification": req.reference,
                    "detail": {
                        "via": "release link",
                        "ip": ip,
                        "derived": str(f.derived_id) if f.derived_id else None,
                    },
                }
                for f in req.footage.select_related("recording")
            ],
        )
    return req, files


@transaction.atomic
def release_revoke(*, req: AccessRequest, actor, reason: str) -> None:
    if not reason.strip():
        raise RequestError("say why the link is revoked")
    req.releases.filter(revoked_at__isnull=True).update(revoked_at=timezone.now())
    _step(req, "Download link withdrawn", note=reason, actor=actor, public=False)
    audit_record(actor=actor, action="request.release_revoked", obj=req, justification=reason)


def request_close(*, req: AccessRequest, actor, reason: str) -> None:
    if not reason.strip():
        raise RequestError("say why the request is closed")
    with transaction.atomic():
        req = AccessRequest.objects.select_for_update().get(pk=req.pk)
        if req.status == RequestStatus.CLOSED:
            return
        now = timezone.now()
        req.status, req.closed_at = RequestStatus.CLOSED, now
        req.holds_release_at = now + timedelta(days=settings.BWV_REQUEST_HOLD_GRACE_DAYS)
        req.save()
        _step(req, "Request closed", note=reason, actor=actor)
        audit_record(actor=actor, action="request.closed", obj=req, justification=reason)
        _notify(req, f"Your request {req.reference} is now closed: {reason}")
    request_holds_release_due(now=timezone.now(), reference=req.reference)


def request_holds_release_due(*, now: datetime, reference: str = "") -> int:
    """Lift the preservation holds of closed requests whose grace has passed (beat, daily; at
    closing, for that one request when it has no grace)."""
    lifted = 0
    due = AccessRequest.objects.filter(
        status=RequestStatus.CLOSED, holds_lifted_at__isnull=True, holds_release_at__lte=now
    )
    if reference:
        due = due.filter(reference=reference)
    for req in due:
        with transaction.atomic():
            lifted += holds_lift(
                source=HoldSource.ACCESS_REQUEST,
                source_ref=req.reference,
                actor=f"request:{req.reference}",
                reason=f"{req.reference} closed; grace of "
                f"{settings.BWV_REQUEST_HOLD_GRACE_DAYS} days over",
            )
            AccessRequest.objects.filter(pk=req.pk).update(holds_lifted_at=now)
    return lifted


def disclosure_reminder_send(*, now: datetime) -> int:
    """Beat, daily: the open requests by due date, overdue first, to the disclosure team."""
    if not settings.BWV_DISCLOSURE_TEAM_EMAILS:
        return 0
    open_requests = list(
        AccessRequest.objects.exclude(
            status__in=[
                RequestStatus.UNVERIFIED,
                RequestStatus.CLOSED,
                RequestStatus.RELEASED,
                RequestStatus.REFUSED,
            ]
        )
        .exclude(due_at__isnull=True)
        .order_by("due_at")
    )
    if not open_requests:
        return 0
    today = london_date(now)
    lines = [
        f"{'OVERDUE ' if r.due_at < today else ''}{r.reference} due {r.due_at:%d %b %Y} "
        f"({r.get_status_display()}, {r.borough})"
        for r in open_requests
    ]
    send_mail(
        f"Access requests: {sum(r.due_at < today for r in open_requests)} overdue, "
        f"{len(open_requests)} open",
        "\n".join(lines),
        None,
        settings.BWV_DISCLOSURE_TEAM_EMAILS,
    )
    return len(open_requests)
