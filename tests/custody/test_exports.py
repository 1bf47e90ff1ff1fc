"""Court export bundles, share links and the offline verifier, against the real store."""

import ast
import hashlib
import io
import json
import random
import sys
import zipfile
from datetime import UTC, timedelta

import pytest
from django.utils import timezone

from common.roles import Role
from custody import audit
from custody.models import AuditEvent, ShareLink
from custody.services import ExportError, audit_record
from review.services import export_create, recording_flag
from tests import factories as f
from tests.verifier import VERIFIER, load_verifier

pytestmark = pytest.mark.django_db


def _verifier():
    return load_verifier()


def _verify(path, capsys, key=None) -> tuple[int, str]:
    code = _verifier().main([str(path)] + (["--public-key", key] if key else []))
    out = capsys.readouterr()
    return code, out.out + out.err


@pytest.fixture
def exported(client, small_clip):
    """A flagged recording on a case, exported by a sergeant, and the downloaded bundle."""
    from review.services import case_add_recording, case_create

    sergeant = f.signed_in(client, Role.CUSTODY_SERGEANT)
    recording = f.ingested_recording(data=small_clip)
    other = f.ingested_recording(cam=recording.camera)
    recording_flag(
        recording=recording,
        kind="evidence",
        actor=sergeant,
        reason="assault",
        crime_reference="5201234/26",
    )
    case = case_create(
        crime_reference="5201234/26", title="R v Doe", borough=recording.borough, actor=sergeant
    )
    case_add_recording(case=case, recording=recording, actor=sergeant)
    case_add_recording(case=case, recording=other, actor=sergeant)
    export = export_create(
        actor=sergeant,
        recordings=[recording, other],
        case=case,
        recipient="CPS London North",
        purpose="charging file R v Doe",
    )
    response = client.get(f"/exports/{export.pk}/bundle.zip")
    assert response.status_code == 200
    assert response["Content-Type"] == "application/zip"
    data = b"".join(response.streaming_content)
    return {
        "export": export,
        "recordings": [recording, other],
        "data": data,
        "sergeant": sergeant,
        "clip": small_clip,
    }


def test_the_bundle_verifies_offline_with_the_published_key(exported, tmp_path, capsys):
    path = tmp_path / "bundle.zip"
    path.write_bytes(exported["data"])
    code, output = _verify(path, capsys, key=audit.public_key_b64())
    assert code == 0, output
    assert "Court bundle check: PASSED" in output and "Every check holds" in output
    assert "Clip 2:" in output and "Clip 3:" not in output


def test_the_bundle_holds_the_original_clips_manifest_custody_and_statement(exported):
    with zipfile.ZipFile(io.BytesIO(exported["data"])) as zf:  # any unzip tool opens it
        assert zf.testzip() is None
        names = zf.namelist()
        manifest = json.loads(zf.read("manifest.json"))
        clips = [n for n in names if n.startswith("footage/")]
        assert len(clips) == 2
        first = next(
            e
            for e in manifest["files"]
            if e["recording"]["id"] == str(exported["recordings"][0].pk)
        )
        assert zf.read(first["path"]) == exported["clip"]
        assert first["sha256"] == hashlib.sha256(exported["clip"]).hexdigest()
        assert first["recording"]["flags"][0]["crime_reference"] == "5201234/26"
        assert first["recording"]["cases"] == ["5201234/26"]
        assert first["recording"]["camera"] == exported["recordings"][0].camera.serial
        assert manifest["recipient"] == "CPS London North"
        custody = [json.loads(line) for line in zf.read("custody.jsonl").splitlines()]
        actions = {json.loads(e["body"])["action"] for e in custody}
        assert {
            "recording.ingested",
            "recording.flagged",
            "case.recording_added",
            "recording.exported",
            "recording.disclosed",
        } <= actions
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
        export_create(
            actor=sergeant, recordings=[recording, elsewhere], recipient="CPS", purpose="x"
        )
    assert not AuditEvent.objects.filter(action="recording.exported").exists()


