"""How our tasks meet a worker that dies: idempotent ones run again to the end, the others do not
run twice; and Redis gives a dead worker's task to another after an explicit, bounded wait."""

from django.conf import settings

from bwv.celery import app

# Each of our tasks, classified. A new task must be added to one of the two.
IDEMPOTENT = {
    "retention.tasks.sweep_expired_recordings_task",
    "retention.tasks.object_legal_hold_sync_task",
    "evidence.tasks.expire_abandoned_uploads_task",
    "evidence.tasks.recording_filmstrip_make_task",
    "custody.tasks.audit_checkpoint_task",
    "requests_portal.tasks.verification_retry_unsent_task",
    "requests_portal.tasks.request_holds_release_due_task",
    "requests_portal.tasks.footage_redaction_task",
    "integrations.tasks.webhook_outbox_task",
    "integrations.tasks.webhook_stream_deliver_task",
}
NOT_IDEMPOTENT = {"requests_portal.tasks.disclosure_reminder_task"}


def _our_tasks() -> dict:
    app.loader.import_default_modules()
    return {name: task for name, task in app.tasks.items() if not name.startswith("celery.")}


def test_idempotent_tasks_are_acknowledged_late_and_given_back_if_their_worker_dies():
    tasks = _our_tasks()
    assert set(tasks) == IDEMPOTENT | NOT_IDEMPOTENT, "a new task must say which it is"
    for name in IDEMPOTENT:
        assert tasks[name].acks_late and tasks[name].reject_on_worker_lost, name
    for name in NOT_IDEMPOTENT:
        assert not tasks[name].acks_late, name
    assert not app.conf.task_acks_late and not app.conf.task_reject_on_worker_lost


def test_the_visibility_timeout_is_explicit_and_longer_than_any_countdown():
    timeout = app.conf.broker_transport_options["visibility_timeout"]
    assert timeout == settings.CELERY_VISIBILITY_TIMEOUT == 3 * 3600
    # A task waiting for its ETA longer than the timeout would be delivered again and again.
    for task in _our_tasks().values():
        if getattr(task, "autoretry_for", ()):
            assert task.retry_backoff_max < timeout, task.name
