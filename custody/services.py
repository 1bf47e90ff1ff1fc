"""Writes of the chain of custody: audit events, export records and share links.

Every app writes its audit events through `audit_record` here; this app imports none of them.
What it needs of their objects is a small protocol, read by attribute, never by type:

- an actor is None (the system itself), a label such as "system:retention-sweep", a user
  (its `pk` and `get_username()`), or anything else with an `audit_label` (e.g. a dock's
  "dock:<key id>") and optionally an `audit_id`;
- an object has a `pk`, optionally an `audit_type` (else its model's "app.model" label; models that
  moved between apps keep their old name this way, so the log's words never change with the code)
  and optionally a `borough` with a `code`.
"""

from __future__ import annotations

import hashlib
import secrets
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db import transaction
from django.http import Http404
from django.utils import timezone

from custody.audit import audit_append
from custody.models import AuditEvent, Export, ShareLink


def _actor_fields(actor: Any) -> tuple[int | None, str]:
    if actor is None:
        return None, "system"
    if isinstance(actor, str):
        return None, actor
    label = getattr(actor, "audit_label", None)
    if label is not None:
        return getattr(actor, "audit_id", None), label
    return actor.pk, actor.get_username()


def _object_fields(obj: Any, object_type: str, object_id: str, borough: Any):
    if obj is not None:
        object_type = object_type or getattr(obj, "audit_type", None) or obj._meta.label_lower
        object_id = object_id or str(obj.pk)
        if borough is None:
            borough = getattr(obj, "borough", None)
    if not object_type:
        raise ValueError("an audit event needs an object")
    return object_type, str(object_id), (borough.code if borough is not None else "")


def audit_record(
    *,
    actor: Any,
    action: str,
    obj: Any = None,
    object_type: str = "",
    object_id: str = "",
    borough: Any = None,
    justification: str = "",
    recipient: str = "",
    detail: dict | None = None,
) -> AuditEvent:
    """Append one event to the audit log's hash chain. The only way events are written.

    `actor` is a user, a dock, a label such as "system:sweep", or None for the system itself
    (see the module's protocol).
    """
    if not action:
        raise ValueError("an audit event needs an action")
    actor_id, label = _actor_fields(actor)
    object_type, object_id, code = _object_fields(obj, object_type, object_id, borough)
    entry = {
        "actor": label,
        "actor_id": actor_id,
        "action": action,
        "object_type": object_type,
        "object_id": object_id,
        "borough": code,
        "justification": justification,
        "recipient": recipient,
        "detail": detail or {},
    }
    return audit_append([entry])[0]


def audit_record_many(*, actor: Any, action: str, entries: list[dict]) -> list[AuditEvent]:
    """Append many events of one action by one actor (the sweep's erasures) in one statement.

    Each entry gives `obj` and optionally `justification`, `recipient` and `detail`.
    """
    actor_id, label = _actor_fields(actor)
    rows = []
    for e in entries:
        object_type, object_id, code = _object_fields(e["obj"], "", "", None)
        rows.append(
            {
                "actor": label,
                "actor_id": actor_id,
                "action": action,
                "object_type": object_type,
                "object_id": object_id,
                "borough": code,
                "justification": e.get("justification", ""),
                "recipient": e.get("recipient", ""),
                "detail": e.get("detail", {}),
            }
        )
    return audit_append(rows)


class ExportError(Exception):
    """An export or share that cannot be made, with a message for the person who asked."""


MAX_EXPORT_RECORDINGS = 500


def export_terms_check(*, recipient: str, purpose: str, count: int) -> tuple[str, str]:
    """The recipient and purpose an export needs, tidied, and a sane number of recordings."""
    recipient, purpose = recipient.strip(), purpose.strip()
    if not recipient:
        raise ExportError("say who the export is for (e.g. CPS London North, lawyer's name)")
    if not purpose:
        raise ExportError("say why the footage is being exported (e.g. the charging file)")
    if len(recipient) > 200:
        raise ExportError("the recipient is longer than 200 characters")
    if not count:
        raise ExportError("choose at least one recording")
    if count > MAX_EXPORT_RECORDINGS:
        raise ExportError(f"an export holds at most {MAX_EXPORT_RECORDINGS} recordings")
    return recipient, purpose


@transaction.atomic
def export_record(
    *, actor, recordings: list, borough_id: int, case=None, recipient: str, purpose: str
) -> Export:
    """Record a court/CPS export of these recordings for a recipient. Audits one disclosure
    decision per recording ("recording.exported", with the recipient and purpose); each download
    of the bundle is audited again when it happens.

    The caller has locked the recordings and checked that they are available and of one borough
    (`review.services.export_create`)."""
    recipient, purpose = export_terms_check(
        recipient=recipient, purpose=purpose, count=len(recordings)
    )
    export = Export.objects.create(
        borough_id=borough_id,
        case=case,
        recipient=recipient,
        purpose=purpose,
        created_by=actor,
        created_at=timezone.now(),
    )
    export.recordings.set(recordings)
    audit_record_many(
        actor=actor,
        action="recording.exported",
        entries=[
            {
                "obj": r,
                "recipient": recipient,
                "justification": purpose,
                "detail": {"export": str(export.id), "case": case.pk if case else None},
            }
            for r in recordings
        ],
    )
    return export


