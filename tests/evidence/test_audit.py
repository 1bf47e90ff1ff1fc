import pytest

from bwv.roles import Role
from evidence.models import AuditEvent
from evidence.services import audit_record
from tests import factories as f

pytestmark = pytest.mark.django_db


def _event():
    actor = f.user(Role.CUSTODY_SERGEANT)
    return audit_record(
        actor=actor, action="recording.viewed", object_type="evidence.recording",
        object_id="abc", justification="5201234/26",
    )  # fmt: skip


def test_audit_record_writes_who_what_when_why():
    event = _event()
    stored = AuditEvent.objects.get(pk=event.pk)
    assert stored.actor is not None and stored.actor_label == stored.actor.username
    assert stored.action == "recording.viewed"
    assert stored.justification == "5201234/26"
    assert stored.at is not None


def test_audit_events_cannot_be_changed_by_save():
    event = _event()
    event.justification = "something else"
    with pytest.raises(PermissionError):
        event.save()
    assert AuditEvent.objects.get(pk=event.pk).justification == "5201234/26"


def test_audit_events_cannot_be_deleted_or_bulk_changed():
    event = _event()
    with pytest.raises(PermissionError):
        event.delete()
    with pytest.raises(PermissionError):
        AuditEvent.objects.filter(pk=event.pk).delete()
    with pytest.raises(PermissionError):
        AuditEvent.objects.filter(pk=event.pk).update(action="x")
    with pytest.raises(PermissionError):
        AuditEvent.objects.bulk_update([event], ["action"])
    assert AuditEvent.objects.filter(pk=event.pk, action="recording.viewed").exists()


def test_an_event_needs_an_action_and_an_object():
    with pytest.raises(ValueError):
        audit_record(actor=None, action="", object_type="x", object_id="1")
