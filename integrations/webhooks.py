"""Outbound webhooks: the force's systems are told when footage is flagged, added to a case,
exported to the prosecutor or deleted.

The events are read from the audit log, which every one of those changes already writes in its
own transaction (so no app below needs to know that webhooks exist, and nothing is told that did
not happen): `outbox_collect` turns the events past a cursor into one delivery per subscriber,
in the same transaction as it moves the cursor. Then, per subscriber and ordering key (the case,
else the recording), `stream_deliver` sends the oldest undelivered one and the next only after
it has been answered 2xx.

Guarantees:
- every event reaches every subscriber it is meant for, in order per case: a receiver that is down
  gets everything once it is back, oldest first (retries back off from BWV_WEBHOOK_RETRY_SECONDS,
  doubling, up to BWV_WEBHOOK_RETRY_MAX_SECONDS; after BWV_WEBHOOK_GIVE_UP_HOURS of failures the
  delivery is set aside as failed and its stream waits until a system admin replays it);
- each delivery is signed with HMAC-SHA256 under the subscriber's secret, over the timestamp and
  the exact body (`Bwv-Signature: t=<unix time>,v1=<hex>`), and carries an idempotency key (the
  delivery's id, the same in every attempt and replay) so a receiver can drop repeats;
- one sender at a time per delivery: a claim with a lease, taken by an update that only one
  worker can win; no HTTP call is made inside a database transaction.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import time
import uuid
from datetime import timedelta

import requests
from django.conf import settings
from django.db import transaction
from django.db.models import Max, Min, Q
from django.utils import timezone

from custody.models import AuditEvent
from custody.services import audit_record
from evidence.crypto import KeyDestroyed, TamperedError
from evidence.models import Recording
from integrations.models import (
    DeliveryState,
    WebhookAttempt,
    WebhookCursor,
    WebhookDelivery,
    WebhookSubscriber,
)

log = logging.getLogger(__name__)

# Audit actions and the events they are told as.
EVENTS = {
    "recording.flagged": "footage.flagged",
    "case.recording_added": "footage.added_to_case",
    "recording.exported": "footage.exported",
    "recording.erased": "footage.deleted",
}
EVENT_TYPES = sorted(EVENTS.values())
BATCH = 1000


def audit_head_seq() -> int:
    return AuditEvent.objects.aggregate(m=Max("seq"))["m"] or 0


def _cursor() -> WebhookCursor:
    """The outbox's cursor, locked. Made where the first subscriber started (its `from_seq`), so
    the events between its registration and the first collection are not skipped; with no
    subscriber, at the audit log's head: history before webhooks existed is not sent."""
    cursor = WebhookCursor.objects.select_for_update().filter(pk=1).first()
    if cursor is None:
        start = WebhookSubscriber.objects.aggregate(m=Min("from_seq"))["m"]
        WebhookCursor.objects.get_or_create(
            pk=1, defaults={"last_seq": audit_head_seq() if start is None else start}
        )
        cursor = WebhookCursor.objects.select_for_update().get(pk=1)
    return cursor


def _payload(event: AuditEvent, event_type: str, recording: Recording | None) -> dict:
    """What every subscriber is sent of an event (each delivery adds its own id)."""
    detail = event.detail
    payload = {
        "event": event_type,
        "sequence": event.seq,
        "occurred_at": event.at.isoformat(),
        "borough": event.borough_code,
        "actor": event.actor_label,
        "recording": {"id": event.object_id},
    }
    if recording is not None:
        payload["recording"].update(
            {
                "sha256": recording.sha256,
                "started_at": recording.started_at.isoformat(),
                "ended_at": recording.ended_at.isoformat(),
                "camera": recording.camera.serial,
                "officer": recording.officer.collar_number if recording.officer else None,
            }
        )
    if detail.get("case"):
        payload["case"] = {"id": detail["case"], "crime_reference": detail.get("crime_reference")}
    if event_type == "footage.flagged":
        payload["flag"] = {
            "kind": detail.get("kind"),
            "crime_reference": detail.get("crime_reference") or None,
            "reason": event.justification,
        }
    if event_type == "footage.exported":
        payload["export"] = {
            "id": detail.get("export"),
            "recipient": event.recipient,
            "purpose": event.justification,
        }
    if event_type == "footage.deleted":
        payload["deletion"] = {
            "certificate_sha256": detail.get("certificate"),
            "reason": event.justification,
        }
    return payload


