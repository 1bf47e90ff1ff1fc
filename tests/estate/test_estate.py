"""Borough camera administration: scope, issuing rules, lifecycle, docks, imports, dashboard."""

import re
from datetime import timedelta

import pytest
from django.core import mail
from django.utils import timezone

from common.roles import Role
from custody.models import AuditEvent
from devices.models import (
    Camera,
    CameraAssignment,
    CameraStatus,
    CameraStatusChange,
    Dock,
    LostCameraAlert,
    Officer,
)
from devices.services import (
    CameraError,
    ImportRefused,
    camera_bulk_issue,
    camera_issue,
    camera_return,
    camera_transfer,
    officers_import,
)
from estate.services import camera_status_change
from tests import factories as f
from tests.html import Page

pytestmark = pytest.mark.django_db


@pytest.fixture
def camden():
    """One of each in Camden (EK), which a Harrow admin must not see."""
    cam = f.camera(borough_code="EK")
    officer = f.officer(borough_code="EK")
    dock, _ = f.dock(borough_code="EK")
    return {"camera": cam, "officer": officer, "dock": dock}


# -- Permission matrix ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("role", "borough", "expected"),
    [
        (None, None, 302),
        (Role.CUSTODY_SERGEANT, "QA", 403),
        (Role.OFFICER, "QA", 403),
        (Role.BOROUGH_ADMIN, "QA", 200),
        (Role.SYSTEM_ADMIN, "QA", 200),
    ],
)
def test_estate_pages_by_role(client, role, borough, expected):
    if role is not None:
        f.signed_in(client, role, borough_code=borough)
    for url in (
        "/estate/",
        "/estate/officers/",
        "/estate/cameras/",
        "/estate/docks/",
        "/estate/units/",
        "/estate/alerts/",
        "/estate/?csv=rollout",
    ):
        assert client.get(url).status_code == expected, url


def test_a_harrow_admin_cannot_see_or_change_camdens_officers_cameras_or_docks(client, camden):
    f.signed_in(client, Role.BOROUGH_ADMIN, borough_code="QA")
    cam, officer, dock = camden["camera"], camden["officer"], camden["dock"]
    for url in (
        f"/estate/cameras/{cam.pk}/",
        f"/estate/officers/{officer.pk}/",
        f"/estate/docks/{dock.pk}/",
    ):
        assert client.get(url).status_code == 404, url
    attempts = [
        (f"/estate/cameras/{cam.pk}/", {"action": "status", "status": "lost", "reason": "x"}),
        (f"/estate/cameras/{cam.pk}/", {"action": "issue", "collar_number": officer.collar_number}),
        (f"/estate/docks/{dock.pk}/", {"action": "revoke", "reason": "x"}),
        (f"/estate/docks/{dock.pk}/", {"action": "rotate", "confirm": "yes"}),
    ]
    for url, data in attempts:
        assert client.post(url, data).status_code == 404, (url, data)
    lists = [
        client.get(u).content.decode()
        for u in ("/estate/cameras/", "/estate/officers/", "/estate/docks/")
    ]
    assert all(cam.serial not in page and officer.collar_number not in page for page in lists)
    # Nor can Harrow issue its own camera to a Camden officer by typing the collar number.
    mine = f.camera(borough_code="QA")
    client.post(
        f"/estate/cameras/{mine.pk}/", {"action": "issue", "collar_number": officer.collar_number}
    )
    cam.refresh_from_db()
    dock.refresh_from_db()
    assert cam.status == CameraStatus.IN_STOCK and dock.revoked_at is None
    assert not CameraAssignment.objects.exists()


def test_a_camden_dashboard_shows_no_harrow_figures(client):
    f.camera(borough_code="QA")
    f.signed_in(client, Role.BOROUGH_ADMIN, borough_code="EK")
    figures = client.get("/estate/").context["f"]
    assert [r["code"] for r in figures["rollout"]] == ["EK"]


# -- Issuing ----------------------------------------------------------------------------------------


