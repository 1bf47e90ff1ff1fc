"""The Celery app and the one beat schedule of the project.

Every periodic job is listed here and nowhere else, with when it runs and why. Times are
Europe/London (CELERY_TIMEZONE): "nightly" means a London night, across the BST/GMT change.
"""

import os

from celery import Celery
from celery.schedules import crontab

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "bwv.settings")

app = Celery("bwv")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()

app.conf.beat_schedule = {
    # The retention sweep, nightly at 02:30 London time: after the evening docking peak, and clear
    # of the 01:00-02:00 hour that the clocks skip or repeat at the BST/GMT changes, so it runs
    # exactly once every night. A missed night is caught up by the next run (it takes everything
    # past delete_after).
    "retention-sweep": {
        "task": "retention.tasks.sweep_expired_recordings_task",
        "schedule": crontab(hour=2, minute=30),
    },
    # Abandoned tus uploads hold storage and a multipart upload open; clear them every quarter hour
    # so a dock that gave up does not leave half-made objects behind for long.
    "expire-abandoned-uploads": {
        "task": "evidence.tasks.expire_abandoned_uploads_task",
        "schedule": crontab(minute="*/15"),
    },
    # A signed checkpoint of the audit chain's head every 10 minutes: events are provably in the
    # chain (against a wholesale rewrite or a cut-off tail) at most 10 minutes after they happen.
    # Writes nothing when no event has been added since the last one.
    "audit-checkpoint": {
        "task": "custody.tasks.audit_checkpoint_task",
        "schedule": crontab(minute="*/10"),
    },
    # Verification e-mails that failed (mail server down) are sent again every quarter hour: a
    # request is never lost to a mail failure, only delayed.
    "access-request-verification-retry": {
        "task": "requests_portal.tasks.verification_retry_unsent_task",
        "schedule": crontab(minute="5-59/15"),
    },
    # Preservation holds of closed requests whose grace is over are lifted at 01:15, before the
    # 02:30 sweep, so that footage goes the same night.
    "access-request-holds-release": {
        "task": "requests_portal.tasks.request_holds_release_due_task",
        "schedule": crontab(hour=1, minute=15),
    },
    # Outbound webhooks: every 30 seconds the audit events of flags, cases, exports and deletions
    # become deliveries to the force's systems (then sent at once, in order per case), and a
    # delivery whose retry was lost with a worker is given a new task. Seconds, not a crontab:
    # the record system hears within half a minute.
    "webhooks-outbox": {
        "task": "integrations.tasks.webhook_outbox_task",
        "schedule": 30.0,
    },
    # The disclosure team's reminder of open requests by due date, each working morning at 07:30.
    "disclosure-reminder": {
        "task": "requests_portal.tasks.disclosure_reminder_task",
        "schedule": crontab(hour=7, minute=30, day_of_week="mon-fri"),
    },
}
