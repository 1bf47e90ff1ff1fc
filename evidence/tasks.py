"""Tasks of the evidence app. Idempotent ones are acknowledged late and given back to the queue
if their worker dies (see CELERY_TASK_ACKS_LATE in bwv/settings.py)."""

from celery import shared_task

from evidence.ingest import expire_abandoned_uploads


# Idempotent: an upload already dropped is no longer active, so it is not dropped twice.
@shared_task(acks_late=True, reject_on_worker_lost=True)
def expire_abandoned_uploads_task() -> int:
    return expire_abandoned_uploads()
