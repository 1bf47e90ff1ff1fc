"""A flag and the sweep contending for the same recordings, on the real PostgreSQL with real commits."""

import random
import threading
from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone

from blobstore import blob_store
from evidence.models import RecordingState
from retention.models import DeletionCertificate, Hold
from retention.sweep import sweep_expired_recordings
from review.models import FlagKind
from review.services import FlagError, recording_flag
from tests import factories as f


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("round_", range(3))
def test_a_flag_racing_the_sweep_either_wins_or_is_told_the_clip_is_gone(round_, small_clip):
    cam, _officer = f.issued_camera()
    dock, _key = f.dock()
    sergeant = f.user("custody_sergeant")
    start = timezone.now() - timedelta(days=40)
    recordings = [
        f.ingested_recording(
            cam=cam,
            dock_obj=dock,
            start=start + timedelta(minutes=i),
            data=small_clip + bytes([round_, i]) * 8,
        )
        for i in range(16)
    ]
    outcomes: dict = {}
    errors: list = []
    barrier = threading.Barrier(2)

    def flagger():
        try:
            barrier.wait()
            for recording in random.Random(round_).sample(recordings, len(recordings)):
                try:
                    recording_flag(
                        recording=recording,
                        kind=FlagKind.POLICING_PURPOSE,
                        actor=sergeant,
                        reason="race",
                    )
                    outcomes[recording.pk] = "flagged"
                except FlagError as exc:
                    outcomes[recording.pk] = str(exc)
        except Exception as exc:  # reported below
            errors.append(exc)
        finally:
            connection.close()

    def sweeper():
        try:
            barrier.wait()
            for _ in range(4):
                sweep_expired_recordings(batch_size=1, override_reason="race test")
        except Exception as exc:  # reported below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=flagger), threading.Thread(target=sweeper)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not errors, errors
    sweep_expired_recordings(override_reason="race test")  # finish whatever is unheld

    for recording in recordings:
        recording.refresh_from_db()
        held = Hold.objects.filter(recording=recording, active=True).exists()
        if outcomes[recording.pk] == "flagged":
            # The flag won: the recording and its objects are all there.
            assert held and recording.state == RecordingState.AVAILABLE
            assert blob_store().size(recording.storage_key) is not None
        else:
            # The sweep won: a clear answer, no hold was left on a deleted clip.
            assert "deleted" in outcomes[recording.pk]
            assert not held and recording.state == RecordingState.DELETED
            assert DeletionCertificate.objects.filter(recording=recording).count() == 1
