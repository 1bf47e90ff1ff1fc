"""Tasks of the chain of custody. Idempotent ones are acknowledged late and given back to the queue
if their worker dies (see CELERY_TASK_ACKS_LATE in bwv/settings.py)."""

from celery import shared_task

from custody.audit import checkpoint_write


# Idempotent: a checkpoint of a head already signed is not written again.
@shared_task(acks_late=True, reject_on_worker_lost=True)
def audit_checkpoint_task() -> int | None:
    checkpoint = checkpoint_write()
    return checkpoint.seq if checkpoint else None