def test_a_deleted_recording_cannot_be_exported(small_clip):
    from evidence.models import RecordingState

    sergeant = f.user(Role.CUSTODY_SERGEANT)
    recording = f.recording_row(state=RecordingState.DELETED)
    with pytest.raises(ExportError, match="no longer available"):
        export_create(actor=sergeant, recordings=[recording], recipient="CPS", purpose="x")


def test_a_bundle_streams_in_bounded_memory(big_clip):
    import tracemalloc

    from review.exports import export_bundle

    sergeant = f.user(Role.CUSTODY_SERGEANT)
    recording = f.ingested_recording(data=big_clip)
    export = export_create(actor=sergeant, recordings=[recording], recipient="CPS", purpose="x")
    tracemalloc.start()
    total = 0
    for chunk in export_bundle(export):
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
    response = client.post(
        f"/exports/{export.pk}/share", {"email": "lawyer@cps.gov.uk", "days": days}
    )
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
    assert not AuditEvent.objects.filter(
        action="recording.disclosed", actor_label__startswith="share:"
    ).exists()

    token = _share(client, exported)
    second = ShareLink.objects.exclude(pk=link.pk).get()
    response = client.post(
        f"/exports/{exported['export'].pk}/shares/{second.pk}/revoke",
        {"reason": "sent to the wrong address"},
    )
    assert response.status_code == 302
    assert outsider.get(f"/share/{token}/").status_code == 410
    assert AuditEvent.objects.get(action="export.share_revoked").justification.startswith("sent")


def test_an_unknown_link_is_404_and_days_are_bounded(client, exported):
    from django.test import Client

    assert Client().get("/share/not-a-real-token/").status_code == 404
    response = client.post(
        f"/exports/{exported['export'].pk}/share", {"email": "lawyer@cps.gov.uk", "days": 365}
    )
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
    response = client.post(
        "/exports/new", {"ids": [str(recording.pk)], "recipient": "CPS", "purpose": "file"}
    )
    assert response.status_code == (302 if expected == 200 else expected)
    made = AuditEvent.objects.filter(action="recording.exported").count()
    assert made == (1 if expected == 200 else 0)


def test_derived_copies_travel_with_their_original_and_say_how_they_were_made(tmp_path, capsys):
    from evidence.redaction import redaction_create
    from evidence.sample_media import make_clip
    from review.exports import export_bundle

    sergeant = f.user(Role.CUSTODY_SERGEANT)
    recording = f.ingested_recording(data=make_clip(seconds=2))
    box = {"start": 0, "end": 2, "x": 10, "y": 10, "w": 32, "h": 32, "mode": "pixelate"}
    derived = redaction_create(
        recording=recording, boxes=[box], mutes=[], actor=sergeant, purpose="witness protection"
    )
    export = export_create(actor=sergeant, recordings=[recording], recipient="CPS", purpose="x")
    path = tmp_path / "bundle.zip"
    path.write_bytes(b"".join(export_bundle(export)))
    assert _verify(path, capsys, key=audit.public_key_b64())[0] == 0
    with zipfile.ZipFile(path) as zf:
        manifest = json.loads(zf.read("manifest.json"))
        entry = next(e for e in manifest["files"] if e["role"] == "derived")
        assert entry["path"] == f"derived/{derived.id}.mp4"
        assert entry["derived_from"]["original_sha256"] == recording.sha256
        assert entry["derived_from"]["spec"]["boxes"][0]["mode"] == "pixelate"
        assert hashlib.sha256(zf.read(entry["path"])).hexdigest() == derived.sha256


# -- The strict verifier and its report (each of these once passed a bundle it should not) ----------


