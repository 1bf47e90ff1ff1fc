"""The audit log: written only through audit_record, hash-chained, refused UPDATE/DELETE/TRUNCATE by
PostgreSQL, and every kind of tampering (done here as a superuser with the triggers bypassed) found
by audit_verify."""

import json
import threading

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.db import DatabaseError, connection, transaction

from common.roles import Role
from custody import audit
from custody.models import AuditChainHead, AuditEvent
from custody.services import audit_record
from tests import factories as f

pytestmark = pytest.mark.django_db
TABLE = AuditEvent._meta.db_table


def _event(justification="5201234/26"):
    actor = f.user(Role.CUSTODY_SERGEANT)
    return audit_record(
        actor=actor,
        action="recording.viewed",
        object_type="evidence.recording",
        object_id="abc",
        justification=justification,
    )


def _chain(n: int) -> list[AuditEvent]:
    return [
        audit_record(
            actor="system:test",
            action="test.event",
            object_type="test",
            object_id=str(i),
            justification=f"j{i}",
        )
        for i in range(1, n + 1)
    ]


def _sql(sql: str, params=None) -> None:
    """Run SQL as the superuser with the audit triggers bypassed, as an attacker with full
    database access would."""
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SET LOCAL session_replication_role = replica")
        cursor.execute(sql, params or [])
        cursor.execute("SET LOCAL session_replication_role = DEFAULT")


def _row(seq: int) -> tuple[str, str, str]:
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT prev_hash, body, hash FROM {TABLE} WHERE seq = %s", [seq])  # noqa: S608
        return cursor.fetchone()


def _renumber(where: str, delta: int) -> None:
    # Two steps through negative numbers, so the unique constraint never sees a clash.
    _sql(f"UPDATE {TABLE} SET seq = -(seq + {delta}) WHERE {where}")  # noqa: S608
    _sql(f"UPDATE {TABLE} SET seq = -seq WHERE seq < 0")  # noqa: S608


def _forge(seq: int, prev_hash: str, *, correct_hash: bool = True) -> None:
    from django.utils import timezone

    body = audit.event_body(
        seq=seq,
        at=timezone.now(),
        entry={
            "actor": "intruder",
            "action": "test.event",
            "object_type": "test",
            "object_id": "x",
        },
    )
    digest = audit.chain_hash(prev_hash, body) if correct_hash else "f" * 64
    _sql(
        f"INSERT INTO {TABLE} (seq, prev_hash, hash, body) VALUES (%s, %s, %s, %s)",  # noqa: S608
        [seq, prev_hash, digest, body],
    )


def _finding(**kwargs) -> audit.Finding:
    report = audit.audit_verify(**kwargs)
    assert not report.ok
    return report.findings[0]


def test_audit_record_writes_who_what_when_why():
    event = _event()
    stored = AuditEvent.objects.get(pk=event.pk)
    assert stored.actor_user_id is not None
    assert stored.actor_label == get_user_model().objects.get(pk=stored.actor_user_id).username
    assert stored.action == "recording.viewed"
    assert stored.justification == "5201234/26"
    assert stored.at is not None and stored.borough_code == ""


def test_events_form_one_chain_in_order():
    events = _chain(5)
    assert [e.seq for e in events] == [events[0].seq + i for i in range(5)]
    for before, after in zip(events, events[1:], strict=False):
        assert after.prev_hash == before.hash
        assert after.hash == audit.chain_hash(after.prev_hash, after.body)
    assert json.loads(events[2].body)["justification"] == "j3"
    assert AuditChainHead.objects.get(id=1).hash == events[-1].hash
    report = audit.audit_verify()
    assert report.ok and report.events == report.head_seq == events[-1].seq


def test_the_body_is_canonical_json():
    body = _event().body
    assert body == audit.canonical_json(json.loads(body))
    assert body.isascii() and ", " not in body and '": ' not in body


def test_audit_events_cannot_be_changed_by_save():
    event = _event()
    event.body = event.body.replace("5201234/26", "something else")
    with pytest.raises(PermissionError):
        event.save()
    assert AuditEvent.objects.get(pk=event.pk).justification == "5201234/26"


def test_audit_events_cannot_be_deleted_or_bulk_changed():
    event = _event()
    with pytest.raises(PermissionError):
        event.delete()
    with pytest.raises(PermissionError):
        AuditEvent.objects.filter(pk=event.pk).delete()
    with pytest.raises(PermissionError):
        AuditEvent.objects.filter(pk=event.pk).update(body="{}")
    with pytest.raises(PermissionError):
        AuditEvent.objects.bulk_update([event], ["body"])
    assert AuditEvent.objects.filter(pk=event.pk, action="recording.viewed").exists()


