"""The migration that places case holds for recordings put on cases before being on a case held
them: run on a real PostgreSQL database migrated back to the state before it, with recordings on
cases and an audit chain under a signed checkpoint; then the sweep and `audit_verify`."""

from datetime import UTC, datetime, timedelta

import pytest
from django.conf import settings
from django.core.management import call_command
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from django.utils import timezone

from blobstore import blob_store
from custody.audit import audit_verify, event_body
from custody.models import AuditEvent
from evidence.models import RecordingState
from retention.models import DeletionCertificate, Hold, HoldSource
from retention.sweep import sweep_expired_recordings
from review.models import Case
from tests import factories as f

# Just before the holds were placed: everything else (and what depends on it) stays as it is.
BEFORE = [("retention", "0005_hold_source_case")]


def _migrate(targets=None) -> None:
    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate(targets or executor.loader.graph.leaf_nodes())


def _case(title: str, owner) -> Case:
    return Case.objects.create(
        crime_reference="5201234/26", title=title, borough=f.borough("QA"), created_by=owner
    )


def _active_case_holds(recording) -> set[str]:
    return set(
        Hold.objects.filter(recording=recording, source=HoldSource.CASE, active=True).values_list(
            "source_ref", flat=True
        )
    )


def _assert_chain_intact() -> None:
    report = audit_verify()
    assert report.ok, [x.message for x in report.findings]
    call_command("audit_verify")  # exits 1 on any finding


@pytest.mark.django_db(transaction=True)
def test_recordings_already_on_cases_are_held_after_the_migration_and_the_chain_holds(small_clip):
    cam, _officer = f.issued_camera()
    dock, _key = f.dock()
    owner = f.user("custody_sergeant")
    old = timezone.now() - timedelta(days=40)
    on_one_case, on_two_cases, on_no_case = (
        f.ingested_recording(
            cam=cam,
            dock_obj=dock,
            start=old + timedelta(minutes=i),
            data=small_clip + bytes([i]) * 16,
        )
        for i in range(3)
    )
    first, second = _case("first", owner), _case("second", owner)
    # The chain so far is signed (by today's code, before the schema steps back): the migration
    # must extend it.
    call_command("audit_checkpoint")
    try:
        _migrate(BEFORE)
        # As they were before: on cases through the many-to-many alone, no hold.
        first.recordings.add(on_one_case, on_two_cases)
        second.recordings.add(on_two_cases)
        events_before = AuditEvent.objects.count()

        _migrate()

        assert _active_case_holds(on_one_case) == {f"case:{first.pk}"}
        assert _active_case_holds(on_two_cases) == {f"case:{first.pk}", f"case:{second.pk}"}
        assert not Hold.objects.filter(recording=on_no_case).exists()
        placed = AuditEvent.objects.filter(action="hold.placed", actor_label="system:migration")
        assert placed.count() == 3 == AuditEvent.objects.count() - events_before
        assert {e.detail["source_ref"] for e in placed if e.object_id == str(on_two_cases.pk)} == {
            f"case:{first.pk}",
            f"case:{second.pk}",
        }
        for event in placed:  # the very bytes custody/audit.py would have written
            data = event.data
            at = datetime(1970, 1, 1, tzinfo=UTC) + timedelta(microseconds=data["t"])
            assert event.body == event_body(seq=event.seq, at=at, entry=data)
        _assert_chain_intact()

        # Past the review window the fresh uploads get: only the holds can keep them then.
        later = timezone.now() + timedelta(days=settings.BWV_MIN_REVIEW_DAYS + 1)
        run = sweep_expired_recordings(now=later, override_reason="test: tiny estate")
        assert run.deleted == 1
        for recording in (on_one_case, on_two_cases):
            recording.refresh_from_db()
            assert recording.state == RecordingState.AVAILABLE and recording.held
            assert blob_store().size(recording.storage_key) is not None
        on_no_case.refresh_from_db()
        assert on_no_case.state == RecordingState.DELETED
        assert DeletionCertificate.objects.filter(recording=on_no_case).count() == 1
        call_command("audit_checkpoint")
        _assert_chain_intact()

        # Backwards: the holds are lifted (the old code could never lift them), audited.
        _migrate(BEFORE)
        assert not Hold.objects.filter(source=HoldSource.CASE, active=True).exists()
        # Only the column this step knows: recordings' later columns are not in its schema.
        on_one_case.refresh_from_db(fields=["held"])
        assert not on_one_case.held
        assert AuditEvent.objects.filter(action="hold.lifted").count() == 3
    finally:
        _migrate()
    # Forwards again: placed afresh, each once; the chain, with the lifts the step back wrote, holds
    # (checked with today's schema: the tree is rebuilt from the events).
    assert _active_case_holds(on_two_cases) == {f"case:{first.pk}", f"case:{second.pk}"}
    _assert_chain_intact()