def _members(data: bytes) -> list[tuple[str, bytes]]:
    """The bundle's files in their order in the ZIP."""
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        infos = sorted(zf.infolist(), key=lambda i: i.header_offset)
        return [(i.filename, zf.read(i)) for i in infos]


def _zip(members: list[tuple[str, bytes]], when) -> bytes:
    """A ZIP with exactly the bundle writer's layout, for these files, as an attacker with the
    writer's code could make it (repeated names included)."""
    from custody.zipstream import ZipStream

    zs = ZipStream(when)
    out = []
    for name, data in members:
        zs.names.clear()
        out += zs.member(name, [data], size=len(data))
    out += zs.finish()
    return b"".join(out)


def _created(data: bytes):
    from datetime import UTC, datetime

    manifest = json.loads(dict(_members(data))["manifest.json"])
    return datetime.strptime(manifest["created_at"], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)


def _signed_by_the_server(data: bytes, edit) -> bytes:
    """The bundle with its manifest edited by `edit(manifest, files)` and signed again with the
    server's own key: what a server whose database was altered would hand out, signed."""
    members = _members(data)
    files = dict(members)
    manifest = json.loads(files["manifest.json"])
    edit(manifest, files)
    for entry in manifest["files"]:
        entry["size"] = len(files[entry["path"]])
        entry["sha256"] = hashlib.sha256(files[entry["path"]]).hexdigest()
        if "ingest_sha256" in entry.get("recording", {}):  # the field the old checker trusted
            entry["recording"]["ingest_sha256"] = entry["sha256"]
    files["manifest.json"] = (json.dumps(manifest, indent=2, sort_keys=True) + "\n").encode()
    files["manifest.sig"] = (audit.sign(files["manifest.json"]) + "\n").encode()
    return _zip([(name, files[name]) for name, _ in members], _created(data))


def _check(data: bytes, tmp_path, capsys, *args, key=True) -> tuple[int, str]:
    path = tmp_path / "bundle.zip"
    path.write_bytes(data)
    argv = [str(path), *args] + (["--public-key", audit.public_key_b64()] if key else [])
    code = _verifier().main(argv)
    out = capsys.readouterr()
    return code, out.out + out.err


@pytest.mark.parametrize("name", ["footage", "manifest.json"])
def test_a_second_file_under_a_genuine_files_name_fails(exported, tmp_path, capsys, name):
    data = exported["data"]
    members = _members(data)
    target = next(n for n, _ in members if n.startswith(name))
    forged = [(target, b"an altered copy " * 64)] + members  # before the genuine one
    code, output = _check(_zip(forged, _created(data)), tmp_path, capsys)
    assert code == 1, output
    assert "two files named" in output and target in output


def test_every_date_changed_consistently_fails(exported, tmp_path, capsys):
    data = exported["data"]
    assert _zip(_members(data), _created(data)) == data  # the helpers change only the date
    moved = _zip(_members(data), _created(data) - timedelta(days=3))
    code, output = _check(moved, tmp_path, capsys)
    assert code == 1, output
    first = _members(data)[0][0]
    assert "date or time" in output and first in output


def test_files_rearranged_into_a_new_consistent_zip_fail(exported, tmp_path, capsys):
    data = exported["data"]
    members = _members(data)
    members[0], members[1] = members[1], members[0]  # the two clips swapped
    code, output = _check(_zip(members, _created(data)), tmp_path, capsys)
    assert code == 1, output
    assert "rearranged" in output


def test_a_changed_time_in_the_first_directory_entry_is_blamed_on_the_first_file(
    exported, tmp_path, capsys
):
    data = bytearray(exported["data"])
    with zipfile.ZipFile(io.BytesIO(bytes(data))) as zf:
        start = zf.start_dir
    data[start + 12] ^= 0x01  # the first central directory entry's time
    code, output = _check(bytes(data), tmp_path, capsys)
    first, second = [n for n, _ in _members(exported["data"])][:2]
    assert code == 1, output
    assert first in output and second not in output


