"""Court/CPS export bundles, rendered as a ZIP stream.

Guarantees:
- a bundle holds the original clips decrypted from storage, each re-hashed while it streams and
  compared with the SHA-256 computed at ingest: a mismatch stops the stream, so a bundle that
  completes carries only clips identical to what the camera dock uploaded;
- `manifest.json` lists every file with its SHA-256 and size, and each clip's provenance (camera,
  officer, times, flags, cases, how it was derived); `manifest.sig` is an Ed25519 signature over
  the manifest's exact bytes with the key that signs the audit checkpoints;
- `custody.jsonl` is the extract of the hash-chained audit log for those clips, their case and the
  export; each event carries its inclusion proof (RFC 9162) to a fresh signed tree head of the
  whole log (`checkpoint.json`), so each is shown to stand at its place in the log, whatever
  events between them are left out; `consistency.json`, when an earlier signed head exists,
  proves that this head extends the last one published before it;
- the manifest lists the files in the order they are written, and its `created_at` is the time
  in every ZIP header: the whole layout follows from the signed manifest;
- memory is one decrypted segment at a time, whatever the size of the bundle; every structural
  byte follows evidence/zipstream.py, so `tools/verify_bundle.py` can check the whole file.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from datetime import UTC

from django.db.models import Q
from django.template.loader import render_to_string
from django.utils import timezone

from blobstore import blob_store
from evidence.audit import (
    CONSISTENCY_FORMAT,
    canonical_json,
    checkpoint_covering_head,
    checkpoint_name_for,
    checkpoint_parse,
    consistency_proof,
    inclusion_proofs,
    key_id,
    public_key_b64,
    public_key_bytes,
    published_size,
    sign,
    verification_keys,
)
from evidence.crypto import IntegrityError
from evidence.media import plaintext_range, recording_cipher
from evidence.models import AuditEvent, Export, Recording
from evidence.zipstream import ZipStream

BUNDLE_FORMAT = "bwv-export/2"


def _iso(value) -> str | None:
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ") if value else None


def bundle_filename(export: Export) -> str:
    return f"bwv-export-{export.created_at.astimezone(UTC):%Y%m%d}-{str(export.id)[:8]}.zip"


def _clip_path(recording: Recording) -> str:
    started = recording.started_at.astimezone(UTC)
    return f"footage/{started:%Y%m%dT%H%M%SZ}_{recording.camera.serial}_{recording.id}.mp4"


def _officer_label(officer) -> str | None:
    if officer is None:
        return None
    return officer.display_name


def _provenance(recording: Recording) -> dict:
    flags = [
        {
            "kind": flag.kind,
            "crime_reference": flag.crime_reference,
            "reason": flag.reason,
            "flagged_by": flag.flagged_by.get_username(),
            "flagged_at": _iso(flag.flagged_at),
            "lifted_at": _iso(flag.lifted_at),
        }
        for flag in recording.flags.select_related("flagged_by").order_by("flagged_at")
    ]
    return {
        "id": str(recording.id),
        "camera": recording.camera.serial,
        "officer": _officer_label(recording.officer),
        "borough": recording.borough.code,
        "started_at": _iso(recording.started_at),
        "ended_at": _iso(recording.ended_at),
        "duration_seconds": recording.duration_seconds,
        "uploaded_at": _iso(recording.available_at),
        "dock": f"{recording.dock.station} / {recording.dock.name}" if recording.dock else None,
        "original_filename": recording.original_filename,
        "flags": flags,
        "cases": sorted(recording.cases.values_list("crime_reference", flat=True)),
    }


def custody_events(export: Export, recording_ids: list[str]):
    """The audit events for the export's clips, its case and the export itself, in chain order."""
    where = Q(object_type="evidence.recording", object_id__in=recording_ids) | Q(
        object_type="evidence.export", object_id=str(export.id)
    )
    if export.case_id:
        where |= Q(object_type="evidence.case", object_id=str(export.case_id))
    return AuditEvent.objects.filter(where).order_by("seq")


def _clip_chunks(recording: Recording) -> Iterator[bytes]:
    digest = hashlib.sha256()
    cipher = recording_cipher(recording)
    for chunk in plaintext_range(recording, 0, recording.size_bytes, cipher=cipher):
        digest.update(chunk)
        yield chunk
    if digest.hexdigest() != recording.sha256:
        raise IntegrityError(f"recording {recording.id} does not match its ingest hash")


def _consistency(earlier_size: int, size: int) -> bytes | None:
    """The last head published before this bundle's and the proof that this one extends it;
    None when there is none of the tree's format, or it is this very head. A published head
    larger than this one (a log cut short since) gets no proof, and the verifier says so."""
    if earlier_size == 0 or earlier_size == size:
        return None
    document = blob_store().get(checkpoint_name_for(earlier_size))
    if checkpoint_parse(document, verification_keys()).root_hash is None:
        return None  # a checkpoint from before the tree: nothing to prove against
    statement = {
        "format": CONSISTENCY_FORMAT,
        "earlier": json.loads(document),
        "proof": consistency_proof(earlier_size, size) if earlier_size < size else [],
    }
    return canonical_json(statement).encode("ascii")


