"""Court export bundles, share links and the offline verifier, against the real store."""

import ast
import hashlib
import importlib.util
import io
import json
import random
import sys
import zipfile
from datetime import timedelta
from pathlib import Path

import pytest
from django.utils import timezone

from bwv.roles import Role
from evidence import audit
from evidence.models import AuditEvent, ShareLink
from evidence.services import ExportError, export_create, recording_flag
from tests import factories as f

pytestmark = pytest.mark.django_db
ROOT = Path(__file__).resolve().parents[2]
VERIFIER = ROOT / "tools" / "verify_bundle.py"


def _verifier():
    spec = importlib.util.spec_from_file_location("verify_bundle", VERIFIER)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _verify(path, capsys, key=None) -> tuple[int, str]:
    code = _verifier().main([str(path)] + (["--public-key", key] if key else []))
    out = capsys.readouterr()
    return code, out.out + out.err


@pytest.fixture
def exported(client, small_clip):
    """A flagged recording on a case, exported by a sergeant, and the downloaded bundle."""
    from evidence.services import case_add_recording, case_create

    sergeant = f.signed_in(client, Role.CUSTODY_SERGEANT)
    recording = f.ingested_recording(data=small_clip)
    other = f.ingested_recording(cam=recording.camera)
    recording_flag(recording=recording, kind="evidence", actor=sergeant, reason="assault",
                   crime_reference="5201234/26")  # fmt: skip
    case = case_create(crime_reference="5201234/26", title="R v Doe", borough=recording.borough,
                       actor=sergeant)  # fmt: skip
    case_add_recording(case=case, recording=recording, actor=sergeant)
    case_add_recording(case=case, recording=other, actor=sergeant)
    export = export_create(actor=sergeant, recordings=[recording, other], case=case,
                           recipient="CPS London North", purpose="charging file R v Doe")  # fmt: skip
    response = client.get(f"/exports/{export.pk}/bundle.zip")
    assert response.status_code == 200
    assert response["Content-Type"] == "application/zip"
    data = b"".join(response.streaming_content)
    return {"export": export, "recordings": [recording, other], "data": data,
            "sergeant": sergeant, "clip": small_clip}  # fmt: skip


def test_the_bundle_verifies_offline_with_the_published_key(exported, tmp_path, capsys):
    path = tmp_path / "bundle.zip"
    path.write_bytes(exported["data"])
    code, output = _verify(path, capsys, key=audit.public_key_b64())
    assert code == 0, output
    assert "OK: every check holds" in output and "2 original clips" in output


def test_the_bundle_holds_the_original_clips_manifest_custody_and_statement(exported):
    with zipfile.ZipFile(io.BytesIO(exported["data"])) as zf:  # any unzip tool opens it
        assert zf.testzip() is None
        names = zf.namelist()
        manifest = json.loads(zf.read("manifest.json"))
        clips = [n for n in names if n.startswith("footage/")]
        assert len(clips) == 2
        first = next(e for e in manifest["files"]
                     if e["recording"]["id"] == str(exported["recordings"][0].pk))  # fmt: skip
        assert zf.read(first["path"]) == exported["clip"]
        assert first["sha256"] == hashlib.sha256(exported["clip"]).hexdigest()
        assert first["recording"]["flags"][0]["crime_reference"] == "5201234/26"
        assert first["recording"]["cases"] == ["5201234/26"]
        assert first["recording"]["camera"] == exported["recordings"][0].camera.serial
        assert manifest["recipient"] == "CPS London North"
        custody = [json.loads(line) for line in zf.read("custody.jsonl").splitlines()]
        actions = {json.loads(e["body"])["action"] for e in custody}
        assert {"recording.ingested", "recording.flagged", "case.recording_added",
                "recording.exported", "recording.disclosed"} <= actions  # fmt: skip
        assert b"Continuity statement" in zf.read("continuity.html")
        checkpoint = json.loads(zf.read("checkpoint.json"))
        assert checkpoint["statement"]["seq"] >= max(e["seq"] for e in custody)


def test_a_verifier_that_needs_only_the_standard_library_and_cryptography():
    tree = ast.parse(VERIFIER.read_text())
    imported = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            imported |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0:
            imported.add(node.module.split(".")[0])
    assert imported - set(sys.stdlib_module_names) == {"cryptography"}


def _regions(data: bytes) -> list[tuple[int, int, str]]:
    """(start, end, member name) of each member's header, data and descriptor."""
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        infos = sorted(zf.infolist(), key=lambda i: i.header_offset)
        cd_start = zf.start_dir
    bounds = [i.header_offset for i in infos] + [cd_start]
    return [(bounds[k], bounds[k + 1], infos[k].filename) for k in range(len(infos))]


