from celery import shared_task
from django.utils import timezone


@shared_task
def verification_retry_unsent_task() -> int:
    from requests_portal.services import verification_retry_unsent

    return verification_retry_unsent()


@shared_task
def request_holds_release_due_task() -> int:
    from requests_portal.services import request_holds_release_due

    return request_holds_release_due(now=timezone.now())


@shared_task
def disclosure_reminder_task() -> int:
    from requests_portal.services import disclosure_reminder_send

    return disclosure_reminder_send(now=timezone.now())
