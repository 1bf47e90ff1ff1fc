"""Reads of the retention app."""

from __future__ import annotations

from django.conf import settings

from retention.models import Hold, RetentionPolicy


def default_policy() -> RetentionPolicy | None:
    return RetentionPolicy.objects.filter(is_default=True).first()


def default_retention_days() -> int:
    policy = default_policy()
    return policy.days if policy else settings.BWV_RETENTION_DAYS


def recording_is_held(*, recording_id) -> bool:
    return Hold.objects.filter(recording_id=recording_id, active=True).exists()
