"""Outbound webhooks to a real HTTP receiver on loopback: signed with HMAC-SHA256, an idempotency
key per delivery, in order per case, retried with a growing wait while the receiver is down (it is
not listening at all: a refused connection, not a mock), everything received once it is back, and
a delivery log that only a system admin reads and replays from."""

import hashlib
import hmac
import json
import socket
import threading
from contextlib import contextmanager
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from django.utils import timezone

from common.roles import Role
from custody.models import AuditEvent
from integrations.models import DeliveryState, WebhookDelivery
from integrations.services import webhook_subscriber_create
from integrations.webhooks import EVENT_TYPES, outbox_collect, stream_deliver
from review.services import case_add_recording, case_create, recording_flag
from tests import factories as f

pytestmark = pytest.mark.django_db


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def receiver(port: int, status: int = 204):
    """A receiver listening on `port` that keeps what it is sent and answers `status`."""
    received: list[dict] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):  # noqa: N802 -- the name http.server calls
            body = self.rfile.read(int(self.headers["Content-Length"]))
            received.append({"headers": dict(self.headers), "body": body})
            self.send_response(status)
            self.end_headers()

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield received
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def world():
    """A Harrow subscriber (not listening yet), and a case of three Harrow clips; a Camden clip
    flagged too, of which Harrow's subscriber is not told."""
    port = _free_port()
    subscriber, secret = webhook_subscriber_create(
        name="RMS",
        url=f"http://127.0.0.1:{port}/events",
        events=EVENT_TYPES,
        boroughs=[f.borough("QA")],
        actor="system:test",
    )
    sergeant = f.user(Role.CUSTODY_SERGEANT)
    cam, officer = f.issued_camera()
    clips = [
        f.recording_row(cam=cam, officer=officer, started=timezone.now() - timedelta(hours=h))
        for h in (3, 2, 1)
    ]
    case = case_create(
        crime_reference="5201234/26", title="Assault", borough=cam.borough, actor=sergeant
    )
    for clip in clips:
        case_add_recording(case=case, recording=clip, actor=sergeant)
    camden = f.recording_row(cam=f.camera(borough_code="EK"))
    recording_flag(
        recording=camden,
        kind="evidence",
        actor=f.user(Role.CUSTODY_SERGEANT, borough_code="EK"),
        reason="assault",
        crime_reference="5209999/26",
    )
    return {
        "port": port,
        "subscriber": subscriber,
        "secret": secret,
        "case": case,
        "clips": clips,
        "key": f"case:{case.pk}",
    }


def _deliver(world):
    return stream_deliver(subscriber_id=world["subscriber"].pk, ordering_key=world["key"])


def test_a_receiver_down_for_an_hour_gets_everything_afterwards_signed_and_in_order(
    world, settings
):
    streams = outbox_collect()
    # Only the Harrow case's events, in one stream; the Camden flag is not Harrow's to hear.
    assert streams == {(world["subscriber"].pk, world["key"])}
    deliveries = list(WebhookDelivery.objects.order_by("event_seq"))
    assert [d.event for d in deliveries] == ["footage.added_to_case"] * 3
    assert outbox_collect() == set()  # collected once

    # Down: the head fails and waits longer each time; the later ones wait behind it.
    waits = []
    for _ in range(4):
        waits.append(_deliver(world))
        WebhookDelivery.objects.filter(pk=deliveries[0].pk).update(next_attempt_at=timezone.now())
    first = settings.BWV_WEBHOOK_RETRY_SECONDS
    assert waits == [first, first * 2, first * 4, first * 8]
    head = WebhookDelivery.objects.get(pk=deliveries[0].pk)
    assert head.attempts == 4 and "ConnectionError" in head.last_error
    assert head.tries.count() == 4
    assert not WebhookDelivery.objects.filter(state=DeliveryState.DELIVERED).exists()
    assert WebhookDelivery.objects.filter(attempts=0).count() == 2

    # An hour later the receiver is back; the next attempt sends everything, in order.
    WebhookDelivery.objects.filter(pk=head.pk).update(
        first_failed_at=timezone.now() - timedelta(hours=1), next_attempt_at=timezone.now()
    )
    with receiver(world["port"]) as received:
        assert _deliver(world) is None
    assert WebhookDelivery.objects.filter(state=DeliveryState.DELIVERED).count() == 3
    bodies = [json.loads(r["body"]) for r in received]
    assert [b["sequence"] for b in bodies] == [d.event_seq for d in deliveries]
    assert [b["recording"]["id"] for b in bodies] == [str(c.pk) for c in world["clips"]]
    for request, delivery in zip(received, deliveries, strict=True):
        headers = request["headers"]
        assert headers["Idempotency-Key"] == str(delivery.pk) == json.loads(request["body"])["id"]
        stamp, signed = (part.split("=", 1)[1] for part in headers["Bwv-Signature"].split(","))
        expected = hmac.new(
            world["secret"].encode(), f"{stamp}.".encode() + request["body"], hashlib.sha256
        ).hexdigest()
        assert hmac.compare_digest(signed, expected)


def test_a_delivery_set_aside_holds_its_case_until_a_system_admin_replays_it(
    world, client, settings
):
    outbox_collect()
    settings.BWV_WEBHOOK_GIVE_UP_HOURS = 1
    deliveries = list(WebhookDelivery.objects.order_by("event_seq"))
    WebhookDelivery.objects.filter(pk=deliveries[0].pk).update(
        first_failed_at=timezone.now() - timedelta(hours=2)
    )
    assert _deliver(world) is None  # refused again, and past the limit: set aside
    head = WebhookDelivery.objects.get(pk=deliveries[0].pk)
    assert head.state == DeliveryState.FAILED
    with receiver(world["port"]) as received:
        assert _deliver(world) is None
        assert received == []  # the later events of the case wait behind it

        # The log and the replay: anonymous to sign in, other roles 404 (as if it did not exist).
        url = f"/webhooks/{head.pk}/"
        assert client.get("/webhooks/").status_code == 302
        for role in (Role.CUSTODY_SERGEANT, Role.BOROUGH_ADMIN):
            f.signed_in(client, role)
            assert client.get("/webhooks/").status_code == 404
            assert client.post(url).status_code == 404
        assert WebhookDelivery.objects.get(pk=head.pk).state == DeliveryState.FAILED
        admin = f.signed_in(client, Role.SYSTEM_ADMIN)
        log = client.get("/webhooks/", {"state": "failed"}).content.decode()
        assert str(head.pk) in log and str(deliveries[1].pk) not in log
        assert client.post(url).status_code == 302
        assert _deliver(world) is None
    assert [json.loads(r["body"])["id"] for r in received] == [str(d.pk) for d in deliveries]
    replayed = AuditEvent.objects.get(action="webhook.replayed")
    assert replayed.actor_user_id == admin.pk and replayed.detail["deliveries"] == 3


def test_the_outbox_collects_events_made_before_its_first_run(world):
    """The subscriber was registered before the events and before the outbox ever ran: its
    cursor starts where the subscriber did, not at the head of the log."""
    assert outbox_collect() and WebhookDelivery.objects.count() == 3
