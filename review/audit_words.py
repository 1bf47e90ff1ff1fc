"""Audit events in words for people: who did what, to what, why, and for whom.

The chain stores codes ("recording.viewed", "dock:17e196ad05e8", "QA"); the pages say "Police
Sergeant Alex Smith (12345QA) viewed the recording: reviewing custody incident 1234567/26" and
"Dock 1, Harrow police station". The codes stay in the CSV, which is the evidential record. Names
are looked up in one query per kind of name, however many events a page shows.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.contrib.auth import get_user_model

from custody.models import AuditEvent
from devices.models import Borough, Dock

ACTION_WORDS = {
    "recording.ingested": "uploaded the recording",
    "recording.upload_started": "started uploading a recording",
    "recording.upload_duplicate": "uploaded a recording the server already had",
    "recording.upload_rejected": "had an upload refused",
    "recording.viewed": "viewed the recording",
    "recording.flagged": "flagged the recording",
    "recording.unflagged": "lifted a flag on the recording",
    "recording.bookmarked": "bookmarked a moment of the recording",
    "recording.exported": "exported the recording",
    "recording.shared": "shared the recording",
    "recording.disclosed": "disclosed the recording",
    "recording.redacted": "made a redacted copy of the recording",
    "recording.time_corrected": "corrected the recording's time",
    "recording.erased": "deleted the recording",
    "recording.object_legal_hold": "placed a legal hold on the stored recording",
    "recording.filmstrip_made": "made the recording's filmstrip (small frames for the timeline)",
    "recording.attached_to_request": "attached the recording to an access request",
    "hold.placed": "placed a hold on the recording",
    "hold.lifted": "lifted a hold on the recording",
    "case.created": "opened the case",
    "case.closed": "closed the case",
    "case.note": "added a note to the case",
    "case.recording_added": "added a recording to the case",
    "case.recording_removed": "took a recording off the case",
    "export.share_revoked": "withdrew a shared link",
    "export.share_refused": "refused a shared link",
    "camera.issued": "issued the camera",
    "camera.returned": "took the camera back",
    "camera.checked_out": "checked the camera out",
    "camera.checked_in": "checked the camera in",
    "camera.lost": "reported the camera lost",
    "camera.faulty": "reported the camera faulty",
    "camera.retired": "retired the camera",
    "camera.in_stock": "put the camera back in stock",
    "cameras.imported": "imported cameras",
    "officers.imported": "imported officers",
    "unit.created": "created a unit",
    "dock.registered": "registered the dock",
    "dock.revoked": "revoked the dock",
    "dock.key_rotated": "gave the dock a new key",
    "access.granted": "gave access to another borough",
    "access.revoked": "withdrew access to another borough",
    "auth.signed_in": "signed in",
    "auth.sign_in_failed": "failed to sign in",
    "auth.second_factor_reset": "reset a second factor",
    "auth.totp_enrolled": "set up an authenticator app",
    "auth.backup_code_used": "signed in with a backup code",
    "auth.backup_codes_issued": "was given backup codes",
    "auth.api_token_created": "created an API token",
    "auth.api_token_revoked": "revoked an API token",
    "request.verified": "verified the access request's e-mail address",
    "request.decided": "decided the access request",
    "request.approved": "approved the access request",
    "request.closed": "closed the access request",
    "request.release_revoked": "withdrew the access request's download",
    "identity_document.viewed": "viewed an identity document",
    "sweep.guard_stopped": "was stopped by the blast-radius guard",
    "sweep.guard_overridden": "overrode the blast-radius guard",
    "sweep.storage_failed": "stopped: storage failed",
    "sweep.abandoned": "abandoned a run",
    "audit.verified": "verified the audit chain",
}

# Actors that are not people or docks, by the label the chain gives them.
SYSTEM_ACTORS = {
    "system": "The system",
    "system:retention-sweep": "The nightly retention sweep",
    "system:audit-verify": "The audit chain's verification",
    "system:object-lock": "The media store's object lock",
    "system:filmstrip": "The system",
}


@dataclass(frozen=True)
class AuditLine:
    event: AuditEvent
    who: str
    what: str  # the action in words, with the reason after a colon when one was given
    borough: str


def action_words(action: str) -> str:
    return ACTION_WORDS.get(action) or action.replace(".", " ").replace("_", " ")


def _who(label: str, user_id, users: dict, docks: dict) -> str:
    if user_id is not None and user_id in users:
        return users[user_id]
    if label.startswith("dock:") and label[5:] in docks:
        return docks[label[5:]]
    if label in SYSTEM_ACTORS:
        return SYSTEM_ACTORS[label]
    if label.startswith("request:"):
        return f"The requester of {label[8:]}"
    if label.startswith("share:"):
        return "The recipient of a shared link"
    return label


def _person(user) -> str:
    officer = getattr(user, "officer", None)
    if officer is not None:
        return officer.display_name
    return user.get_full_name() or user.get_username()


def audit_lines(events) -> list[AuditLine]:
    """The events, each with its actor, action and borough in words."""
    events = list(events)
    datas = [e.data for e in events]
    user_ids = {d.get("actor_id") for d in datas if d.get("actor_id") is not None}
    dock_keys = {d["actor"][5:] for d in datas if str(d.get("actor", "")).startswith("dock:")}
    codes = {d.get("borough") for d in datas if d.get("borough")}
    users = {
        u.pk: _person(u)
        for u in get_user_model().objects.filter(pk__in=user_ids).select_related("officer")
    }
    docks = {
        d.key_id: f"{d.name}, {d.station}"
        for d in Dock.objects.filter(key_id__in=dock_keys).only("key_id", "name", "station")
    }
    boroughs = dict(Borough.objects.filter(code__in=codes).values_list("code", "name"))
    lines = []
    for event, d in zip(events, datas, strict=True):
        what = action_words(d["action"])
        if d.get("justification"):
            what = f"{what}: {d['justification']}"
        lines.append(
            AuditLine(
                event=event,
                who=_who(str(d.get("actor", "")), d.get("actor_id"), users, docks),
                what=what,
                borough=boroughs.get(d.get("borough"), d.get("borough") or ""),
            )
        )
    return lines
