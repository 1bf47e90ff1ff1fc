from celery import shared_task

from evidence.ingest import expire_abandoned_uploads


@shared_task
def expire_abandoned_uploads_task() -> int:
    return expire_abandoned_uploads()


@shared_task
def audit_checkpoint_task() -> int | None:
    from evidence.audit import checkpoint_write

    checkpoint = checkpoint_write()
    return checkpoint.seq if checkpoint else None
