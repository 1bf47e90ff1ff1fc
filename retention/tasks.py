"""Tasks of the retention app. Idempotent ones are acknowledged late and given back to the queue
if their worker dies (see CELERY_TASK_ACKS_LATE in bwv/settings.py)."""

import logging

from celery import shared_task
from celery.signals import worker_ready
from django.conf import settings
from django.core.mail import mail_admins

from retention.objectlock import object_legal_hold_sync, object_lock_selfcheck
from retention.sweep import sweep_expired_recordings

log = logging.getLogger(__name__)


# Idempotent: claims make a second run share or finish the work of the first, never repeat it,
# and a run whose worker died is closed as abandoned by the next, which takes over its claims.
@shared_task(acks_late=True, reject_on_worker_lost=True)
def sweep_expired_recordings_task() -> int:
    return sweep_expired_recordings(triggered_by="schedule").pk


# Idempotent: it sets the object's legal hold to what the recording's holds say, now. Retries wait
# at most 10 minutes, well inside the broker's visibility timeout (bwv/settings.py).
@shared_task(
    acks_late=True,
    reject_on_worker_lost=True,
    autoretry_for=(Exception,),
    retry_backoff=True,
    retry_backoff_max=600,
    max_retries=10,
)
def object_legal_hold_sync_task(recording_id: str) -> bool | None:
    return object_legal_hold_sync(recording_id=recording_id)


@worker_ready.connect
def _check_object_lock_at_start(**kwargs) -> None:
    if not settings.S3_OBJECT_LOCK:
        return
    try:
        ok, message = object_lock_selfcheck()
    except Exception as exc:
        ok, message = False, f"the Object Lock self-check failed: {exc}"
    if ok:
        log.info("Object Lock self-check: %s", message)
    else:
        log.error("Object Lock self-check: %s", message)
        mail_admins("Object Lock is not protecting evidence", message, fail_silently=True)