def test_one_byte_changed_anywhere_fails_the_verifier_naming_the_file(exported, tmp_path, capsys):
    data = exported["data"]
    regions = _regions(data)
    rng = random.Random(7)
    offsets = set(rng.sample(range(len(data)), 150))
    for start, end, _ in regions:  # every header, the first and last data byte, the descriptor
        offsets |= {start, start + 14, start + 30, end - 20, end - 1, (start + end) // 2}
    offsets |= set(range(regions[-1][1], len(data), 7))  # central directory and end records
    path = tmp_path / "tampered.zip"
    key = audit.public_key_b64()
    for offset in sorted(offsets):
        tampered = bytearray(data)
        tampered[offset] ^= 0x01
        path.write_bytes(bytes(tampered))
        code, output = _verify(path, capsys, key=key)
        assert code == 1, f"a change at byte {offset} went unnoticed: {output}"
        assert "FAILED" in output
        owner = next((name for start, end, name in regions if start <= offset < end), None)
        if owner is not None:
            assert owner in output, (offset, owner, output)


def test_a_wrong_key_or_a_rewritten_manifest_fails(exported, tmp_path, capsys):
    import base64

    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
    from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

    path = tmp_path / "bundle.zip"
    path.write_bytes(exported["data"])
    stranger = (
        Ed25519PrivateKey.generate().public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    )
    code, output = _verify(path, capsys, key=base64.b64encode(stranger).decode())
    assert code == 1 and "different key" in output


def test_export_and_download_are_audited_with_the_recipient(exported):
    for recording in exported["recordings"]:
        events = {e.action: e for e in AuditEvent.objects.filter(object_id=str(recording.pk))}
        assert events["recording.exported"].recipient == "CPS London North"
        assert events["recording.exported"].justification == "charging file R v Doe"
        assert events["recording.disclosed"].detail["via"] == "download"
        assert events["recording.disclosed"].actor_user_id == exported["sergeant"].pk


def test_an_export_needs_a_recipient_a_purpose_and_one_borough(small_clip):
    sergeant = f.user(Role.CUSTODY_SERGEANT)
    recording = f.ingested_recording(data=small_clip)
    with pytest.raises(ExportError, match="who"):
        export_create(actor=sergeant, recordings=[recording], recipient=" ", purpose="x")
    with pytest.raises(ExportError, match="why"):
        export_create(actor=sergeant, recordings=[recording], recipient="CPS", purpose="")
    elsewhere = f.recording_row(cam=f.camera(borough_code="EK"))
    with pytest.raises(ExportError, match="one borough"):
        export_create(actor=sergeant, recordings=[recording, elsewhere], recipient="CPS",
                      purpose="x")  # fmt: skip
    assert not AuditEvent.objects.filter(action="recording.exported").exists()


def test_a_deleted_recording_cannot_be_exported(small_clip):
    from evidence.models import RecordingState

    sergeant = f.user(Role.CUSTODY_SERGEANT)
    recording = f.recording_row(state=RecordingState.DELETED)
    with pytest.raises(ExportError, match="no longer available"):
        export_create(actor=sergeant, recordings=[recording], recipient="CPS", purpose="x")


def test_a_bundle_streams_in_bounded_memory(big_clip):
    import tracemalloc

    from evidence.exports import bundle_stream

    sergeant = f.user(Role.CUSTODY_SERGEANT)
    recording = f.ingested_recording(data=big_clip)
    export = export_create(actor=sergeant, recordings=[recording], recipient="CPS", purpose="x")
    tracemalloc.start()
    total = 0
    for chunk in bundle_stream(export):
        total += len(chunk)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert total > len(big_clip) > 16 * 2**20
    assert peak < 8 * 2**20, (
        f"peak {peak / 2**20:.1f} MiB for a {len(big_clip) / 2**20:.0f} MiB clip"
    )


# -- Share links --------------------------------------------------------------------------------------


def _share(client, exported, days=7) -> str:
    export = exported["export"]
    response = client.post(f"/exports/{export.pk}/share",
                           {"email": "lawyer@cps.gov.uk", "days": days})  # fmt: skip
    assert response.status_code == 302
    page = client.get(f"/exports/{export.pk}/")
    link = page.context["new_link"]
    assert link and "/share/" in link
    assert client.get(f"/exports/{export.pk}/").context["new_link"] is None  # shown once
    return link.split("/share/")[1].strip("/")


def test_a_prosecutor_downloads_through_a_share_link_and_it_is_audited(
    client, exported, tmp_path, capsys
):
    from django.test import Client

    token = _share(client, exported)
    outsider = Client()  # no account
    page = outsider.get(f"/share/{token}/")
    assert page.status_code == 200 and b"lawyer@cps.gov.uk" in page.content
    response = outsider.get(f"/share/{token}/bundle.zip", REMOTE_ADDR="198.51.100.7")
    assert response.status_code == 200
    path = tmp_path / "shared.zip"
    path.write_bytes(b"".join(response.streaming_content))
    assert _verify(path, capsys, key=audit.public_key_b64())[0] == 0
    shared = AuditEvent.objects.filter(
        action="recording.disclosed", actor_label__startswith="share:"
    )
    assert shared.count() == 2
    assert {e.recipient for e in shared} == {"lawyer@cps.gov.uk"}
    assert {e.detail["ip"] for e in shared} == {"198.51.100.7"}
    assert AuditEvent.objects.filter(action="recording.shared").count() == 2
    assert ShareLink.objects.get().access_count == 1


def test_an_expired_or_revoked_link_is_gone_and_the_attempt_audited(client, exported):
    from django.test import Client

    token = _share(client, exported)
    link = ShareLink.objects.get()
    ShareLink.objects.filter(pk=link.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    outsider = Client()
    response = outsider.get(f"/share/{token}/bundle.zip")
    assert response.status_code == 410 and b"expired" in response.content
    assert AuditEvent.objects.filter(action="export.share_refused").count() == 1
    assert not AuditEvent.objects.filter(action="recording.disclosed",
                                         actor_label__startswith="share:").exists()  # fmt: skip

    token = _share(client, exported)
    second = ShareLink.objects.exclude(pk=link.pk).get()
    response = client.post(f"/exports/{exported['export'].pk}/shares/{second.pk}/revoke",
                           {"reason": "sent to the wrong address"})  # fmt: skip
    assert response.status_code == 302
    assert outsider.get(f"/share/{token}/").status_code == 410
    assert AuditEvent.objects.get(action="export.share_revoked").justification.startswith("sent")


def test_an_unknown_link_is_404_and_days_are_bounded(client, exported):
    from django.test import Client

    assert Client().get("/share/not-a-real-token/").status_code == 404
    response = client.post(f"/exports/{exported['export'].pk}/share",
                           {"email": "lawyer@cps.gov.uk", "days": 365})  # fmt: skip
    assert response.status_code == 302 and not ShareLink.objects.exists()


# -- Permission matrix ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("role", "borough", "expected"),
    [
        (None, None, 302),  # anonymous: to sign-in
        (Role.OFFICER, "QA", 404),  # cannot export: no export is in scope
        (Role.BOROUGH_ADMIN, "QA", 404),
        (Role.CUSTODY_SERGEANT, "QA", 200),
        (Role.DISCLOSURE_OFFICER, "QA", 200),
        (Role.CUSTODY_SERGEANT, "EK", 404),  # Camden cannot see Harrow's export
        (Role.SYSTEM_ADMIN, "QA", 200),
    ],
)
def test_export_pages_permission_matrix(client, role, borough, expected, small_clip):
    sergeant = f.user(Role.CUSTODY_SERGEANT)
    recording = f.ingested_recording(data=small_clip)
    export = export_create(actor=sergeant, recordings=[recording], recipient="CPS", purpose="x")
    if role is not None:
        f.signed_in(client, role, borough_code=borough)
    for url in (f"/exports/{export.pk}/", f"/exports/{export.pk}/bundle.zip"):
        response = client.get(url)
        assert response.status_code == expected, (url, response.status_code)
    disclosed = AuditEvent.objects.filter(action="recording.disclosed").count()
    assert disclosed == (1 if expected == 200 else 0)


@pytest.mark.parametrize(
    ("role", "borough", "expected"),
    [
        (None, None, 302),
        (Role.OFFICER, "QA", 403),
        (Role.CUSTODY_SERGEANT, "QA", 200),
        (Role.CUSTODY_SERGEANT, "EK", 404),
    ],
)
def test_export_new_permission_matrix(client, role, borough, expected):
    recording = f.recording_row()
    if role is not None:
        f.signed_in(client, role, borough_code=borough)
    response = client.post("/exports/new", {"ids": [str(recording.pk)], "recipient": "CPS",
                                            "purpose": "file"})  # fmt: skip
    assert response.status_code == (302 if expected == 200 else expected)
    made = AuditEvent.objects.filter(action="recording.exported").count()
    assert made == (1 if expected == 200 else 0)


def test_derived_copies_travel_with_their_original_and_say_how_they_were_made(tmp_path, capsys):
    from evidence.exports import bundle_stream
    from evidence.redaction import redaction_create
    from evidence.sample_media import make_clip

    sergeant = f.user(Role.CUSTODY_SERGEANT)
    recording = f.ingested_recording(data=make_clip(seconds=2))
    box = {"start": 0, "end": 2, "x": 10, "y": 10, "w": 32, "h": 32, "mode": "pixelate"}
    derived = redaction_create(recording=recording, boxes=[box], mutes=[], actor=sergeant,
                               purpose="witness protection")  # fmt: skip
    export = export_create(actor=sergeant, recordings=[recording], recipient="CPS", purpose="x")
    path = tmp_path / "bundle.zip"
    path.write_bytes(b"".join(bundle_stream(export)))
    assert _verify(path, capsys, key=audit.public_key_b64())[0] == 0
    with zipfile.ZipFile(path) as zf:
        manifest = json.loads(zf.read("manifest.json"))
        entry = next(e for e in manifest["files"] if e["role"] == "derived")
        assert entry["path"] == f"derived/{derived.id}.mp4"
        assert entry["derived_from"]["original_sha256"] == recording.sha256
        assert entry["derived_from"]["spec"]["boxes"][0]["mode"] == "pixelate"
        assert hashlib.sha256(zf.read(entry["path"])).hexdigest() == derived.sha256
