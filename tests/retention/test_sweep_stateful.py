"""A stateful property test of retention: any sequence of uploads, flags, lifts, access-request
holds, cases (add, remove, close), clock moves, sweeps, crashes mid-sweep and storage failing
mid-sweep keeps the invariants, on the real PostgreSQL and S3.
"""

import os
from datetime import timedelta

import pytest
from django.conf import settings as django_settings
from django.utils import timezone
from hypothesis import HealthCheck
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from blobstore import StorageUnavailable, blob_store
from evidence.models import Recording, RecordingState
from retention.models import DeletionCertificate, Hold, HoldSource, SweepRun
from retention.services import RecordingGone, hold_lift, hold_place
from retention.sweep import sweep_expired_recordings
from review.models import Case, FlagKind
from review.services import (
    CaseError,
    FlagError,
    case_add_recording,
    case_close,
    case_create,
    case_remove_recording,
    recording_flag,
)
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
        self.cases: list = []
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
        recording = f.ingested_recording(
            cam=self.cam, dock_obj=self.dock, start=start, data=self.clip + os.urandom(16)
        )
        self.ids.append(recording.pk)

    @precondition(lambda self: self.ids)
    @rule(i=st.integers(min_value=0), evidence=st.booleans())
    def flag(self, i, evidence):
        recording = Recording.objects.get(pk=self.ids[i % len(self.ids)])
        try:
            recording_flag(
                recording=recording,
                actor=self.sergeant,
                reason="test",
                kind=FlagKind.EVIDENCE if evidence else FlagKind.POLICING_PURPOSE,
                crime_reference="5201234/26" if evidence else "",
            )
        except FlagError:
            assert (
                recording.state != RecordingState.AVAILABLE
                or Recording.objects.get(pk=recording.pk).state != RecordingState.AVAILABLE
            )

    @precondition(lambda self: self.ids)
    @rule(i=st.integers(min_value=0))
    def request_hold(self, i):
        recording = Recording.objects.get(pk=self.ids[i % len(self.ids)])
        try:
            hold_place(
                recording=recording,
                source=HoldSource.ACCESS_REQUEST,
                actor=None,
                reason="access request",
                source_ref=f"request:{i}",
            )
        except RecordingGone:
            assert recording.state != RecordingState.AVAILABLE

    def _liftable(self):
        # A case's hold is lifted only by taking the recording off the case or closing the case.
        return Hold.objects.filter(recording_id__in=self.ids, active=True).exclude(
            source=HoldSource.CASE
        )

    @precondition(lambda self: self._liftable().exists())
    @rule(i=st.integers(min_value=0))
    def lift(self, i):
        holds = list(self._liftable().order_by("pk"))
        hold_lift(hold=holds[i % len(holds)], actor=self.sergeant, reason="released")

    @precondition(lambda self: len(self.cases) < 4)
    @rule()
    def open_case(self):
        case = case_create(
            crime_reference="5201234/26",
            title=f"case {len(self.cases)}",
            borough=self.cam.borough,
            actor=self.sergeant,
        )
        self.cases.append(case.pk)

    def _case(self, c) -> Case:
        return Case.objects.get(pk=self.cases[c % len(self.cases)])

    @precondition(lambda self: self.ids and self.cases)
    @rule(i=st.integers(min_value=0), c=st.integers(min_value=0))
    def add_to_case(self, i, c):
        recording = Recording.objects.get(pk=self.ids[i % len(self.ids)])
        case = self._case(c)
        try:
            case_add_recording(case=case, recording=recording, actor=self.sergeant)
        except CaseError:
            # Refused only for a closed case, or footage the sweep has claimed or deleted.
            assert not case.is_open or recording.state != RecordingState.AVAILABLE

    @precondition(lambda self: self.ids and self.cases)
    @rule(i=st.integers(min_value=0), c=st.integers(min_value=0))
    def remove_from_case(self, i, c):
        recording = Recording.objects.get(pk=self.ids[i % len(self.ids)])
        case_remove_recording(
            case=self._case(c), recording=recording, actor=self.sergeant, reason="not relevant"
        )

    @precondition(lambda self: self.cases)
    @rule(c=st.integers(min_value=0))
    def close_case(self, c):
        case = self._case(c)
        try:
            case_close(case=case, actor=self.sergeant, reason="no further action")
        except CaseError:
            assert not case.is_open

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

    @rule(fail_from=st.integers(min_value=1, max_value=3))
    def storage_fails_mid_sweep(self, fail_from):
        # A store failing on demand at a chosen call is a fault a real S3 server cannot produce:
        # the store's DeleteObjects is patched to raise from that call on (fault injection).
        store = blob_store()
        real, calls = store.delete_many, []

        def failing(keys):
            calls.append(keys)
            if len(calls) >= fail_from:
                raise StorageUnavailable("S3 delete_objects: ServiceUnavailable")
            return real(keys)

        store.delete_many = failing
        try:
            run = sweep_expired_recordings(now=self.now, batch_size=2, override_reason="property")
        finally:
            del store.delete_many
        # The run gave back everything it claimed and did not delete: nothing waits on a lease.
        assert not Recording.objects.filter(sweep_claim=run.claim_token).exists()
        assert run.status in (SweepRun.Status.STORAGE_FAILED, SweepRun.Status.COMPLETED)

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
        assert (
            not self._mine()
            .filter(pk__in=held_ids)
            .exclude(state=RecordingState.AVAILABLE)
            .exists()
        )

    @invariant()
    def footage_on_an_open_case_is_held_by_it_and_kept(self):
        for case in Case.objects.filter(pk__in=self.cases):
            on_case = set(case.recordings.values_list("pk", flat=True))
            held_by_case = set(
                Hold.objects.filter(
                    source=HoldSource.CASE, source_ref=f"case:{case.pk}", active=True
                ).values_list("recording_id", flat=True)
            )
            if case.is_open:
                assert held_by_case == on_case, case.pk
                assert (
                    not self._mine()
                    .filter(pk__in=on_case)
                    .exclude(state=RecordingState.AVAILABLE)
                    .exists()
                )
            else:
                assert not held_by_case, case.pk

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
def test_retention_invariants_hold_for_any_sequence_of_events(small_clip, settings):
    settings.BWV_SWEEP_STORAGE_RETRY_SECONDS = 0
    RetentionMachine.clip = small_clip
    from hypothesis.stateful import run_state_machine_as_test

    run_state_machine_as_test(
        RetentionMachine,
        settings=hypothesis_settings(
            max_examples=12,
            stateful_step_count=14,
            deadline=None,
            suppress_health_check=list(HealthCheck),
        ),
    )
