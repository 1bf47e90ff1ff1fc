from datetime import timedelta

import pytest
from django.db import IntegrityError, transaction
from django.utils import timezone

from common.roles import Role
from custody.models import AuditEvent
from devices.models import CameraAssignment, CameraStatus
from devices.selectors import officer_holding_camera
from devices.services import CameraError, camera_issue, camera_return
from tests import factories as f

pytestmark = pytest.mark.django_db


def test_database_refuses_a_second_open_assignment_of_one_camera():
    cam = f.camera()
    first, second = f.officer(), f.officer()
    now = timezone.now()
    CameraAssignment.objects.create(camera=cam, officer=first, issued_at=now)
    # Straight to the table, past every service: the constraint itself must refuse it.
    with pytest.raises(IntegrityError), transaction.atomic():
        CameraAssignment.objects.create(camera=cam, officer=second, issued_at=now)
    assert CameraAssignment.objects.filter(camera=cam, returned_at__isnull=True).count() == 1


def test_a_returned_camera_can_be_issued_again_and_history_is_kept():
    cam = f.camera()
    admin = f.user(Role.BOROUGH_ADMIN)
    a, b = f.officer(), f.officer()
    camera_issue(camera=cam, officer=a, actor=admin)
    camera_return(camera=cam, actor=admin)
    camera_issue(camera=cam, officer=b, actor=admin)
    history = list(CameraAssignment.objects.filter(camera=cam).order_by("issued_at"))
    assert [h.officer for h in history] == [a, b]
    assert history[0].returned_at is not None and history[1].returned_at is None
    cam.refresh_from_db()
    assert cam.status == CameraStatus.ISSUED


def test_issuing_an_issued_camera_fails_with_a_clear_message():
    cam, _holder = f.issued_camera()
    admin = f.user(Role.BOROUGH_ADMIN)
    with pytest.raises(CameraError, match="already issued"):
        camera_issue(camera=cam, officer=f.officer(), actor=admin)


def test_issue_and_return_are_audited_with_the_actor():
    cam = f.camera()
    admin = f.user(Role.BOROUGH_ADMIN)
    camera_issue(camera=cam, officer=f.officer(), actor=admin)
    camera_return(camera=cam, actor=admin, note="end of secondment")
    events = AuditEvent.objects.filter(object_type="devices.camera", object_id=str(cam.pk))
    assert [e.action for e in events] == ["camera.issued", "camera.returned"]
    assert all(e.actor_user_id == admin.pk for e in events)


def test_the_officer_on_a_recording_is_the_one_holding_the_camera_at_its_start():
    cam = f.camera()
    admin = f.user(Role.BOROUGH_ADMIN)
    morning, evening = f.officer(), f.officer()
    t0 = timezone.now() - timedelta(days=2)
    camera_issue(camera=cam, officer=morning, actor=admin, at=t0)
    camera_return(camera=cam, actor=admin, at=t0 + timedelta(hours=8))
    camera_issue(camera=cam, officer=evening, actor=admin, at=t0 + timedelta(hours=9))

    assert officer_holding_camera(camera=cam, at=t0 - timedelta(minutes=1)) is None
    assert officer_holding_camera(camera=cam, at=t0) == morning
    assert officer_holding_camera(camera=cam, at=t0 + timedelta(hours=7, minutes=59)) == morning
    # Returned at 8h: a clip starting then belongs to nobody until the next issue.
    assert officer_holding_camera(camera=cam, at=t0 + timedelta(hours=8)) is None
    assert officer_holding_camera(camera=cam, at=t0 + timedelta(hours=10)) == evening


def test_ingested_recording_carries_the_holder_at_its_start_not_at_upload():
    cam = f.camera()
    admin = f.user(Role.BOROUGH_ADMIN)
    earlier, later = f.officer(), f.officer()
    t0 = timezone.now() - timedelta(days=1)
    camera_issue(camera=cam, officer=earlier, actor=admin, at=t0)
    camera_return(camera=cam, actor=admin, at=t0 + timedelta(hours=4))
    camera_issue(camera=cam, officer=later, actor=admin, at=t0 + timedelta(hours=5))
    # Recorded during the first shift, uploaded now while the second officer holds the camera.
    recording = f.ingested_recording(cam=cam, start=t0 + timedelta(hours=1))
    assert recording.officer == earlier


@pytest.mark.django_db(transaction=True)
def test_two_admins_issuing_one_camera_at_once_exactly_one_wins():
    import threading

    from django.db import connection

    cam = f.camera()
    admins = [f.user(Role.BOROUGH_ADMIN), f.user(Role.BOROUGH_ADMIN)]
    officers = [f.officer(), f.officer()]
    barrier = threading.Barrier(2)
    outcomes = []

    def issue(i):
        try:
            barrier.wait()
            camera_issue(camera=cam, officer=officers[i], actor=admins[i])
            outcomes.append("issued")
        except CameraError as exc:
            outcomes.append(str(exc))
        finally:
            connection.close()

    threads = [threading.Thread(target=issue, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert sorted(o.split(" to ")[0] for o in outcomes) == sorted(
        ["issued", f"camera {cam.serial} is already issued"]
    )
    assert CameraAssignment.objects.filter(camera=cam, returned_at__isnull=True).count() == 1
    assert AuditEvent.objects.filter(action="camera.issued", object_id=str(cam.pk)).count() == 1
