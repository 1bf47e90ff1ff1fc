"""What goes into a court/CPS bundle from the footage: each original clip and each redacted copy
of it, decrypted as it streams, with its provenance (camera, officer, times, flags, cases) for the
manifest. The bundle itself (layout, custody extract, proofs, signature) is custody's
(`custody.exports`), which re-hashes every file against the SHA-256 given here."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC
from functools import partial

from django.http import StreamingHttpResponse

from custody.exports import BundleFile, bundle_filename, bundle_stream, iso
from custody.models import Export
from evidence.media import plaintext_range, recording_cipher
from evidence.models import DerivedRecording, Recording
from evidence.redaction import derived_chunks


def _clip_path(recording: Recording) -> str:
    started = recording.started_at.astimezone(UTC)
    return f"footage/{started:%Y%m%dT%H%M%SZ}_{recording.camera.serial}_{recording.id}.mp4"


def _provenance(recording: Recording) -> dict:
    flags = [
        {
            "kind": flag.kind,
            "crime_reference": flag.crime_reference,
            "reason": flag.reason,
            "flagged_by": flag.flagged_by.get_username(),
            "flagged_at": iso(flag.flagged_at),
            "lifted_at": iso(flag.lifted_at),
        }
        for flag in recording.flags.select_related("flagged_by").order_by("flagged_at")
    ]
    return {
        "id": str(recording.id),
        "camera": recording.camera.serial,
        "officer": recording.officer.display_name if recording.officer else None,
        "borough": recording.borough.code,
        "started_at": iso(recording.started_at),
        "ended_at": iso(recording.ended_at),
        "duration_seconds": recording.duration_seconds,
        "uploaded_at": iso(recording.available_at),
        "dock": f"{recording.dock.station} / {recording.dock.name}" if recording.dock else None,
        "original_filename": recording.original_filename,
        "flags": flags,
        "cases": sorted(recording.cases.values_list("crime_reference", flat=True)),
    }


def _clip_chunks(recording: Recording) -> Iterator[bytes]:
    cipher = recording_cipher(recording)
    yield from plaintext_range(recording, 0, recording.size_bytes, cipher=cipher)


def _derived_chunks(derived: DerivedRecording) -> Iterator[bytes]:
    # A segment at a time (a copy stored as one blob, made before copies were segmented, whole).
    yield from derived_chunks(derived)


def export_footage(export: Export) -> tuple[list[BundleFile], list[Recording]]:
    """The export's files (originals first, then each one's redacted copies) and recordings."""
    recordings = list(
        export.recordings.select_related("camera", "officer", "borough", "dock").order_by(
            "started_at", "id"
        )
    )
    files = [
        BundleFile(
            path=_clip_path(recording),
            role="original",
            size=recording.size_bytes,
            sha256=recording.sha256,
            chunks=partial(_clip_chunks, recording),
            entry={"recording": _provenance(recording), "derived_from": None},
        )
        for recording in recordings
    ]
    for recording in recordings:
        for derived in recording.derived.select_related("created_by").order_by("created_at"):
            files.append(
                BundleFile(
                    path=f"derived/{derived.id}.mp4",
                    role="derived",
                    size=derived.size_bytes,
                    sha256=derived.sha256,
                    chunks=partial(_derived_chunks, derived),
                    entry={
                        "derived_from": {
                            "recording": str(recording.id),
                            "original_sha256": recording.sha256,
                            "kind": derived.kind,
                            "spec": derived.spec,
                            "made_by": derived.created_by.get_username(),
                            "made_at": iso(derived.created_at),
                        }
                    },
                )
            )
    return files, recordings


def export_bundle(export: Export) -> Iterator[bytes]:
    files, recordings = export_footage(export)
    return bundle_stream(
        export,
        footage=files,
        recording_ids=[str(r.id) for r in recordings],
        statement={"recordings": recordings},
    )


def export_bundle_response(export: Export) -> StreamingHttpResponse:
    response = StreamingHttpResponse(export_bundle(export), content_type="application/zip")
    response["Content-Disposition"] = f'attachment; filename="{bundle_filename(export)}"'
    response["Cache-Control"] = "private, no-store"
    return response
