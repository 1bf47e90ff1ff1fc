"""Reads of the custody app for pages: what the last verification of the audit chain found."""

from __future__ import annotations

from custody.models import AuditEvent

# The action `manage.py audit_verify` records when it has walked the chain.
VERIFIED_ACTION = "audit.verified"


def last_audit_verification() -> AuditEvent | None:
    """The outcome `manage.py audit_verify` last recorded in the chain itself, or None if it has
    never run. Only system admins are shown it: it says nothing of any borough's footage."""
    return AuditEvent.objects.filter(action=VERIFIED_ACTION).order_by("-seq").first()