def test_an_admin_issues_by_collar_number_and_the_history_records_it(client):
    admin = f.signed_in(client, Role.BOROUGH_ADMIN)
    cam, officer = f.camera(), f.officer()
    response = client.post(
        f"/estate/cameras/{cam.pk}/", {"action": "issue", "collar_number": officer.collar_number}
    )
    assert response.status_code == 302
    assignment = CameraAssignment.objects.get(camera=cam)
    assert assignment.officer == officer and assignment.issued_by == admin
    assert CameraStatusChange.objects.get(camera=cam).to_status == CameraStatus.ISSUED
    assert AuditEvent.objects.filter(action="camera.issued", object_id=str(cam.pk)).count() == 1


def test_one_camera_of_a_kind_unless_the_admin_says_why():
    admin = f.user(Role.BOROUGH_ADMIN)
    officer = f.officer()
    first, second = f.camera(), f.camera()
    camera_issue(camera=first, officer=officer, actor=admin)
    with pytest.raises(CameraError, match=f"already holds .* camera {first.serial}"):
        camera_issue(camera=second, officer=officer, actor=admin)
    with pytest.raises(CameraError, match="say why"):
        camera_issue(camera=second, officer=officer, actor=admin, allow_second=True)
    camera_issue(
        camera=second,
        officer=officer,
        actor=admin,
        allow_second=True,
        note="firearms deployment needs a spare",
    )
    event = AuditEvent.objects.filter(action="camera.issued", object_id=str(second.pk)).get()
    assert event.detail["second_camera"] == first.serial


def test_transfer_closes_one_assignment_and_opens_the_next_at_the_same_instant():
    admin = f.user(Role.BOROUGH_ADMIN)
    cam, a, b = f.camera(), f.officer(), f.officer()
    camera_issue(camera=cam, officer=a, actor=admin)
    camera_transfer(camera=cam, officer=b, actor=admin, note="shift change")
    old, new = CameraAssignment.objects.filter(camera=cam).order_by("issued_at", "id")
    assert old.officer == a and new.officer == b and old.returned_at == new.issued_at
    with pytest.raises(CameraError, match="already held"):
        camera_transfer(camera=cam, officer=b, actor=admin)
    assert CameraAssignment.objects.filter(camera=cam, returned_at__isnull=True).get().officer == b


def test_bulk_issue_is_all_or_nothing_and_names_the_bad_lines():
    admin = f.user(Role.BOROUGH_ADMIN)
    cams = [f.camera() for _ in range(3)]
    officers = [f.officer() for _ in range(3)]
    lines = [f"{c.serial}, {o.collar_number}" for c, o in zip(cams, officers, strict=True)]
    lines[1] = f"{cams[1].serial}, NO-SUCH-OFFICER"
    with pytest.raises(ImportRefused) as refused:
        camera_bulk_issue(lines=lines + ["nonsense"], borough_ids=[cams[0].borough_id], actor=admin)
    assert [(e.row, e.message) for e in refused.value.errors] == [
        (2, "no officer NO-SUCH-OFFICER in your borough"),
        (4, "expected: camera serial, collar number"),
    ]
    assert not CameraAssignment.objects.exists()
    lines[1] = f"{cams[1].serial}, {officers[1].collar_number}"
    assert camera_bulk_issue(lines=lines, borough_ids=[cams[0].borough_id], actor=admin) == 3
    assert CameraAssignment.objects.filter(returned_at__isnull=True).count() == 3


def test_officers_check_pool_cameras_out_and_in(client):
    officer_user = f.signed_in(client, Role.OFFICER)
    pool = f.camera(shared_pool=True)
    personal = f.camera()
    client.post("/pool/", {"action": "out", "serial": personal.serial})
    assert not CameraAssignment.objects.exists()  # a personal camera is not in the pool
    client.post("/pool/", {"action": "out", "serial": pool.serial})
    assignment = CameraAssignment.objects.get(camera=pool)
    assert assignment.officer == officer_user.officer and assignment.returned_at is None
    client.post("/pool/", {"action": "in", "serial": pool.serial})
    assignment.refresh_from_db()
    assert assignment.returned_at is not None
    actions = list(
        AuditEvent.objects.filter(object_id=str(pool.pk)).values_list("action", flat=True)
    )
    assert actions == ["camera.checked_out", "camera.checked_in"]


# -- Lifecycle --------------------------------------------------------------------------------------


