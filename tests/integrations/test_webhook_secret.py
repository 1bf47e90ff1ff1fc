"""A webhook subscriber's signing secret is sealed under the key-encryption key: the database
alone does not give it away, a sealed secret moved to another row does not open, and a delivery
whose secret does not open is not sent unsigned (real PostgreSQL)."""

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

from evidence.crypto import TamperedError
from integrations.models import WebhookDelivery, WebhookSubscriber
from integrations.services import webhook_subscriber_create
from integrations.webhooks import EVENT_TYPES, _send
from tests import factories as f

pytestmark = pytest.mark.django_db

BEFORE = [("integrations", "0002_outcome_retention_table")]
AFTER = [("integrations", "0003_webhook_secret_sealed")]


def _subscriber(name="RMS"):
    return webhook_subscriber_create(
        name=name,
        url="http://127.0.0.1:9/events",
        events=EVENT_TYPES,
        boroughs=[f.borough("QA")],
        actor="system:test",
    )


def _row_text(pk) -> str:
    with connection.cursor() as cursor:
        cursor.execute("SELECT * FROM integrations_webhooksubscriber WHERE id = %s", [pk])
        row = cursor.fetchone()
    return " ".join(
        bytes(v).decode("latin-1") if isinstance(v, bytes | memoryview) else str(v) for v in row
    )


def test_the_signing_secret_is_not_in_the_database_in_clear():
    subscriber, secret = _subscriber()
    assert secret not in _row_text(subscriber.pk)
    assert WebhookSubscriber.objects.get(pk=subscriber.pk).secret() == secret


def test_a_sealed_secret_copied_onto_another_subscriber_does_not_open():
    a, _ = _subscriber("RMS")
    b, _ = _subscriber("Second RMS")
    WebhookSubscriber.objects.filter(pk=b.pk).update(
        secret_sealed=a.secret_sealed, secret_kek_id=a.secret_kek_id
    )
    with pytest.raises(TamperedError):
        WebhookSubscriber.objects.get(pk=b.pk).secret()


def test_a_delivery_whose_secret_does_not_open_is_not_sent_and_says_why():
    a, _ = _subscriber("RMS")
    WebhookSubscriber.objects.filter(pk=a.pk).update(secret_sealed=b"\0" * 60)
    delivery = WebhookDelivery(
        subscriber=WebhookSubscriber.objects.get(pk=a.pk),
        event="recording.flagged",
        event_seq=1,
        ordering_key="case:1",
        payload={"event": "recording.flagged"},
    )
    status, error, _ms = _send(delivery)
    assert status is None and "does not unseal" in error


@pytest.mark.django_db(transaction=True)
def test_secrets_kept_in_clear_before_are_sealed_by_the_migration_and_back():
    executor = MigrationExecutor(connection)
    try:
        executor.migrate(BEFORE)
        old = executor.loader.project_state(BEFORE).apps.get_model(
            "integrations", "WebhookSubscriber"
        )
        made = old.objects.create(
            name="Old RMS", url="http://127.0.0.1:9/e", secret="old-clear-secret", events=[]
        )
        executor = MigrationExecutor(connection)
        executor.migrate(AFTER)
        assert "old-clear-secret" not in _row_text(made.pk)
        assert WebhookSubscriber.objects.get(pk=made.pk).secret() == "old-clear-secret"
        executor = MigrationExecutor(connection)
        executor.migrate(BEFORE)
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT secret FROM integrations_webhooksubscriber WHERE id = %s", [made.pk]
            )
            assert cursor.fetchone()[0] == "old-clear-secret"
    finally:
        executor = MigrationExecutor(connection)
        executor.loader.build_graph()
        executor.migrate(executor.loader.graph.leaf_nodes())
