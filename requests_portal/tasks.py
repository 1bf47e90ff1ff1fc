"""Tasks of the public access requests. Idempotent ones are acknowledged late and given back to
the queue if their worker dies (see CELERY_TASK_ACKS_LATE in bwv/settings.py)."""

from celery import shared_task
from django.utils import timezone

from requests_portal.services import (
    disclosure_reminder_send,
    request_holds_release_due,
    verification_retry_unsent,
)


# Idempotent: a request whose mail went is marked so and not mailed again. (A worker killed between
# a mail and its mark means that one mail again, as the next scheduled run would do anyway.)
@shared_task(acks_late=True, reject_on_worker_lost=True)
def verification_retry_unsent_task() -> int:
    return verification_retry_unsent()


# Idempotent: a request whose holds were lifted is marked so, and a lifted hold stays lifted.
@shared_task(acks_late=True, reject_on_worker_lost=True)
def request_holds_release_due_task() -> int:
    return request_holds_release_due(now=timezone.now())


# Not idempotent: a repeated run sends the day's reminder twice. Acknowledged when it starts.
@shared_task(acks_late=False)
def disclosure_reminder_task() -> int:
    return disclosure_reminder_send(now=timezone.now())
