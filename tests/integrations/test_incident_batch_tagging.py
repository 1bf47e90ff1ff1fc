"""Incidents that arrive in a batch (a dispatch system catching up) tag the stored footage in one
statement per batch: only the recordings of an attending officer inside the window, each tag
audited on its recording once, and a batch sent again makes and audits nothing (real PostgreSQL)."""

from datetime import timedelta

import pytest
from django.utils import timezone

from custody.audit import audit_verify
from custody.models import AuditEvent
from evidence.incidents import attendance_window, incidents_tag
from evidence.models import Incident, IncidentAttendance, IncidentTag
from tests import factories as f

pytestmark = pytest.mark.django_db


def _incident(reference, officer, arrived, minutes=60):
    incident = Incident.objects.create(
        reference=reference, borough=officer.borough, opened_at=arrived - timedelta(minutes=5)
    )
    cleared = arrived + timedelta(minutes=minutes)
    IncidentAttendance.objects.create(
        incident=incident,
        officer=officer,
        arrived_at=arrived,
        cleared_at=cleared,
        **attendance_window(arrived, cleared),
    )
    return incident


def test_a_batch_tags_only_what_its_attendances_justify_and_audits_each_tag_once():
    cam, officer = f.issued_camera()
    other_cam, other_officer = f.issued_camera()
    at = timezone.now() - timedelta(days=2)
    inside = f.recording_row(cam=cam, officer=officer, started=at + timedelta(minutes=10))
    also_inside = f.recording_row(cam=cam, officer=officer, started=at + timedelta(minutes=50))
    too_late = f.recording_row(cam=cam, officer=officer, started=at + timedelta(hours=5))
    someone_else = f.recording_row(
        cam=other_cam, officer=other_officer, started=at + timedelta(minutes=10)
    )
    first = _incident("CAD 1/25NOV26", officer, at)
    second = _incident("CAD 2/25NOV26", officer, at + timedelta(minutes=40))

    assert incidents_tag(incident_ids=[first.pk, second.pk], actor="system:test") == 3
    tags = set(IncidentTag.objects.values_list("recording_id", "incident_id"))
    assert tags == {(inside.pk, first.pk), (also_inside.pk, first.pk), (also_inside.pk, second.pk)}
    assert not IncidentTag.objects.filter(recording__in=[too_late, someone_else]).exists()
    events = AuditEvent.objects.filter(action="recording.incident_tagged")
    assert sorted((e.object_id, e.data["detail"]["reference"]) for e in events) == sorted(
        [
            (str(inside.pk), "CAD 1/25NOV26"),
            (str(also_inside.pk), "CAD 1/25NOV26"),
            (str(also_inside.pk), "CAD 2/25NOV26"),
        ]
    )
    assert {e.borough_code for e in events} == {cam.borough.code}

    # The same batch again (a replay): nothing made, nothing audited.
    assert incidents_tag(incident_ids=[second.pk, first.pk], actor="system:test") == 0
    assert AuditEvent.objects.filter(action="recording.incident_tagged").count() == 3
    assert audit_verify().ok
