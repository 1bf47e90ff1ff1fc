"""Tasks of the evidence app. Idempotent ones are acknowledged late and given back to the queue
if their worker dies (see CELERY_TASK_ACKS_LATE in bwv/settings.py)."""

from celery import shared_task

from evidence.filmstrip import recording_filmstrip_make
from evidence.ingest import expire_abandoned_uploads


# Idempotent: an upload already dropped is no longer active, so it is not dropped twice.
@shared_task(acks_late=True, reject_on_worker_lost=True)
def expire_abandoned_uploads_task() -> int:
    return expire_abandoned_uploads()


# Idempotent: a recording that has its filmstrip is left alone, and one deleted meanwhile keeps
# none (evidence/filmstrip.py). Acknowledged late, so a worker lost mid-clip gives it back.
@shared_task(acks_late=True, reject_on_worker_lost=True)
def recording_filmstrip_make_task(recording_id: str) -> str:
    return recording_filmstrip_make(recording_id=recording_id)
