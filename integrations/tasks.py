"""Tasks of the integrations: the webhooks' outbox and deliveries. Idempotent ones are
acknowledged late and given back to the queue if their worker dies (see CELERY_TASK_ACKS_LATE in
bwv/settings.py)."""

from celery import shared_task
from django.db import transaction

from integrations.webhooks import outbox_collect, stream_deliver, streams_overdue


def streams_kick(streams) -> None:
    """Queue a delivery task per stream once the caller's transaction has committed."""
    for subscriber_id, ordering_key in sorted(streams):
        transaction.on_commit(
            lambda s=subscriber_id, k=ordering_key: webhook_stream_deliver_task.delay(s, k)
        )


# Idempotent: the cursor moves with the deliveries it makes, so an event is collected once; and a
# stream already being sent is left to its sender.
@shared_task(acks_late=True, reject_on_worker_lost=True)
def webhook_outbox_task() -> int:
    streams = set()
    while batch := outbox_collect():
        streams |= batch
    streams |= set(streams_overdue())
    streams_kick(streams)
    return len(streams)


# Idempotent: a delivery is claimed before it is sent and marked once answered; one sent twice
# (a worker killed between the answer and the mark) carries the same idempotency key. A failed
# head is tried again after its backoff, by this task retrying itself (at most
# BWV_WEBHOOK_RETRY_MAX_SECONDS later, well inside the broker's visibility timeout).
@shared_task(bind=True, acks_late=True, reject_on_worker_lost=True, max_retries=None)
def webhook_stream_deliver_task(self, subscriber_id: int, ordering_key: str) -> None:
    wait = stream_deliver(subscriber_id=subscriber_id, ordering_key=ordering_key)
    if wait is not None:
        raise self.retry(countdown=wait)
