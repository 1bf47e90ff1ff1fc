from celery import shared_task

from retention.sweep import sweep_expired_recordings


@shared_task(acks_late=True)
def sweep_expired_recordings_task() -> int:
    return sweep_expired_recordings(triggered_by="schedule").pk
