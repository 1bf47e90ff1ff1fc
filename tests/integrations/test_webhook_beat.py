"""The beat's webhook entry, sent as the beat sends it, through the real Redis broker to a real
Celery worker: a flag becomes a signed delivery at a receiver on loopback, with nothing called by
hand in between. And every entry of the beat schedule names a task the worker knows, so a
renamed task cannot silently stop the sweep or the webhooks."""

import hashlib
import hmac
import json
import time

import pytest
from celery.contrib.testing.worker import start_worker

from bwv.celery import app
from common.roles import Role
from integrations.models import DeliveryState, WebhookDelivery
from integrations.services import webhook_subscriber_create
from integrations.webhooks import EVENT_TYPES
from review.services import recording_flag
from tests import factories as f
from tests.integrations.test_webhooks import _free_port, receiver


def test_every_beat_entry_names_a_task_the_worker_knows():
    app.loader.import_default_modules()
    unknown = {
        name: entry["task"]
        for name, entry in app.conf.beat_schedule.items()
        if entry["task"] not in app.tasks
    }
    assert app.conf.beat_schedule and not unknown


@pytest.mark.django_db(transaction=True)
def test_the_beats_webhook_entry_delivers_a_flag_through_a_real_worker():
    port = _free_port()
    subscriber, secret = webhook_subscriber_create(
        name="RMS",
        url=f"http://127.0.0.1:{port}/events",
        events=EVENT_TYPES,
        boroughs=[f.borough("QA")],
        actor="system:test",
    )
    recording = f.recording_row(cam=f.camera(borough_code="QA"))
    recording_flag(
        recording=recording,
        kind="evidence",
        actor=f.user(Role.CUSTODY_SERGEANT, borough_code="QA"),
        reason="assault",
        crime_reference="5201234/26",
    )
    entry = app.conf.beat_schedule["webhooks-outbox"]
    # The broker's queue is this run's own (a loopback Redis): tasks queued by earlier tests are
    # dropped so that only what the beat's entry causes runs here.
    app.control.purge()
    with receiver(port) as received, start_worker(app, perform_ping_check=False):
        app.send_task(entry["task"], **entry.get("options", {}))
        deadline = time.monotonic() + 60
        while not received and time.monotonic() < deadline:
            time.sleep(0.2)
    assert len(received) == 1, "the receiver heard nothing within a minute"
    body = json.loads(received[0]["body"])
    assert body["event"] == "footage.flagged" and body["recording"]["id"] == str(recording.pk)
    stamp, signed = (p.split("=", 1)[1] for p in received[0]["headers"]["Bwv-Signature"].split(","))
    expected = hmac.new(
        secret.encode(), f"{stamp}.".encode() + received[0]["body"], hashlib.sha256
    ).hexdigest()
    assert hmac.compare_digest(signed, expected)
    delivery = WebhookDelivery.objects.get(subscriber=subscriber)
    assert delivery.state == DeliveryState.DELIVERED