def test_reporting_a_camera_lost_closes_its_assignment_and_raises_an_alert(settings):
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    admin = f.user(Role.BOROUGH_ADMIN)
    admin.email = "harrow.admin@met.example"
    admin.save()
    cam, officer = f.camera(), f.officer()
    docked = timezone.now() - timedelta(days=2)
    Camera.objects.filter(pk=cam.pk).update(last_docked_at=docked)
    camera_issue(camera=cam, officer=officer, actor=admin)
    with pytest.raises(CameraError, match="say why"):
        camera_status_change(camera=cam, status=CameraStatus.LOST, actor=admin, reason=" ")
    from django.test import TestCase

    with TestCase.captureOnCommitCallbacks(execute=True):
        camera_status_change(
            camera=cam, status=CameraStatus.LOST, actor=admin, reason="dropped during a foot chase"
        )
    cam.refresh_from_db()
    assert cam.status == CameraStatus.LOST and cam.status_reason == "dropped during a foot chase"
    assert not CameraAssignment.objects.filter(camera=cam, returned_at__isnull=True).exists()
    alert = LostCameraAlert.objects.get(camera=cam)
    assert alert.last_docked_at == docked
    assert alert.summary["holders_since_last_dock"][0]["officer"] == officer.display_name
    assert len(mail.outbox) == 1 and cam.serial in mail.outbox[0].subject
    assert "may still be on it" in mail.outbox[0].body
    with pytest.raises(CameraError, match="cannot become"):
        camera_status_change(camera=cam, status=CameraStatus.FAULTY, actor=admin, reason="x")
    camera_status_change(camera=cam, status=CameraStatus.IN_STOCK, actor=admin, reason="found")
    alert.refresh_from_db()
    assert alert.closed_at is not None and alert.closed_reason == "found"


def test_a_camera_retires_only_when_its_clips_are_all_uploaded():
    admin = f.user(Role.BOROUGH_ADMIN)
    cam, officer = f.camera(), f.officer()
    camera_issue(camera=cam, officer=officer, actor=admin)
    camera_return(camera=cam, actor=admin)
    with pytest.raises(CameraError, match="not been docked since it was last used"):
        camera_status_change(
            camera=cam, status=CameraStatus.RETIRED, actor=admin, reason="end of life"
        )
    Camera.objects.filter(pk=cam.pk).update(last_docked_at=timezone.now())
    camera_status_change(camera=cam, status=CameraStatus.RETIRED, actor=admin, reason="end of life")
    cam.refresh_from_db()
    assert cam.status == CameraStatus.RETIRED
    with pytest.raises(CameraError):
        camera_issue(camera=cam, officer=officer, actor=admin)
    steps = list(
        CameraStatusChange.objects.filter(camera=cam)
        .order_by("changed_at", "id")
        .values_list("to_status", flat=True)
    )
    assert steps == [CameraStatus.ISSUED, CameraStatus.IN_STOCK, CameraStatus.RETIRED]


def test_a_camera_with_an_unfinished_upload_cannot_retire(small_clip):
    import io

    from evidence.ingest import upload_append, upload_create

    admin = f.user(Role.BOROUGH_ADMIN)
    cam = f.camera()
    dock, _ = f.dock()
    upload = upload_create(
        dock=dock, length=len(small_clip), metadata=f.clip_metadata(cam, small_clip)
    )
    upload_append(
        upload_id=upload.id,
        dock=dock,
        offset=0,
        body=io.BytesIO(small_clip[:1000]),
        content_length=1000,
    )
    cam.refresh_from_db()
    assert cam.last_docked_at is not None  # the dock's upload says the camera was docked
    with pytest.raises(CameraError, match="1 upload"):
        camera_status_change(camera=cam, status=CameraStatus.RETIRED, actor=admin, reason="old")


# -- Docks ------------------------------------------------------------------------------------------