def bundle_stream(export: Export) -> Iterator[bytes]:
    """The bundle's bytes, file by file; the manifest and its signature come last."""
    recordings = list(
        export.recordings.select_related("camera", "officer", "borough", "dock").order_by(
            "started_at", "id"
        )
    )
    zs = ZipStream(export.created_at.astimezone(UTC))
    files: list[dict] = []

    def add(path: str, data: bytes, role: str) -> Iterator[bytes]:
        files.append({"path": path, "role": role, "size": len(data),
                      "sha256": hashlib.sha256(data).hexdigest()})  # fmt: skip
        yield from zs.member(path, [data], size=len(data))

    for recording in recordings:
        path = _clip_path(recording)
        yield from zs.member(path, _clip_chunks(recording), size=recording.size_bytes)
        files.append({
            "path": path, "role": "original", "size": recording.size_bytes,
            "sha256": recording.sha256, "recording": _provenance(recording), "derived_from": None,
        })  # fmt: skip

    # Derived copies (redactions) of these recordings, each with what it was derived from.
    from evidence.redaction import derived_bytes

    for recording in recordings:
        for derived in recording.derived.order_by("created_at"):
            data = derived_bytes(derived)
            if hashlib.sha256(data).hexdigest() != derived.sha256:
                raise IntegrityError(f"derived copy {derived.id} does not match its hash")
            path = f"derived/{derived.id}.mp4"
            yield from zs.member(path, [data], size=len(data))
            files.append({
                "path": path, "role": "derived", "size": len(data), "sha256": derived.sha256,
                "derived_from": {"recording": str(recording.id), "original_sha256": recording.sha256,
                                 "kind": derived.kind, "spec": derived.spec,
                                 "made_by": derived.created_by.get_username(),
                                 "made_at": _iso(derived.created_at)},
            })  # fmt: skip

    # The last head published before this bundle: its head is proven to extend it.
    earlier_size = published_size()
    events = list(custody_events(export, [str(r.id) for r in recordings]))
    # A signed tree head taken after the extract was read, so it covers every event in it.
    checkpoint_name = checkpoint_covering_head()
    proofs: dict[int, list[str]] = {}
    checkpoint_path = consistency_path = None
    head_document = b""
    if checkpoint_name is not None:
        head_document = blob_store().get(checkpoint_name)
        size = checkpoint_parse(head_document, verification_keys()).seq
        proofs = inclusion_proofs([e.seq for e in events], size)
    lines = [
        {
            "seq": e.seq,
            "prev_hash": e.prev_hash,
            "hash": e.hash,
            "body": e.body,
            "inclusion_proof": proofs.get(e.seq, []),
        }
        for e in events
    ]
    custody = "".join(canonical_json(line) + "\n" for line in lines).encode("ascii")
    yield from add("custody.jsonl", custody, "custody")
    if checkpoint_name is not None:
        checkpoint_path = "checkpoint.json"
        yield from add(checkpoint_path, head_document, "checkpoint")
        consistency = _consistency(earlier_size, size)
        if consistency is not None:
            consistency_path = "consistency.json"
            yield from add(consistency_path, consistency, "consistency")

    generated_at = timezone.now()
    statement = render_to_string("exports/continuity.html", {
        "export": export, "recordings": recordings, "files": files, "events": events,
        "generated_at": generated_at, "key_id": key_id(public_key_bytes()),
    }).encode("utf-8")  # fmt: skip
    yield from add("continuity.html", statement, "statement")

    manifest = {
        "format": BUNDLE_FORMAT,
        "bundle_id": str(export.id),
        "created_at": _iso(export.created_at),
        "generated_at": _iso(generated_at),
        "created_by": export.created_by.get_username(),
        "recipient": export.recipient,
        "purpose": export.purpose,
        "case": (
            {"crime_reference": export.case.crime_reference, "title": export.case.title}
            if export.case_id
            else None
        ),
        "custody_extract": "custody.jsonl",
        "checkpoint": checkpoint_path,
        "consistency": consistency_path,
        "statement": "continuity.html",
        "signing_key": {
            "algorithm": "Ed25519",
            "public_key": public_key_b64(),
            "key_id": key_id(public_key_bytes()),
        },
        "files": files,
    }
    manifest_bytes = (json.dumps(manifest, indent=2, sort_keys=True) + "\n").encode("utf-8")
    yield from zs.member("manifest.json", [manifest_bytes], size=len(manifest_bytes))
    signature = (sign(manifest_bytes) + "\n").encode("ascii")
    yield from zs.member("manifest.sig", [signature], size=len(signature))
    yield from zs.finish()
