"""S3 Object Lock on the real S3 server (its test bucket is created with Object Lock)."""

from datetime import timedelta

import pytest
from django.conf import settings
from django.utils import timezone

from blobstore import blob_store
from bwv.celery import app
from retention.objectlock import object_lock_selfcheck
from retention.services import hold_lift
from review.models import FlagKind
from review.services import recording_flag
from tests import factories as f

pytestmark = pytest.mark.django_db


@pytest.fixture
def eager_tasks():
    app.conf.task_always_eager = True
    yield
    app.conf.task_always_eager = False


def _legal_hold(key: str) -> str:
    store = blob_store()
    return store.client.get_object_legal_hold(Bucket=store.bucket, Key=key)["LegalHold"]["Status"]


def test_the_test_bucket_really_has_object_lock():
    assert settings.S3_OBJECT_LOCK, "make test creates its bucket with Object Lock"


def test_the_self_check_proves_a_held_version_cannot_be_deleted():
    ok, message = object_lock_selfcheck()
    assert ok, message


def test_evidence_gets_an_s3_legal_hold_lifted_with_the_flag(
    eager_tasks, django_capture_on_commit_callbacks
):
    recording = f.ingested_recording(start=timezone.now() - timedelta(days=2))
    sergeant = f.user("custody_sergeant")
    with django_capture_on_commit_callbacks(execute=True):
        recording_flag(
            recording=recording,
            kind=FlagKind.EVIDENCE,
            actor=sergeant,
            crime_reference="5201234/26",
            reason="assault",
        )
    assert _legal_hold(recording.storage_key) == "ON"
    assert _legal_hold(recording.poster_key) == "ON"
    with django_capture_on_commit_callbacks(execute=True):
        hold_lift(hold=recording.holds.get(), actor=sergeant, reason="no further action")
    assert _legal_hold(recording.storage_key) == "OFF"


def test_a_policing_purpose_flag_does_not_lock_the_object(
    eager_tasks, django_capture_on_commit_callbacks
):
    recording = f.ingested_recording(start=timezone.now() - timedelta(days=2))
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        recording_flag(
            recording=recording,
            kind=FlagKind.POLICING_PURPOSE,
            actor=f.user("custody_sergeant"),
            reason="intelligence",
        )
    assert callbacks == []