def test_a_dock_key_is_shown_once_and_can_be_rotated_and_revoked(client):
    f.signed_in(client, Role.BOROUGH_ADMIN)
    page = client.post("/estate/docks/", {"station": "Harrow", "name": "Custody dock 2"})
    key = page.context["new_key"]
    assert key.startswith("bwvdock_") and key.encode() in page.content
    dock = Dock.objects.get(name="Custody dock 2")
    assert key.encode() not in client.get(f"/estate/docks/{dock.pk}/").content
    # A new key stops the dock until it is entered: asked to confirm first, nothing changes.
    unconfirmed = client.post(f"/estate/docks/{dock.pk}/", {"action": "rotate"})
    assert unconfirmed.context["new_key"] is None and b"Tick the box" in unconfirmed.content
    dock.refresh_from_db()
    assert dock.key_rotated_at is None
    rotated = client.post(
        f"/estate/docks/{dock.pk}/", {"action": "rotate", "confirm": "yes"}
    ).context["new_key"]
    assert rotated != key
    client.post(f"/estate/docks/{dock.pk}/", {"action": "revoke", "reason": "stolen"})
    dock.refresh_from_db()
    assert dock.revoked_at is not None
    assert set(
        AuditEvent.objects.filter(object_id=str(dock.pk)).values_list("action", flat=True)
    ) == {"dock.registered", "dock.key_rotated", "dock.revoked"}


# -- Bulk import ------------------------------------------------------------------------------------


def test_an_officer_csv_with_one_bad_row_changes_nothing_and_names_it():
    admin = f.user(Role.BOROUGH_ADMIN)
    borough = admin.officer.borough
    before = Officer.objects.count()
    text = (
        "collar_number,first_name,last_name,rank,unit\n"
        "QA1001,Amy,Jones,pc,\n"
        "QA1002,Ben,<script>x</script>,constable?,\n"
        "QA1001,Cat,Smith,pcso,\n"
    )
    with pytest.raises(ImportRefused) as refused:
        officers_import(text=text, borough=borough, actor=admin)
    errors = {e.row: e.message for e in refused.value.errors}
    assert set(errors) == {3, 4}
    assert "rank 'constable?'" in errors[3] and "repeats row 2" in errors[4]
    assert Officer.objects.count() == before
    fixed = text.replace("constable?", "Police Constable").replace("QA1001,Cat", "QA1003,Cat")
    assert officers_import(text=fixed, borough=borough, actor=admin) == 3
    assert Officer.objects.get(collar_number="QA1002").last_name == "<script>x</script>"


def test_a_camera_csv_is_checked_whole(client):
    admin = f.signed_in(client, Role.BOROUGH_ADMIN)
    from django.core.files.uploadedfile import SimpleUploadedFile

    bad = SimpleUploadedFile(
        "cams.csv", b"serial,model,kind,shared_pool\nQA-C1,Axon,body,yes\nQA C2,Axon,drone,maybe\n"
    )
    response = client.post("/estate/cameras/", {"file": bad})
    assert response.status_code == 400
    report = Page(response.content).words("import-report")
    # Row 3 of the file, the bad one, with what to fix.
    assert "Nothing was changed" in report and "3 serial must be 1-64 characters" in report
    assert not Camera.objects.filter(serial="QA-C1").exists()
    for payload, message in [
        (b"\xff\xfe\x00junk", b"not UTF-8"),
        (b"model\nx\n", b"serial"),
        (b"serial\n", b"no rows"),
    ]:
        response = client.post("/estate/cameras/", {"file": SimpleUploadedFile("x.csv", payload)})
        assert response.status_code == 400 and message in response.content
    good = SimpleUploadedFile("cams.csv", b"serial,model,kind,shared_pool\nQA-C1,Axon,body,yes\n")
    assert client.post("/estate/cameras/", {"file": good}).status_code == 302
    assert Camera.objects.get(serial="QA-C1").shared_pool is True
    assert AuditEvent.objects.get(action="cameras.imported").actor_user_id == admin.pk


# -- Dashboard --------------------------------------------------------------------------------------


