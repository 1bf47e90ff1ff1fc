from celery import shared_task

from evidence.ingest import expire_abandoned_uploads


@shared_task
def expire_abandoned_uploads_task() -> int:
    return expire_abandoned_uploads()