def test_an_event_needs_an_action_and_an_object():
    with pytest.raises(ValueError):
        audit_record(actor=None, action="", object_type="x", object_id="1")
    with pytest.raises(ValueError):
        audit_record(actor=None, action="x.y")


@pytest.mark.parametrize(
    "statement",
    [
        f"UPDATE {TABLE} SET body = body",
        f"DELETE FROM {TABLE}",
        f"TRUNCATE {TABLE}",
    ],
)
def test_postgresql_refuses_update_delete_and_truncate_even_for_a_superuser(statement):
    _chain(2)
    with connection.cursor() as cursor:
        cursor.execute("SELECT rolsuper FROM pg_roles WHERE rolname = current_user")
        assert cursor.fetchone()[0] is True  # the strongest role the application could have
        with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
            # The escape hatch the trigger once had for test databases: it is gone.
            cursor.execute("SET LOCAL bwv.test_flush = 'on'")
            cursor.execute(statement)
    assert AuditEvent.objects.count() == 2


def test_verify_finds_an_edited_event():
    _chain(6)
    _sql(f"UPDATE {TABLE} SET body = replace(body, '\"j3\"', '\"nothing to see\"') WHERE seq = 3")  # noqa: S608
    assert AuditEvent.objects.get(seq=3).justification == "nothing to see"  # the column follows
    finding = _finding()
    assert (finding.kind, finding.seq) == ("edited", 3)


def test_verify_finds_an_edited_event_whose_hash_was_recomputed():
    _chain(6)
    prev_hash, body, _ = _row(3)
    body = body.replace('"j3"', '"rewritten"')
    _sql(
        f"UPDATE {TABLE} SET body = %s, hash = %s WHERE seq = 3",  # noqa: S608
        [body, audit.chain_hash(prev_hash, body)],
    )
    finding = _finding()
    assert (finding.kind, finding.seq) == ("edited", 3)
    assert "recomputed" in finding.message


def test_verify_finds_a_removed_event():
    _chain(6)
    _sql(f"DELETE FROM {TABLE} WHERE seq = 4")  # noqa: S608
    finding = _finding()
    assert (finding.kind, finding.seq) == ("removed", 4)


def test_verify_finds_a_removed_event_when_the_rest_were_renumbered():
    _chain(6)
    _sql(f"DELETE FROM {TABLE} WHERE seq = 4")  # noqa: S608
    _renumber("seq > 4", -1)
    finding = _finding()
    assert (finding.kind, finding.seq) == ("removed", 4)


def test_verify_finds_an_inserted_event():
    _chain(6)
    _renumber("seq >= 3", 1)
    _forge(3, _row(2)[2])  # a well-formed event, linked to event 2
    finding = _finding()
    assert (finding.kind, finding.seq) == ("inserted", 3)


def test_verify_finds_a_clumsily_inserted_event():
    _chain(6)
    _renumber("seq >= 3", 1)
    _forge(3, _row(2)[2], correct_hash=False)
    finding = _finding()
    assert (finding.kind, finding.seq) == ("inserted", 3)


def test_verify_finds_reordered_events():
    _chain(6)
    _sql(f"UPDATE {TABLE} SET seq = -1 WHERE seq = 3")  # noqa: S608
    _sql(f"UPDATE {TABLE} SET seq = 3 WHERE seq = 4")  # noqa: S608
    _sql(f"UPDATE {TABLE} SET seq = 4 WHERE seq = -1")  # noqa: S608
    finding = _finding()
    assert (finding.kind, finding.seq) == ("reordered", 3)


def test_verify_finds_a_tail_cut_off_after_a_checkpoint():
    _chain(6)
    checkpoint = audit.checkpoint_write()
    assert checkpoint is not None and checkpoint.seq == 6
    assert audit.checkpoint_write() is None  # nothing new: nothing written
    _sql(f"DELETE FROM {TABLE} WHERE seq >= 5")  # noqa: S608
    report = audit.audit_verify()
    assert [(x.kind, x.seq) for x in report.findings] == [("tail_cut", 5)]
    assert "5-6" in report.findings[0].message