def test_the_dashboard_counts_issued_cameras_against_target_and_exports_csv(client):
    admin = f.signed_in(client, Role.BOROUGH_ADMIN)
    for _ in range(3):
        camera_issue(camera=f.camera(), officer=f.officer(), actor=admin)
    f.recording_row(cam=f.camera(), held=True)  # a camera in stock: not in use, so not listed
    f.force(camera_target=22_000)
    response = client.get("/estate/?days=3")
    figures = response.context["f"]
    harrow = figures["rollout"][0]
    assert (harrow["code"], harrow["issued"], harrow["target"]) == ("QA", 3, 270)
    # A borough admin answers for the borough's target, not the force's.
    assert (figures["total_issued"], figures["target"]) == (3, 270)
    assert "Harrow's target" in figures["target_label"]
    assert b"22,000" not in response.content and b"22000" not in response.content
    assert response.context["page"].paginator.count == 3
    assert figures["flagged"][0]["share_percent"] == 100.0
    assert b'<svg class="chart" id="chart-rollout"' in response.content
    assert b"Target: 270" in response.content
    csv_text = client.get("/estate/?csv=rollout").content.decode()
    assert csv_text.splitlines()[0] == "borough,code,issued,registered,target,go_live"
    assert ",QA,3," in csv_text


def test_bulk_issue_from_the_page_names_the_bad_line_and_issues_nothing(client):
    f.signed_in(client, Role.BOROUGH_ADMIN)
    cam, officer = f.camera(), f.officer()
    camden = f.camera(borough_code="EK")
    lines = f"{cam.serial}, {officer.collar_number}\n{camden.serial}, {officer.collar_number}"
    response = client.post("/estate/cameras/", {"action": "bulk_issue", "lines": lines})
    assert response.status_code == 400
    assert f"no camera {camden.serial} in your borough".encode() in response.content
    assert not CameraAssignment.objects.exists()
    response = client.post(
        "/estate/cameras/", {"action": "bulk_issue", "lines": lines.split("\n")[0]}
    )
    assert response.status_code == 302
    assert CameraAssignment.objects.get().officer == officer


def test_a_system_admin_sees_the_forces_target_and_every_borough(client):
    f.signed_in(client, Role.SYSTEM_ADMIN)
    f.force(camera_target=22_000)
    f.issued_camera()
    f.issued_camera(borough_code="EK")
    response = client.get("/estate/")
    figures = response.context["f"]
    assert (figures["total_issued"], figures["target"]) == (2, 22_000)
    assert figures["target_label"] == "the force's target"
    assert {r["code"] for r in figures["rollout"]} >= {"QA", "EK"}
    assert Page(response.content).words("total-issued") == "2 of 22,000"


def test_the_charts_are_on_a_true_scale_with_axes_legend_and_table(client):
    f.signed_in(client, Role.BOROUGH_ADMIN)
    for n in range(5):
        f.recording_row(held=n < 2)  # 2 of 5: 40 % held
    html = client.get("/estate/").content.decode()
    chart = html[
        html.index('id="chart-flagged"') : html.index("</svg>", html.index('id="chart-flagged"'))
    ]
    # The scale of a share runs from 0 to 100 %: a 40 % bar is 40 % of the axis.
    bar = re.search(r'<rect class="bar" x="(\d+)" y="\d+" width="([\d.]+)"', chart)
    axis = re.search(r'<line class="axis" x1="(\d+)" x2="(\d+)" y1="(\d+)" y2="\3"', chart)
    plot = int(axis.group(2)) - int(axis.group(1))
    assert float(bar.group(2)) / plot == pytest.approx(0.4, abs=0.002)
    ticks = re.findall(r'<text class="tick"[^>]*>([^<]+)</text>', chart)
    assert ticks[0] == "0" and ticks[-1] == "100"
    assert "Share held (%)" in chart  # the axis and its unit
    assert '<text class="legend"' in chart
    table = Page(html).words("chart-flagged-table")
    assert "Harrow 40.0" in table


def test_the_undocked_cameras_page_by_50_and_the_csv_has_them_all(client):
    f.signed_in(client, Role.BOROUGH_ADMIN)
    old = timezone.now() - timedelta(days=30)
    cameras = [f.camera(status="issued", last_docked_at=old) for _ in range(55)]
    response = client.get("/estate/")
    assert len(response.context["undocked"]) == 50
    assert response.context["page"].paginator.count == 55
    assert 'rel="next"' in response.content.decode()
    rows = client.get("/estate/?csv=undocked").content.decode().splitlines()
    assert rows[0] == "serial,borough,status,last_docked" and len(rows) == 56
    assert {c.serial for c in cameras} == {line.split(",")[0] for line in rows[1:]}