def _ordering_key(event: AuditEvent) -> str:
    case = event.detail.get("case")
    return f"case:{case}" if case else f"recording:{event.object_id}"


def _wants(subscriber: WebhookSubscriber, event: AuditEvent, event_type: str) -> bool:
    if event.seq <= subscriber.from_seq or event_type not in subscriber.events:
        return False
    return subscriber.all_boroughs or event.borough_code in subscriber.borough_codes


@transaction.atomic
def outbox_collect(*, limit: int = BATCH) -> set[tuple[int, str]]:
    """Turn the audit events past the cursor into deliveries; returns the streams that got new
    ones. The cursor moves in the same transaction, so an event is collected exactly once."""
    cursor = _cursor()
    events = list(
        AuditEvent.objects.filter(seq__gt=cursor.last_seq, action__in=list(EVENTS)).order_by("seq")[
            :limit
        ]
    )
    if not events:
        return set()
    subscribers = list(WebhookSubscriber.objects.filter(active=True).prefetch_related("boroughs"))
    for subscriber in subscribers:
        subscriber.borough_codes = {b.code for b in subscriber.boroughs.all()}
    # The events' recordings in one query, and each event's payload built once for all subscribers.
    recordings = {
        str(pk): recording
        for pk, recording in Recording.objects.select_related("officer", "camera")
        .in_bulk({event.object_id for event in events})
        .items()
    }
    now = timezone.now()
    deliveries, streams = [], set()
    for event in events:
        event_type = EVENTS[event.action]
        payload = None
        for subscriber in subscribers:
            if not _wants(subscriber, event, event_type):
                continue
            delivery_id = uuid.uuid4()
            key = _ordering_key(event)
            if payload is None:
                payload = _payload(event, event_type, recordings.get(event.object_id))
            deliveries.append(
                WebhookDelivery(
                    id=delivery_id,
                    subscriber=subscriber,
                    event_seq=event.seq,
                    event=event_type,
                    ordering_key=key,
                    payload={"id": str(delivery_id), **payload},
                    next_attempt_at=now,
                    created_at=now,
                )
            )
            streams.add((subscriber.pk, key))
    WebhookDelivery.objects.bulk_create(deliveries, ignore_conflicts=True)
    WebhookCursor.objects.filter(pk=cursor.pk).update(last_seq=events[-1].seq)
    return streams


def signature(secret: str, timestamp: int, body: bytes) -> str:
    """`Bwv-Signature`'s v1: HMAC-SHA256 of "<timestamp>." followed by the body, in hex."""
    message = f"{timestamp}.".encode() + body
    return hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


def _backoff(attempts: int) -> float:
    first = settings.BWV_WEBHOOK_RETRY_SECONDS
    return min(first * 2 ** max(attempts - 1, 0), settings.BWV_WEBHOOK_RETRY_MAX_SECONDS)


def _send(delivery: WebhookDelivery) -> tuple[int | None, str, int]:
    """POST the delivery: (status or None, error, milliseconds). Outside any transaction."""
    body = json.dumps(delivery.payload, sort_keys=True, separators=(",", ":")).encode()
    timestamp = int(time.time())
    try:
        secret = delivery.subscriber.secret()
    except (TamperedError, KeyDestroyed):
        # Nothing unsigned leaves: the delivery fails, is retried and set aside like a receiver
        # that does not answer, with the reason in the delivery log.
        return None, "the signing secret does not unseal (its key is missing or the row altered)", 0
    headers = {
        "Content-Type": "application/json",
        "Idempotency-Key": str(delivery.id),
        "Bwv-Event": delivery.event,
        "Bwv-Sequence": str(delivery.event_seq),
        "Bwv-Signature": f"t={timestamp},v1={signature(secret, timestamp, body)}",
        "User-Agent": "bwv-evidence-webhooks/1",
    }
    started = time.monotonic()
    try:
        response = requests.post(
            delivery.subscriber.url,
            data=body,
            headers=headers,
            timeout=settings.BWV_WEBHOOK_TIMEOUT_SECONDS,
            allow_redirects=False,
        )
    except requests.RequestException as exc:
        return None, f"{type(exc).__name__}: {exc}"[:500], int((time.monotonic() - started) * 1000)
    elapsed = int((time.monotonic() - started) * 1000)
    if 200 <= response.status_code < 300:
        return response.status_code, "", elapsed
    return response.status_code, f"answered {response.status_code}", elapsed