def export_disclose(*, export: Export, actor, via: str, recipient: str = "", detail=None) -> None:
    """Audit one delivery of a bundle (a download or a share-link access): one event per
    recording, with the recipient."""
    recordings = list(export.recordings.select_related("borough"))
    audit_record_many(
        actor=actor,
        action="recording.disclosed",
        entries=[
            {
                "obj": r,
                "recipient": recipient or export.recipient,
                "justification": export.purpose,
                "detail": {"export": str(export.id), "via": via, **(detail or {})},
            }
            for r in recordings
        ],
    )


def share_play(*, link: ShareLink, recording, ip: str) -> None:
    """Audit a recording of a shared export played in the browser: a disclosure to the link's
    recipient, like a download, but of that recording only."""
    audit_record(
        actor=f"share:{link.id}",
        action="recording.disclosed",
        obj=recording,
        recipient=link.recipient_email,
        justification=link.export.purpose,
        detail={"export": str(link.export_id), "via": "share link, played", "ip": ip},
    )


def _share_token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


@transaction.atomic
def share_create(
    *, export: Export, actor, recipient_email: str, days: int
) -> tuple[ShareLink, str]:
    """An expiring link to the export for a prosecutor; returns the link and its secret, which is
    shown once and never stored."""
    recipient_email = recipient_email.strip()
    try:
        validate_email(recipient_email)
    except ValidationError:
        raise ExportError("give the prosecutor's e-mail address") from None
    if not 1 <= days <= settings.BWV_SHARE_MAX_DAYS:
        raise ExportError(f"a link lasts between 1 and {settings.BWV_SHARE_MAX_DAYS} days")
    token = secrets.token_urlsafe(32)
    now = timezone.now()
    link = ShareLink.objects.create(
        export=export,
        token_hash=_share_token_hash(token),
        recipient_email=recipient_email,
        created_by=actor,
        created_at=now,
        expires_at=now + timedelta(days=days),
    )
    audit_record_many(
        actor=actor,
        action="recording.shared",
        entries=[
            {
                "obj": r,
                "recipient": recipient_email,
                "justification": export.purpose,
                "detail": {
                    "export": str(export.id),
                    "share": str(link.id),
                    "expires_at": link.expires_at.isoformat(),
                },
            }
            for r in export.recordings.select_related("borough")
        ],
    )
    return link, token


@transaction.atomic
def share_revoke(*, link: ShareLink, actor, reason: str) -> ShareLink:
    if not reason.strip():
        raise ExportError("say why the link is being revoked")
    link = ShareLink.objects.select_for_update().get(pk=link.pk)
    if link.revoked_at is not None:
        return link
    link.revoked_at, link.revoked_by, link.revoke_reason = timezone.now(), actor, reason.strip()
    link.save(update_fields=["revoked_at", "revoked_by", "revoke_reason"])
    audit_record(
        actor=actor,
        action="export.share_revoked",
        obj=link.export,
        justification=reason.strip(),
        recipient=link.recipient_email,
        detail={"share": str(link.id)},
    )
    return link


class ShareUnavailable(Exception):
    """A share link that has expired or been revoked (the link itself was genuine)."""


def share_access(*, token: str, ip: str, download: bool) -> ShareLink:
    """Resolve a share link's secret. Unknown secrets are Http404; expired or revoked links raise
    ShareUnavailable and are audited as refused. A download is audited per recording."""
    link, refused = _share_access(token=token, ip=ip, download=download)
    if refused:
        raise ShareUnavailable(refused)  # after the commit: the refusal stays in the audit log
    return link


@transaction.atomic
def _share_access(*, token: str, ip: str, download: bool) -> tuple[ShareLink, str]:
    link = (
        ShareLink.objects.select_for_update(of=("self",))
        .select_related("export", "export__case", "export__created_by")
        .filter(token_hash=_share_token_hash(token))
        .first()
    )
    if link is None:
        raise Http404
    now = timezone.now()
    if not link.usable(now):
        audit_record(
            actor=f"share:{link.id}",
            action="export.share_refused",
            obj=link.export,
            recipient=link.recipient_email,
            detail={
                "share": str(link.id),
                "ip": ip,
                "why": "revoked" if link.revoked_at else "expired",
            },
        )
        return link, "revoked" if link.revoked_at else "expired"
    if download:
        link.access_count += 1
        link.last_access_at = now
        link.save(update_fields=["access_count", "last_access_at"])
        export_disclose(
            export=link.export,
            actor=f"share:{link.id}",
            via="share link",
            recipient=link.recipient_email,
            detail={"share": str(link.id), "ip": ip},
        )
    return link, ""
