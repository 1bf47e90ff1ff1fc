"""The many-event append (COPY on PostgreSQL, bulk inserts on SQLite) writes exactly the rows the
one-statement append would: the canonical bodies, the chain's hashes, and every Merkle tree node
RFC 9162 gives, continuing a tree built one event at a time; and audit_verify accepts the result."""

import json
import os
import subprocess
import sys
import uuid
from datetime import UTC, datetime
from pathlib import Path

import pytest
from django.db import DataError

from custody import audit, merkle
from custody.models import AuditEvent, AuditTreeNode
from custody.services import audit_record, audit_record_many
from tests import factories as f

pytestmark = pytest.mark.django_db
ROOT = Path(__file__).resolve().parents[2]

# Entries that test the body's text: a "seq" key nested in the detail (the body is cut where the
# top-level one goes), characters outside ASCII, a UUID object id, empty optional fields.
TRICKY = [
    {
        "actor": "system:test",
        "action": "test.bulk",
        "object_type": "evidence.recording",
        "object_id": uuid.UUID(int=7, version=4),
        "borough": "AB",
        "detail": {"seq": 12, "t": 3, "nested": {"seq": "x"}, "name": "Zoë Ó Briain"},
    },
    {
        "actor": "dock:ab12",
        "actor_id": 42,
        "action": "test.bulk",
        "object_type": "test",
        "object_id": "1",
        "borough": None,
        "justification": "5201234/26 \u2014 Crown Court",
        "recipient": "CPS London North",
    },
    {"actor": "system", "action": "test.bulk", "object_type": "test", "object_id": 3},
]


def _entries(n: int) -> list[dict]:
    return [dict(TRICKY[i % len(TRICKY)], object_id=f"{i}") for i in range(n)]


def _at(event: AuditEvent) -> datetime:
    stamp = json.loads(event.body)["at"]
    return datetime.strptime(stamp, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)


def _nodes_one_by_one(hashes: list[str]) -> tuple[bytes, dict]:
    """The tree as the one-statement append builds it: merkle.append_leaf, leaf after leaf."""
    frontier, nodes = b"", {}
    for i, digest in enumerate(hashes):
        frontier, made = merkle.append_leaf(frontier, i, merkle.leaf_hash(bytes.fromhex(digest)))
        nodes.update({(level, index): node for level, index, node in made})
    return frontier, nodes


@pytest.mark.parametrize("head,many", [(0, 1), (0, 2), (3, 5), (5, 64), (7, 1000)])
def test_the_bulk_append_writes_what_one_by_one_appends_would(head, many):
    """A chain started one event at a time (`head` appends) and continued by one many-event
    append: the bodies are event_body's, the hashes chain, the tree nodes are the ones append_leaf
    gives leaf by leaf, and the head's frontier is the tree's edge."""
    for i in range(head):
        audit.audit_append([dict(TRICKY[i % len(TRICKY)], object_id=f"single-{i}")])
    entries = _entries(many)
    returned = audit.audit_append(entries)
    assert [e.seq for e in returned] == list(range(head + 1, head + many + 1))

    stored = list(AuditEvent.objects.order_by("seq"))
    assert len(stored) == head + many
    by_pk = {e.pk: e for e in stored}
    for event, entry in zip(returned, entries, strict=True):
        row = by_pk[event.pk]  # the ids returned are the rows written
        assert (row.seq, row.prev_hash, row.hash, row.body) == (
            event.seq,
            event.prev_hash,
            event.hash,
            event.body,
        )
        assert row.body == audit.event_body(seq=row.seq, at=_at(row), entry=entry)
        # The generated columns set on the returned events are the database's.
        for name in ("actor_user_id", "actor_label", "action", "object_type", "object_id"):
            assert getattr(event, name) == getattr(row, name), name
        assert event.borough_code == row.borough_code
    prev = audit.GENESIS
    for row in stored:
        assert row.prev_hash == prev and row.hash == audit.chain_hash(prev, row.body)
        prev = row.hash

    frontier, expected = _nodes_one_by_one([row.hash for row in stored])
    written = {(n.level, n.index): bytes(n.hash) for n in AuditTreeNode.objects.all()}
    assert written == expected
    head_row = audit.tree_head()
    assert head_row.size == head + many and head_row.chain_hash == prev
    assert merkle.frontier_root(frontier, head + many) == head_row.root
    report = audit.audit_verify(checkpoints=False)
    assert report.ok, report.findings