def test_a_prepended_byte_fails_in_a_few_plain_words(exported, tmp_path, capsys):
    code, output = _check(b"\x00" + exported["data"], tmp_path, capsys)
    assert code == 1
    assert len(output) < 1000, output[:2000]
    assert output.isascii() and all(c.isprintable() or c == "\n" for c in output), output[:500]
    assert "Do not rely on this copy; ask the sender for a new one." in output


@pytest.mark.parametrize(
    "key",
    [
        "not a key at all",
        "AAAA",  # base64, but 3 bytes
        "-----BEGIN PUBLIC KEY-----",
        "QUJD" * 11,  # base64 of 33 bytes
    ],
)
def test_a_malformed_public_key_is_a_usage_error(exported, tmp_path, capsys, key):
    path = tmp_path / "bundle.zip"
    path.write_bytes(exported["data"])
    code = _verifier().main([str(path), "--public-key", key])
    err = capsys.readouterr().err
    assert code == 2
    assert "public key" in err and "damaged" not in err


def test_a_missing_bundle_or_bad_arguments_are_usage_errors(tmp_path, capsys):
    verifier = _verifier()
    assert verifier.main([str(tmp_path / "nothing.zip")]) == 2
    assert "cannot open" in capsys.readouterr().err
    assert verifier.main([]) == 2
    assert verifier.main(["a.zip", "--no-such-option"]) == 2


def test_a_file_name_with_control_characters_is_printed_escaped(exported, tmp_path, capsys):
    data = exported["data"]
    members = _members(data)
    members.insert(1, ("footage/\x1b[2J\x1b]0;fake\x07.mp4", b"x"))
    code, output = _check(_zip(members, _created(data)), tmp_path, capsys)
    assert code == 1
    assert "\x1b" not in output and "\x07" not in output
    assert "\\x1b" in output


def _swap_first_clip(manifest, files):
    """The first clip replaced by other footage; the manifest describes the new bytes."""
    path = next(e["path"] for e in manifest["files"] if e["role"] == "original")
    files[path] = files[path][:-1000] + bytes(1000)


def test_a_clip_is_checked_against_its_ingest_event_not_the_manifest(exported, tmp_path, capsys):
    forged = _signed_by_the_server(exported["data"], _swap_first_clip)
    code, output = _check(forged, tmp_path, capsys)
    assert code == 1, output
    assert "not the one the camera dock uploaded" in output


def _flagged_clip_with_a_gap(small_clip):
    """A flagged recording whose flag event is followed, in the chain, by an event of another
    recording (so the extract has a gap after it), exported."""
    sergeant = f.user(Role.CUSTODY_SERGEANT)
    recording = f.ingested_recording(data=small_clip)
    recording_flag(
        recording=recording,
        kind="evidence",
        actor=sergeant,
        reason="assault",
        crime_reference="5201234/26",
    )
    flagged = AuditEvent.objects.get(action="recording.flagged", object_id=str(recording.pk))
    other = f.recording_row()
    audit_record(actor=sergeant, action="recording.viewed", obj=other, justification="unrelated")
    export = export_create(actor=sergeant, recordings=[recording], recipient="CPS", purpose="x")
    return sergeant, recording, flagged, export


def _attacker_sql(sql: str, params=None) -> None:
    """As a superuser with the audit triggers bypassed: an attacker with the database."""
    from django.db import connection, transaction

    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SET LOCAL session_replication_role = replica")
        cursor.execute(sql, params or [])
        cursor.execute("SET LOCAL session_replication_role = DEFAULT")


