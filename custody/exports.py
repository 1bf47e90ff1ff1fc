"""Court/CPS export bundles, rendered as a ZIP stream.

This app knows nothing of footage: the layer that does (`review.exports`) hands it the files, each
with the SHA-256 it must have and a way to read it, and the manifest fields that describe it.

Guarantees:
- every file is re-hashed while it streams and compared with the SHA-256 it was given (for an
  original clip, the one computed at ingest): a mismatch stops the stream, so a bundle that
  completes carries only files identical to what was recorded;
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
  byte follows custody/zipstream.py, so `tools/verify_bundle.py` can check the whole file.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC

from django.db.models import Q
from django.template.loader import render_to_string
from django.utils import timezone

from blobstore import blob_store
from custody.audit import (
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
from custody.models import AuditEvent, Export
from custody.zipstream import ZipStream

BUNDLE_FORMAT = "bwv-export/2"


class BundleIntegrityError(Exception):
    """A file did not hash to what it must: the bundle stops there and must not be relied on."""


@dataclass(frozen=True)
class BundleFile:
    """One file of footage for a bundle, as the layer that owns the footage describes it."""

    path: str  # inside the ZIP, e.g. footage/<start>_<camera>_<id>.mp4
    role: str  # "original" or "derived"
    size: int
    sha256: str  # what its bytes must hash to
    chunks: Callable[[], Iterator[bytes]]  # reads it (decrypted), a segment at a time
    entry: dict = field(default_factory=dict)  # its manifest fields: provenance, derived_from


def iso(value) -> str | None:
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ") if value else None


def bundle_filename(export: Export) -> str:
    return f"bwv-export-{export.created_at.astimezone(UTC):%Y%m%d}-{str(export.id)[:8]}.zip"


def custody_events(export: Export, recording_ids: list[str]):
    """The audit events for the export's clips, its case and the export itself, in chain order."""
    where = Q(object_type="evidence.recording", object_id__in=recording_ids) | Q(
        object_type="evidence.export", object_id=str(export.id)
    )
    if export.case_id:
        where |= Q(object_type="evidence.case", object_id=str(export.case_id))
    return AuditEvent.objects.filter(where).order_by("seq")


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


def _checked(item: BundleFile) -> Iterator[bytes]:
    digest = hashlib.sha256()
    for chunk in item.chunks():
        digest.update(chunk)
        yield chunk
    if digest.hexdigest() != item.sha256:
        raise BundleIntegrityError(f"{item.path} does not match its recorded SHA-256")


def bundle_stream(
    export: Export, *, footage: list[BundleFile], recording_ids: list[str], statement: dict
) -> Iterator[bytes]:
    """The bundle's bytes, file by file: the footage in the order given, then the custody
    extract, the signed tree head and the continuity statement (`statement` is its template's
    context: the recordings, as the footage's owner describes them), then the manifest and its
    signature last."""
    zs = ZipStream(export.created_at.astimezone(UTC))
    files: list[dict] = []

    def add(path: str, data: bytes, role: str) -> Iterator[bytes]:
        files.append(
            {
                "path": path,
                "role": role,
                "size": len(data),
                "sha256": hashlib.sha256(data).hexdigest(),
            }
        )
        yield from zs.member(path, [data], size=len(data))

    for item in footage:
        yield from zs.member(item.path, _checked(item), size=item.size)
        files.append(
            {"path": item.path, "role": item.role, "size": item.size, "sha256": item.sha256}
            | item.entry
        )

    # The last head published before this bundle: its head is proven to extend it.
    earlier_size = published_size()
    events = list(custody_events(export, recording_ids))
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
    context = statement | {
        "export": export,
        "files": files,
        "events": events,
        "generated_at": generated_at,
        "key_id": key_id(public_key_bytes()),
    }
    document = render_to_string("exports/continuity.html", context).encode("utf-8")
    yield from add("continuity.html", document, "statement")

    manifest = {
        "format": BUNDLE_FORMAT,
        "bundle_id": str(export.id),
        "created_at": iso(export.created_at),
        "generated_at": iso(generated_at),
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