def test_bulk_and_single_appends_interleave_into_one_chain():
    recordings = [f.camera() for _ in range(3)]
    audit_record(actor="system:test", action="test.one", object_type="test", object_id="a")
    audit_record_many(
        actor="system:test", action="test.many", entries=[{"obj": r} for r in recordings]
    )
    audit_record(actor="system:test", action="test.one", object_type="test", object_id="b")
    audit_record_many(actor="system:test", action="test.many", entries=[{"obj": recordings[0]}])
    assert list(AuditEvent.objects.values_list("seq", flat=True)) == list(range(1, 7))
    report = audit.audit_verify(checkpoints=False)
    assert report.ok and report.events == 6, report.findings


def test_a_bulk_append_that_fails_leaves_nothing_behind():
    """A row PostgreSQL refuses in the middle of the COPY (a body whose detail holds a NUL, which
    the generated columns cannot read as text) rolls back the whole append: no event, no node,
    the head where it was."""
    audit_record(actor="system:test", action="test.one", object_type="test", object_id="a")
    before = audit.tree_head()
    bad = _entries(5)
    bad[3] = dict(bad[3], detail={"note": "\x00"})
    with pytest.raises(DataError, match="cannot be converted to text"):
        audit.audit_append(bad)
    assert audit.tree_head() == before
    assert AuditEvent.objects.count() == 1 and AuditTreeNode.objects.count() == 1
    assert audit.audit_verify(checkpoints=False).ok


def test_append_leaves_gives_what_append_leaf_gives_one_by_one():
    hashes = [bytes([i]) * 32 for i in range(37)]
    frontier, nodes = b"", []
    for i, data in enumerate(hashes[:11]):
        frontier, made = merkle.append_leaf(frontier, i, merkle.leaf_hash(data))
    expected_frontier, expected = frontier, []
    for i, data in enumerate(hashes[11:], start=11):
        expected_frontier, made = merkle.append_leaf(expected_frontier, i, merkle.leaf_hash(data))
        expected += made
    frontier, nodes = merkle.append_leaves(frontier, 11, b"".join(hashes[11:]))
    assert (frontier, nodes) == (expected_frontier, expected)


def test_appends_work_on_the_embedded_sqlite_database(tmp_path):
    """`make run` uses SQLite: the one-event and many-event appends and audit_verify there."""
    script = (
        "import django, os; os.environ['DJANGO_SETTINGS_MODULE'] = 'bwv.settings'; django.setup()\n"
        "from django.core.management import call_command\n"
        "call_command('migrate', verbosity=0)\n"
        "from django.db import connection\n"
        "from custody import audit\n"
        "assert connection.vendor == 'sqlite'\n"
        "e = lambda i: {'actor': 'system', 'action': 'test', 'object_type': 't', 'object_id': i}\n"
        "audit.audit_append([e(0)])\n"
        "many = audit.audit_append([e(i) for i in range(1, 40)])\n"
        "audit.audit_append([e(40)])\n"
        "report = audit.audit_verify(checkpoints=False)\n"
        "from custody.models import AuditEvent, AuditTreeNode\n"
        "print(report.ok, report.events, AuditTreeNode.objects.count(), many[-1].seq,\n"
        "      AuditEvent.objects.get(seq=20).object_id)\n"
    )
    env = {"PATH": os.environ["PATH"], "HOME": str(tmp_path), "BWV_VAR_DIR": str(tmp_path / "v")}
    out = subprocess.run(
        [sys.executable, "-c", script],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert out.returncode == 0, out.stderr
    # 41 leaves make 41 + 20 + 10 + 5 + 2 + 1 nodes.
    assert out.stdout.split() == ["True", "41", "79", "40", "19"]