def test_an_event_edited_at_the_source_before_a_gap_fails_its_inclusion_proof(
    small_clip, tmp_path, capsys
):
    from review.exports import export_bundle

    _sergeant, _recording, flagged, export = _flagged_clip_with_a_gap(small_clip)
    body = flagged.body.replace('"assault"', '"nothing happened"')
    _attacker_sql(
        f"UPDATE {AuditEvent._meta.db_table} SET body = %s, hash = %s WHERE seq = %s",
        [body, audit.chain_hash(flagged.prev_hash, body), flagged.seq],
    )
    code, output = _check(b"".join(export_bundle(export)), tmp_path, capsys)
    assert code == 1, output
    assert f"Custody event {flagged.seq} is not part of the force's audit log" in output


def _rebuild_chain_without(seq: int) -> None:
    """Remove event `seq` and renumber and rehash everything after it, the Merkle tree too where
    there is one: a thorough attacker who leaves the log consistent with itself."""
    from django.db import connection

    table = AuditEvent._meta.db_table
    rows = list(AuditEvent.objects.filter(seq__gte=seq).values_list("seq", "body"))
    _attacker_sql(f"DELETE FROM {table} WHERE seq >= %s", [seq])
    prev = AuditEvent.objects.get(seq=seq - 1).hash
    for old_seq, body in rows[1:]:
        body = body.replace(f'"seq":{old_seq},', f'"seq":{old_seq - 1},')
        digest = audit.chain_hash(prev, body)
        _attacker_sql(
            f"INSERT INTO {table} (seq, prev_hash, hash, body) VALUES (%s, %s, %s, %s)",
            [old_seq - 1, prev, digest, body],
        )
        prev = digest
    last = rows[-1][0] - 1
    _attacker_sql(
        "UPDATE evidence_auditchainhead SET seq = %s, hash = %s WHERE id = 1", [last, prev]
    )
    if "evidence_audittreenode" in connection.introspection.table_names():
        hashes = [bytes.fromhex(h) for h in AuditEvent.objects.values_list("hash", flat=True)]
        nodes, frontier = [], []
        for i, h in enumerate(hashes):
            node = hashlib.sha256(b"\x00" + h).digest()
            nodes.append((0, i, node))
            level = 0
            while i >> level & 1:
                node = hashlib.sha256(b"\x01" + frontier.pop() + node).digest()
                level += 1
                nodes.append((level, i >> level, node))
            frontier.append(node)
        _attacker_sql("DELETE FROM evidence_audittreenode")
        for node in nodes:
            _attacker_sql(
                "INSERT INTO evidence_audittreenode (level, index, hash) VALUES (%s, %s, %s)",
                list(node),
            )
        _attacker_sql(
            "UPDATE evidence_auditchainhead SET frontier = %s WHERE id = 1", [b"".join(frontier)]
        )


def test_a_consultation_dropped_at_the_source_fails_against_the_head_published_before(
    small_clip, tmp_path, capsys
):
    from evidence.services import recording_consult
    from review.exports import export_bundle

    sergeant, recording, _flagged, export = _flagged_clip_with_a_gap(small_clip)
    viewed = recording_consult(recording=recording, actor=sergeant, purpose="idle curiosity")
    audit_record(
        actor=sergeant,
        action="recording.viewed",
        obj=f.recording_row(),
        justification="another clip",
    )
    audit.checkpoint_write()  # published every 10 minutes by beat
    _rebuild_chain_without(viewed.seq)
    assert not AuditEvent.objects.filter(body__contains="idle curiosity").exists()
    code, output = _check(b"".join(export_bundle(export)), tmp_path, capsys)
    assert code == 1, output
    assert "the log was rewritten" in output


def _tamper_one_proof(manifest, files):
    lines = files["custody.jsonl"].decode().splitlines()
    event = json.loads(lines[0])
    event["inclusion_proof"][0] = "0" * 64
    lines[0] = audit.canonical_json(event)
    files["custody.jsonl"] = ("\n".join(lines) + "\n").encode()


def test_a_tampered_inclusion_proof_fails(exported, tmp_path, capsys):
    code, output = _check(
        _signed_by_the_server(exported["data"], _tamper_one_proof), tmp_path, capsys
    )
    assert code == 1, output
    assert "is not part of the force's audit log" in output


