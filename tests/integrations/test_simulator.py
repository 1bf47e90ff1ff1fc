"""The simulator plays a day through the real API of the live server with real OAuth clients: the
day's footage is tagged by incident, and a crime report opens a case with it as candidates."""

from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import call_command
from django.utils import timezone

from common.roles import Role
from custody.models import AuditEvent
from evidence.models import Incident, IncidentTag
from integrations.models import ConnectedSystem, CrimeReport, InboundCall, ReviewState
from review.models import CaseCandidate
from tests import factories as f

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("outcome_table")]


def test_a_simulated_day_tags_footage_and_opens_a_case(live_server, settings, tmp_path):
    settings.VAR_DIR = tmp_path
    yesterday = timezone.now().replace(microsecond=0) - timedelta(days=1)
    oic = f.user(Role.OFFICER)
    cam, _ = f.issued_camera(officer_obj=oic.officer)
    clip = f.recording_row(cam=cam, officer=oic.officer, started=yesterday)
    for _ in range(3):
        f.officer()  # colleagues to send with them

    out = StringIO()
    call_command("integration_simulate", url=live_server.url, stdout=out)

    assert Incident.objects.count() >= 4
    tag = IncidentTag.objects.get(recording=clip)
    report = CrimeReport.objects.get(incidents=tag.incident)
    assert report.case.officer_in_case == oic.officer
    assert CaseCandidate.objects.get(case=report.case).recording == clip
    charged = CrimeReport.objects.exclude(pk=report.pk).get()
    assert charged.case.retention_review.state == ReviewState.WAITING
    # Every call went through the API as one of the two simulated systems, and was kept.
    systems = set(ConnectedSystem.objects.values_list("name", flat=True))
    assert systems == {"Simulated dispatch (QA)", "Simulated crime recording (QA)"}
    assert InboundCall.objects.filter(result="created").count() == Incident.objects.count() + 3
    assert not InboundCall.objects.filter(result="refused").exists()
    assert AuditEvent.objects.filter(
        action="integration.call", actor_label="client:simulated-dispatch-qa"
    ).exists()

    # Played again (the credentials kept in the folder): newer versions update what was sent.
    call_command("integration_simulate", url=live_server.url, stdout=StringIO())
    assert InboundCall.objects.filter(result="updated").count() == Incident.objects.count() + 3
    assert IncidentTag.objects.filter(recording=clip).count() == 1
