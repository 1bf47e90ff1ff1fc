"""Tasks of the public access requests. Idempotent ones are acknowledged late and given back to
the queue if their worker dies (see CELERY_TASK_ACKS_LATE in bwv/settings.py).

`services` queues `footage_redaction_task` and these tasks call `services` back: each module
imports the other as a module, so either may be imported first."""

from celery import shared_task
from django.utils import timezone

from requests_portal import redaction_jobs, services


# Idempotent: a request whose mail went is marked so and not mailed again. (A worker killed between
# a mail and its mark means that one mail again, as the next scheduled run would do anyway.)
@shared_task(acks_late=True, reject_on_worker_lost=True)
def verification_retry_unsent_task() -> int:
    return services.verification_retry_unsent()


# Idempotent: a request whose holds were lifted is marked so, and a lifted hold stays lifted.
@shared_task(acks_late=True, reject_on_worker_lost=True)
def request_holds_release_due_task() -> int:
    return services.request_holds_release_due(now=timezone.now())


# Not idempotent: a repeated run sends the day's reminder twice. Acknowledged when it starts.
@shared_task(acks_late=False)
def disclosure_reminder_task() -> int:
    return services.disclosure_reminder_send(now=timezone.now())


# Idempotent: a finished job is left as it is; an unfinished one is rendered again from the start,
# its earlier attempt's object deleted, and only one attempt's copy is ever recorded (see
# redaction_jobs). Given back to the queue if the worker dies mid-render.
@shared_task(acks_late=True, reject_on_worker_lost=True)
def footage_redaction_task(job_id: str) -> str:
    return redaction_jobs.redaction_job_run(job_id=job_id).status