def _head(subscriber_id: int, ordering_key: str) -> WebhookDelivery | None:
    return (
        WebhookDelivery.objects.filter(subscriber_id=subscriber_id, ordering_key=ordering_key)
        .exclude(state=DeliveryState.DELIVERED)
        .select_related("subscriber")
        .order_by("event_seq")
        .first()
    )


def stream_deliver(*, subscriber_id: int, ordering_key: str, max_sends: int = 200) -> float | None:
    """Send a stream's deliveries in order until it is empty, blocked or `max_sends` are sent.

    Returns the seconds to wait before the head's next attempt when it failed (the caller tries
    again then), else None: nothing left, set aside as failed, or another worker is sending it."""
    for _ in range(max_sends):
        head = _head(subscriber_id, ordering_key)
        if head is None or head.state == DeliveryState.FAILED or not head.subscriber.active:
            return None
        now = timezone.now()
        if head.next_attempt_at > now:
            return None  # in its backoff: the worker that saw it fail comes back for it
        token = uuid.uuid4()
        lease = timedelta(seconds=settings.BWV_WEBHOOK_TIMEOUT_SECONDS * 3 + 30)
        claimed = (
            WebhookDelivery.objects.filter(pk=head.pk, state=DeliveryState.PENDING)
            .filter(Q(claimed_until__isnull=True) | Q(claimed_until__lt=now))
            .update(claim=token, claimed_until=now + lease)
        )
        if not claimed:
            return None
        status, error, elapsed = _send(head)
        at = timezone.now()
        WebhookAttempt.objects.create(
            delivery=head, at=at, status=status, error=error, duration_ms=elapsed
        )
        mine = WebhookDelivery.objects.filter(pk=head.pk, claim=token)
        if not error:
            mine.update(
                state=DeliveryState.DELIVERED,
                attempts=head.attempts + 1,
                last_status=status,
                last_error="",
                delivered_at=at,
                claim=None,
                claimed_until=None,
            )
            continue
        attempts = head.attempts + 1
        first_failed = head.first_failed_at or at
        give_up = at - first_failed >= timedelta(hours=settings.BWV_WEBHOOK_GIVE_UP_HOURS)
        wait = _backoff(attempts)
        mine.update(
            state=DeliveryState.FAILED if give_up else DeliveryState.PENDING,
            attempts=attempts,
            first_failed_at=first_failed,
            last_status=status,
            last_error=error,
            next_attempt_at=at + timedelta(seconds=wait),
            claim=None,
            claimed_until=None,
        )
        if give_up:
            log.error(
                "webhook %s to %s set aside after %s attempts", head.pk, head.subscriber, attempts
            )
            return None
        return wait
    return 0.0


def streams_overdue(*, slack_seconds: float = 120) -> list[tuple[int, str]]:
    """Streams whose head should have been tried a while ago and was not (its task lost with a
    broker or a worker): the beat gives them a new task."""
    before = timezone.now() - timedelta(seconds=slack_seconds)
    return list(
        WebhookDelivery.objects.filter(state=DeliveryState.PENDING, next_attempt_at__lt=before)
        .filter(Q(claimed_until__isnull=True) | Q(claimed_until__lt=timezone.now()))
        .values_list("subscriber_id", "ordering_key")
        .distinct()
    )


@transaction.atomic
def deliveries_replay_from(*, delivery: WebhookDelivery, actor) -> int:
    """Send again, in order, this delivery and every later one of its subscriber (a receiver that
    lost them, or one set aside as failed). Each keeps its idempotency key. Returns how many."""
    now = timezone.now()
    again = WebhookDelivery.objects.filter(
        subscriber_id=delivery.subscriber_id, event_seq__gte=delivery.event_seq
    )
    count = again.update(
        state=DeliveryState.PENDING,
        attempts=0,
        first_failed_at=None,
        next_attempt_at=now,
        claim=None,
        claimed_until=None,
        delivered_at=None,
    )
    audit_record(
        actor=actor,
        action="webhook.replayed",
        obj=delivery.subscriber,
        justification=f"replay from event #{delivery.event_seq}",
        detail={"from_delivery": str(delivery.pk), "deliveries": count},
    )
    return count


def replay_streams(*, delivery: WebhookDelivery) -> list[tuple[int, str]]:
    return list(
        WebhookDelivery.objects.filter(
            subscriber_id=delivery.subscriber_id,
            event_seq__gte=delivery.event_seq,
            state=DeliveryState.PENDING,
        )
        .values_list("subscriber_id", "ordering_key")
        .distinct()
    )