def test_verify_finds_a_chain_rewritten_from_an_edit_to_its_end():
    _chain(6)
    audit.checkpoint_write()
    # Edit event 2 and recompute every hash after it: the chain is consistent again, but the
    # signed checkpoint still names the old head.
    prev = _row(1)[2]
    for seq in range(2, 7):
        _, body, _ = _row(seq)
        if seq == 2:
            body = body.replace('"j2"', '"rewritten"')
        digest = audit.chain_hash(prev, body)
        _sql(
            f"UPDATE {TABLE} SET prev_hash = %s, body = %s, hash = %s WHERE seq = %s",  # noqa: S608
            [prev, body, digest, seq],
        )
        prev = digest
    report = audit.audit_verify()
    # The tree, written with each event, names where the rewrite starts; the checkpoint, that
    # the head is no longer the one signed.
    assert [(x.kind, x.seq) for x in report.findings] == [("tree", 2), ("rewritten", 6)]


def test_verify_refuses_a_forged_checkpoint():
    from django.conf import settings

    from blobstore import blob_store

    _chain(3)
    audit.checkpoint_write()
    name = f"{settings.BWV_AUDIT_CHECKPOINT_PREFIX}{9:020d}.json"
    forged = {
        "statement": {
            "format": audit.CHECKPOINT_FORMAT,
            "seq": 9,
            "hash": "0" * 64,
            "signed_at": "2026-01-01T00:00:00Z",
            "key": audit.key_id(audit.public_key_bytes()),
        },
        "signature": "AAAA",
    }
    blob_store().put(name, json.dumps(forged).encode())
    report = audit.audit_verify()
    assert [x.kind for x in report.findings] == ["checkpoint"]
    assert "signature" in report.findings[0].message


def test_audit_verify_command_exits_1_and_names_the_event(capsys):
    _chain(4)
    call_command("audit_verify")
    assert "audit chain intact" in capsys.readouterr().out
    _sql(f"UPDATE {TABLE} SET body = replace(body, '\"j2\"', '\"x\"') WHERE seq = 2")  # noqa: S608
    with pytest.raises(SystemExit) as exit_info:
        call_command("audit_verify")
    assert exit_info.value.code == 1
    assert "edited: event 2" in capsys.readouterr().err


@pytest.fixture
def small_blocks(monkeypatch):
    """Blocks of four events (ranges are whole blocks): a short chain spans several ranges."""
    monkeypatch.setattr(audit, "_BLOCK_LEVEL", 2)
    monkeypatch.setattr(audit, "_BLOCK_EVENTS", 4)


@pytest.mark.django_db(transaction=True)
def test_fast_path_finds_breaks_across_chunk_boundaries(small_blocks):
    """Outside a transaction verification splits the chain between worker processes, each
    reading its range by COPY; a break inside a range is still named exactly."""
    _chain(23)
    report = audit.audit_verify(workers=3)
    assert report.ok and report.events == 23
    _sql(f"UPDATE {TABLE} SET body = replace(body, '\"j17\"', '\"x\"') WHERE seq = 17")  # noqa: S608
    finding = _finding(workers=3)
    assert (finding.kind, finding.seq) == ("edited", 17)
    _sql(f"DELETE FROM {TABLE} WHERE seq = 9")  # the first break is reported, across ranges
    finding = _finding(workers=3)
    assert (finding.kind, finding.seq) == ("removed", 9)


@pytest.mark.django_db(transaction=True)
def test_concurrent_writers_never_fork_the_chain():
    errors = []

    def writer(k):
        try:
            for i in range(50):
                audit_record(
                    actor=f"system:writer{k}",
                    action="test.event",
                    object_type="test",
                    object_id=f"{k}-{i}",
                )
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=writer, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert list(AuditEvent.objects.values_list("seq", flat=True)) == list(range(1, 201))
    assert audit.audit_verify(workers=2).ok


@pytest.mark.django_db(transaction=True)
def test_fast_path_compares_checkpoints_inside_ranges(small_blocks):
    _chain(9)
    audit.checkpoint_write()  # at 9
    _chain(14)
    audit.checkpoint_write()  # at 23
    report = audit.audit_verify(workers=3)
    assert report.ok and report.checkpoints == 2
    # Rewrite event 5 and every hash after it: the links hold, the checkpoints do not.
    prev = _row(4)[2]
    for seq in range(5, 24):
        _, body, _ = _row(seq)
        if seq == 5:
            body = body.replace('"j5"', '"rewritten"')
        digest = audit.chain_hash(prev, body)
        _sql(
            f"UPDATE {TABLE} SET prev_hash = %s, body = %s, hash = %s WHERE seq = %s",
            [prev, body, digest, seq],
        )
        prev = digest
    report = audit.audit_verify(workers=3)
    assert [(x.kind, x.seq) for x in report.findings] == [("tree", 5), ("rewritten", 9)]
