"""Being on a case now holds a recording: place the case holds for recordings already on cases.

From this change on, `evidence.services.case_add_recording` places a hold (source "case",
source_ref "case:<id>") in the same transaction as the add. Recordings put on cases before it have
none, so the sweep would erase them once expired: this places one hold per open case and
available recording, sets `Recording.held`, and writes a `hold.placed` audit event for each, as
`retention.services.hold_place` would. Recordings already being deleted or deleted are left alone:
their objects may be gone, so holding them would promise footage that is not there.

Self-contained on purpose: it imports nothing of the project (the code will move between apps,
and this migration must still run on an old database). The audit events are appended to the hash
chain exactly as `custody/audit.py` does it (canonical JSON body, SHA-256 over the previous hash
and the body, the head row locked and moved), so `manage.py audit_verify` stays clean.

The reverse lifts every active case hold, with a `hold.lifted` event each: the code before this
change cannot lift them, and they would otherwise keep footage for ever.
"""

import hashlib
import json
from datetime import UTC, datetime, timedelta

from django.core.serializers.json import DjangoJSONEncoder
from django.db import migrations
from django.utils import timezone

ACTOR = "system:migration"
GENESIS = "0" * 64
CHUNK = 1000


# -- The audit chain, as custody/audit.py writes it (copied: see the module's docstring) ---------


def _canonical_json(value) -> str:
    return json.dumps(
        value,
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=True,
        allow_nan=False,
        cls=DjangoJSONEncoder,
    )


def _event_body(*, seq: int, at: datetime, entry: dict) -> str:
    at = at.astimezone(UTC)
    micros = (at - datetime(1970, 1, 1, tzinfo=UTC)) // timedelta(microseconds=1)
    return _canonical_json(
        {
            "seq": seq,
            "t": micros,
            "at": at.strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
            "actor": ACTOR,
            "actor_id": None,
            "action": entry["action"],
            "object_type": "evidence.recording",
            "object_id": str(entry["object_id"]),
            "borough": entry.get("borough") or "",
            "justification": entry.get("justification") or "",
            "recipient": "",
            "detail": entry.get("detail") or {},
        }
    )


def _audit_append(apps, entries: list[dict], at: datetime) -> None:
    """Append events in order: lock the head row, chain each event to the one before, move the
    head. Runs in the migration's transaction, so the head stays locked until it commits."""
    if not entries:
        return
    AuditEvent = apps.get_model("evidence", "AuditEvent")
    AuditChainHead = apps.get_model("evidence", "AuditChainHead")
    head = AuditChainHead.objects.select_for_update().filter(id=1).first()
    if head is None:  # no event was ever appended through the head: continue the table's chain
        last = AuditEvent.objects.order_by("-seq").values_list("seq", "hash").first()
        seq, digest = last or (0, GENESIS)
        head = AuditChainHead.objects.create(id=1, seq=seq, hash=digest)
        head = AuditChainHead.objects.select_for_update().get(id=1)
    seq, prev = head.seq, head.hash
    events = []
    for entry in entries:
        seq += 1
        body = _event_body(seq=seq, at=at, entry=entry)
        digest = hashlib.sha256((prev + body).encode("ascii")).hexdigest()
        events.append(AuditEvent(seq=seq, prev_hash=prev, hash=digest, body=body))
        prev = digest
    AuditEvent.objects.bulk_create(events, batch_size=CHUNK)
    AuditChainHead.objects.filter(id=1).update(seq=seq, hash=prev)


# -- The holds ------------------------------------------------------------------------------------


def place_case_holds(apps, schema_editor):
    Case = apps.get_model("evidence", "Case")
    Membership = Case.recordings.through
    cases = {
        c["id"]: c
        for c in Case.objects.filter(closed_at__isnull=True).values(
            "id", "crime_reference", "title"
        )
    }
    pairs = (
        Membership.objects.filter(case_id__in=list(cases), recording__state="available")
        .order_by("case_id", "recording_id")
        .values_list("case_id", "recording_id", "recording__borough__code")
    )
    now = timezone.now()
    batch: list = []
    for row in pairs.iterator(chunk_size=CHUNK):
        batch.append(row)
        if len(batch) == CHUNK:
            _place(apps, batch, cases, now)
            batch = []
    _place(apps, batch, cases, now)


def _place(apps, rows: list, cases: dict, now: datetime) -> None:
    if not rows:
        return
    Recording = apps.get_model("evidence", "Recording")
    Hold = apps.get_model("retention", "Hold")
    recording_ids = sorted({recording_id for _case, recording_id, _code in rows})
    # The same lock order as hold_place: the recording rows first (a sweep claiming them waits).
    list(Recording.objects.select_for_update().filter(pk__in=recording_ids).values_list("pk"))
    existing = set(
        Hold.objects.filter(recording_id__in=recording_ids, source="case", active=True).values_list(
            "recording_id", "source_ref"
        )
    )
    new = [
        (case_id, recording_id, code)
        for case_id, recording_id, code in rows
        if (recording_id, f"case:{case_id}") not in existing
    ]
    holds = Hold.objects.bulk_create(
        [
            Hold(
                recording_id=recording_id,
                source="case",
                source_ref=f"case:{case_id}",
                reason=_reason(cases[case_id]),
                active=True,
                placed_by=None,
                placed_at=now,
            )
            for case_id, recording_id, _code in new
        ]
    )
    Recording.objects.filter(pk__in=recording_ids).update(held=True)
    _audit_append(
        apps,
        [
            {
                "action": "hold.placed",
                "object_id": hold.recording_id,
                "borough": code,
                "justification": hold.reason,
                "detail": {"hold": hold.pk, "source": "case", "source_ref": hold.source_ref},
            }
            for hold, (_case, _rec, code) in zip(holds, new, strict=True)
        ],
        now,
    )


def _reason(case: dict) -> str:
    return f"on case {case['crime_reference']}: {case['title']}"


def lift_case_holds(apps, schema_editor):
    Recording = apps.get_model("evidence", "Recording")
    Hold = apps.get_model("retention", "Hold")
    now = timezone.now()
    reason = "case holds withdrawn: the migration that placed them was reversed"
    while True:
        holds = list(
            Hold.objects.filter(source="case", active=True)
            .order_by("pk")
            .values_list("pk", "recording_id", "source_ref", "recording__borough__code")[:CHUNK]
        )
        if not holds:
            return
        recording_ids = sorted({h[1] for h in holds})
        list(Recording.objects.select_for_update().filter(pk__in=recording_ids).values_list("pk"))
        Hold.objects.filter(pk__in=[h[0] for h in holds]).update(
            active=False, lifted_at=now, lifted_by=None, lift_reason=reason
        )
        still_held = set(
            Hold.objects.filter(recording_id__in=recording_ids, active=True).values_list(
                "recording_id", flat=True
            )
        )
        Recording.objects.filter(pk__in=set(recording_ids) - still_held).update(held=False)
        _audit_append(
            apps,
            [
                {
                    "action": "hold.lifted",
                    "object_id": recording_id,
                    "borough": code,
                    "justification": reason,
                    "detail": {"hold": pk, "source": "case", "source_ref": source_ref},
                }
                for pk, recording_id, source_ref, code in holds
            ],
            now,
        )


class Migration(migrations.Migration):
    dependencies = [
        ("retention", "0005_hold_source_case"),
        ("evidence", "0010_case_closing"),
    ]

    operations = [migrations.RunPython(place_case_holds, lift_case_holds)]