def test_the_report_tells_a_clerk_what_the_bundle_holds(exported, tmp_path, capsys):
    code, output = _check(exported["data"], tmp_path, capsys)
    assert code == 0, output
    export, (recording, other) = exported["export"], exported["recordings"]
    lines = [line.strip() for line in output.splitlines()]
    assert "Case: R v Doe, crime reference 5201234/26" in lines
    assert "Made for: CPS London North" in lines
    assert "Purpose: charging file R v Doe" in lines
    made = export.created_at.astimezone(UTC)
    assert f"Made by: {export.created_by.get_username()} on {made.day} {made:%B %Y}" in output
    for rec in (recording, other):
        assert rec.camera.serial in output and rec.sha256 in output
    assert f"Officer: {recording.officer.display_name}" in output
    assert "Recorded:" in output and "(2 s)" in output
    assert output.count("arrived from the camera dock") == 2
    for action in ("flagged", "added to the case", "chosen for export", "handed over"):
        assert action in output
    assert "why: assault" in output and "for: CPS London North" in output
    assert "signed with the key you gave" in output
    print(output)  # shown with -s, to read it as a clerk would


def test_without_a_pinned_key_the_author_is_not_established(exported, tmp_path, capsys):
    code, output = _check(exported["data"], tmp_path, capsys, key=False)
    assert code == 0, output
    assert "NOT ESTABLISHED" in output and "Every check holds" not in output


def test_a_failure_says_what_is_wrong_and_what_to_do_in_plain_words(exported, tmp_path, capsys):
    data = bytearray(exported["data"])
    first_clip = _regions(exported["data"])[0]
    data[(first_clip[0] + first_clip[1]) // 2] ^= 0x01
    code, output = _check(bytes(data), tmp_path, capsys)
    assert code == 1
    wrong = next(line for line in output.splitlines() if line.startswith("What is wrong:"))
    assert first_clip[2] in wrong and "has been changed" in wrong
    for jargon in ("CRC", "central directory", "descriptor", "ZIP64"):
        assert jargon not in wrong
    assert "What to do: Do not rely on this copy; ask the sender for a new one." in output


def test_the_html_report_is_written_beside_the_bundle_escaped_and_without_script(
    small_clip, tmp_path, capsys
):
    from review.exports import export_bundle
    from review.services import case_add_recording, case_create

    sergeant = f.user(Role.CUSTODY_SERGEANT)
    recording = f.ingested_recording(data=small_clip)
    case = case_create(
        crime_reference="5201234/26",
        title="R v <script>alert(1)</script>",
        borough=recording.borough,
        actor=sergeant,
    )
    case_add_recording(case=case, recording=recording, actor=sergeant)
    export = export_create(
        actor=sergeant,
        recordings=[recording],
        case=case,
        recipient="CPS <b>London</b>",
        purpose="file & serve",
    )
    code, output = _check(b"".join(export_bundle(export)), tmp_path, capsys, "--html")
    assert code == 0, output
    page = (tmp_path / "bundle.report.html").read_text()
    assert "R v &lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "CPS &lt;b&gt;London&lt;/b&gt;" in page and "file &amp; serve" in page
    assert "<script" not in page.lower() and "javascript:" not in page.lower()
    assert "src=" not in page and "href=" not in page and "url(" not in page  # nothing fetched
    assert "passed" in page and recording.sha256 in page


def test_expect_case_refuses_a_genuine_bundle_made_for_another_case(exported, tmp_path, capsys):
    code, output = _check(exported["data"], tmp_path, capsys, "--expect-case", "5201234/26")
    assert code == 0, output
    code, output = _check(exported["data"], tmp_path, capsys, "--expect-case", "6309999/26")
    assert code == 1
    assert "made for case 5201234/26, not for case 6309999/26" in output
