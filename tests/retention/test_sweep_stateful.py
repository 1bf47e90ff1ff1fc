"""A stateful property test of retention: any sequence of uploads, flags, lifts, access-request
holds, clock moves, sweeps and crashes mid-sweep keeps the invariants, on the real PostgreSQL and S3.
"""

import os
from datetime import timedelta

import pytest
from django.conf import settings as django_settings
from django.utils import timezone
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from evidence.models import FlagKind, Recording, RecordingState
from evidence.services import FlagError, recording_flag
from evidence.storage import blob_store
from retention.models import DeletionCertificate, Hold, HoldSource
from retention.services import RecordingGone, hold_lift, hold_place
from retention.sweep import sweep_expired_recordings
from tests import factories as f


class Crash(Exception):
    pass


class RetentionMachine(RuleBasedStateMachine):
    def __init__(self):
        super().__init__()
        self.cam, _ = f.issued_camera()
        self.dock, _ = f.dock()
        self.sergeant = f.user("custody_sergeant")
        self.clip = RetentionMachine.clip
        self.now = timezone.now()
        self.ids: list = []
        self.n = 0

    def _mine(self):
        return Recording.objects.filter(pk__in=self.ids)

    @rule(age_days=st.integers(min_value=0, max_value=40))
    def upload(self, age_days):
        self.n += 1
        # Clips are recorded in the real past (a start in the future is a suspect clock, kept from
        # arrival), while the sweep's clock may have moved ahead: late uploads of old clips are
        # part of the space, and the review window must keep them.
        start = timezone.now() - timedelta(days=age_days, minutes=self.n)
        recording = f.ingested_recording(cam=self.cam, dock_obj=self.dock, start=start,
                                         data=self.clip + os.urandom(16))  # fmt: skip
        self.ids.append(recording.pk)

    @precondition(lambda self: self.ids)
    @rule(i=st.integers(min_value=0), evidence=st.booleans())
    def flag(self, i, evidence):
        recording = Recording.objects.get(pk=self.ids[i % len(self.ids)])
        try:
            recording_flag(recording=recording, actor=self.sergeant, reason="test",
                           kind=FlagKind.EVIDENCE if evidence else FlagKind.POLICING_PURPOSE,
                           crime_reference="5201234/26" if evidence else "")  # fmt: skip
        except FlagError:
            assert recording.state != RecordingState.AVAILABLE or Recording.objects.get(
                pk=recording.pk).state != RecordingState.AVAILABLE  # fmt: skip

    @precondition(lambda self: self.ids)
    @rule(i=st.integers(min_value=0))
    def request_hold(self, i):
        recording = Recording.objects.get(pk=self.ids[i % len(self.ids)])
        try:
            hold_place(recording=recording, source=HoldSource.ACCESS_REQUEST, actor=None,
                       reason="access request", source_ref=f"request:{i}")  # fmt: skip
        except RecordingGone:
            assert recording.state != RecordingState.AVAILABLE

    @precondition(lambda self: Hold.objects.filter(recording_id__in=self.ids, active=True).exists())
    @rule(i=st.integers(min_value=0))
    def lift(self, i):
        holds = list(Hold.objects.filter(recording_id__in=self.ids, active=True).order_by("pk"))
        hold_lift(hold=holds[i % len(holds)], actor=self.sergeant, reason="released")

    @rule(hours=st.integers(min_value=1, max_value=24 * 12))
    def advance_clock(self, hours):
        self.now += timedelta(hours=hours)

    @rule()
    def sweep(self):
        waiting = list(
            self._mine().filter(state=RecordingState.AVAILABLE).values_list("pk", flat=True)
        )
        sweep_expired_recordings(now=self.now, batch_size=3, override_reason="property test")
        # Nothing is taken within the review window after it arrived, however old its start.
        window = timedelta(days=django_settings.BWV_MIN_REVIEW_DAYS)
        for r in self._mine().filter(pk__in=waiting, state=RecordingState.DELETED):
            assert r.available_at + window <= self.now, r.pk
        self.check_after_completed_sweep()

    @rule()
    def crash_mid_sweep(self):
        real = DeletionCertificate.objects.bulk_create

        def crash(*args, **kwargs):
            raise Crash()

        DeletionCertificate.objects.bulk_create = crash
        try:
            sweep_expired_recordings(now=self.now, batch_size=2, override_reason="property test")
        except Crash:
            pass
        finally:
            DeletionCertificate.objects.bulk_create = real
        # The crashed run's claims expire before the next run: the clock moves past the lease.
        self.now += timedelta(hours=1)

    def check_after_completed_sweep(self):
        for r in self._mine():
            held = Hold.objects.filter(recording=r, active=True).exists()
            if r.state == RecordingState.AVAILABLE and not held:
                # Nothing unheld survives a completed sweep past its delete_after.
                assert r.delete_after > self.now, r.pk
            # Storage and database agree after every completed sweep.
            assert (blob_store().size(r.storage_key) is None) == (r.state == RecordingState.DELETED)

    @invariant()
    def nothing_held_is_ever_deleted(self):
        held_ids = Hold.objects.filter(recording_id__in=self.ids, active=True).values(
            "recording_id"
        )
        assert not self._mine().filter(pk__in=held_ids).exclude(
            state=RecordingState.AVAILABLE).exists()  # fmt: skip

    @invariant()
    def each_deletion_has_exactly_one_certificate(self):
        deleted = self._mine().filter(state=RecordingState.DELETED)
        assert DeletionCertificate.objects.filter(recording__in=deleted).count() == deleted.count()
        assert (
            not self._mine()
            .filter(state=RecordingState.DELETED, wrapped_key__isnull=False)
            .exists()
        )


@pytest.mark.django_db
def test_retention_invariants_hold_for_any_sequence_of_events(small_clip):
    RetentionMachine.clip = small_clip
    from hypothesis.stateful import run_state_machine_as_test

    run_state_machine_as_test(
        RetentionMachine,
        settings=settings(
            max_examples=12,
            stateful_step_count=14,
            deadline=None,
            suppress_health_check=list(HealthCheck),
        ),  # fmt: skip
    )
