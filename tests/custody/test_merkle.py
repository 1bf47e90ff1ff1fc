"""The audit log's Merkle tree (RFC 9162): the published known answers, proofs over chains of
many sizes made by the real appends on PostgreSQL, tampered proofs refused, and the tree kept
append-only and checked against the chain by audit_verify."""

import hashlib
import importlib

import pytest
from django.db import DatabaseError, connection, transaction
from django.db.migrations.loader import MigrationLoader
from hypothesis import given, settings
from hypothesis import strategies as st

from custody import audit, merkle
from custody.models import AuditChainHead, AuditTreeNode
from custody.services import audit_record, audit_record_many
from tests import factories as f
from tests.verifier import load_verifier

NODES = AuditTreeNode._meta.db_table

# Known answers for RFC 6962/9162 trees, as published with the reference implementation of
# Certificate Transparency (transparency-dev/merkle, testonly): eight leaves and the root of
# every tree they make, an inclusion proof and a consistency proof.
LEAVES = [
    "",
    "00",
    "10",
    "2021",
    "3031",
    "40414243",
    "5051525354555657",
    "606162636465666768696a6b6c6d6e6f",
]
ROOTS = [
    "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
    "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
    "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
    "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
    "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
    "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
]
INCLUSION_5_OF_8 = [
    "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
    "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
]
CONSISTENCY_6_TO_8 = [
    "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
    "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
]


def _reference_root(leaves: list[bytes]) -> bytes:
    """MTH of RFC 9162 2.1.1, written straight from its definition."""
    if not leaves:
        return hashlib.sha256(b"").digest()
    if len(leaves) == 1:
        return hashlib.sha256(b"\x00" + leaves[0]).digest()
    k = 1 << ((len(leaves) - 1).bit_length() - 1)
    left, right = _reference_root(leaves[:k]), _reference_root(leaves[k:])
    return hashlib.sha256(b"\x01" + left + right).digest()


class _Memory:
    """A tree built leaf by leaf with the same append the database uses."""

    def __init__(self, leaves: list[bytes]):
        self.frontier, self.nodes = b"", {}
        for i, data in enumerate(leaves):
            self.frontier, made = merkle.append_leaf(self.frontier, i, merkle.leaf_hash(data))
            self.nodes.update({(level, index): h for level, index, h in made})

    def get(self, wanted):
        return {k: self.nodes[k] for k in wanted if k in self.nodes}

    def inclusion(self, index, size):
        return merkle.resolve([merkle.inclusion_ranges(index, size)], self.get)[0]

    def consistency(self, old, new):
        return merkle.resolve([merkle.consistency_ranges(old, new)], self.get)[0]


def test_roots_and_proofs_are_the_published_known_answers():
    leaves = [bytes.fromhex(x) for x in LEAVES]
    tree = _Memory(leaves)
    for size in range(1, 9):
        frontier = _Memory(leaves[:size]).frontier
        assert merkle.frontier_root(frontier, size).hex() == ROOTS[size - 1]
    assert [h.hex() for h in tree.inclusion(5, 8)] == INCLUSION_5_OF_8
    assert [h.hex() for h in tree.consistency(6, 8)] == CONSISTENCY_6_TO_8
    assert merkle.frontier_root(b"", 0) == hashlib.sha256(b"").digest()


def _tamper(proof: list[bytes], which: int, bit: int) -> list[bytes]:
    out = list(proof)
    item = bytearray(out[which])
    item[bit // 8 % 32] ^= 1 << (bit % 8)
    out[which] = bytes(item)
    return out


@settings(max_examples=60, deadline=None)
@given(size=st.integers(1, 70), data=st.data())
def test_every_proof_holds_and_every_tampered_one_fails(size, data):
    """Both checks, the server's and the offline verifier's, over trees of any size."""
    verifier = load_verifier()
    leaves = [i.to_bytes(4, "big") for i in range(size)]
    tree = _Memory(leaves)
    root = _reference_root(leaves)
    assert merkle.frontier_root(tree.frontier, size) == root
    index = data.draw(st.integers(0, size - 1))
    leaf = merkle.leaf_hash(leaves[index])
    proof = tree.inclusion(index, size)
    for check in (merkle.verify_inclusion, verifier.verify_inclusion):
        assert check(leaf, index, size, proof, root)
        assert not check(merkle.leaf_hash(b"other"), index, size, proof, root)
        if size > 1:
            assert not check(leaf, (index + 1) % size, size, proof, root)
            which = data.draw(st.integers(0, len(proof) - 1))
            assert not check(
                leaf, index, size, _tamper(proof, which, data.draw(st.integers(0, 255))), root
            )
            assert not check(leaf, index, size, proof[:-1], root)
        assert not check(leaf, index, size, [*proof, root], root)
    old = data.draw(st.integers(1, size))
    old_root = _reference_root(leaves[:old])
    proof = tree.consistency(old, size) if old < size else []
    for check in (merkle.verify_consistency, verifier.verify_consistency):
        assert check(old, size, proof, old_root, root)
        assert not check(old, size, proof, merkle.leaf_hash(b"x"), root)
        if old < size:
            which = data.draw(st.integers(0, len(proof) - 1))
            assert not check(
                old, size, _tamper(proof, which, data.draw(st.integers(0, 255))), old_root, root
            )
            assert not check(old, size, proof, old_root, merkle.leaf_hash(b"x"))


def _chain(n: int) -> list:
    return [
        audit_record(actor="system:test", action="test.event", object_type="test", object_id=str(i))
        for i in range(n)
    ]


def _event_hashes() -> list[bytes]:
    from custody.models import AuditEvent

    return [
        bytes.fromhex(h) for h in AuditEvent.objects.order_by("seq").values_list("hash", flat=True)
    ]


@pytest.mark.django_db
@pytest.mark.parametrize("size", [1, 2, 3, 4, 7, 8, 13, 16, 33])
def test_the_stored_tree_proves_every_event_of_a_chain(size):
    """One event, powers of two and others; the one-statement append, and the many-event
    append after it, build the same tree as RFC 9162's definition."""
    head = size // 2 or size
    _chain(head)
    if size > head:
        entries = [{"obj": f.camera()} for _ in range(size - head)]
        audit_record_many(actor="system:test", action="test.event", entries=entries)
    hashes = _event_hashes()
    assert len(hashes) == size
    tree = audit.tree_head()
    assert tree.size == size
    assert tree.root == _reference_root(hashes)
    proofs = audit.inclusion_proofs(list(range(1, size + 1)), size)
    for seq, proof in proofs.items():
        leaf = merkle.leaf_hash(hashes[seq - 1])
        assert merkle.verify_inclusion(
            leaf, seq - 1, size, [bytes.fromhex(p) for p in proof], tree.root
        )
    for old in range(1, size + 1):
        proof = [bytes.fromhex(p) for p in audit.consistency_proof(old, size)]
        assert merkle.verify_consistency(old, size, proof, _reference_root(hashes[:old]), tree.root)
    assert audit.audit_verify().ok


def _sql(sql: str, params=None) -> None:
    """As a superuser with the audit triggers bypassed, as an attacker with full database access."""
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SET LOCAL session_replication_role = replica")
        cursor.execute(sql, params or [])
        cursor.execute("SET LOCAL session_replication_role = DEFAULT")


@pytest.mark.django_db
@pytest.mark.parametrize(
    "statement",
    [f"UPDATE {NODES} SET hash = hash", f"DELETE FROM {NODES}", f"TRUNCATE {NODES}"],
)
def test_postgresql_refuses_to_change_the_tree_even_for_a_superuser(statement):
    _chain(3)
    with connection.cursor() as cursor:
        with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
            # The escape hatch the trigger once had for test databases: it is gone.
            cursor.execute("SET LOCAL bwv.test_flush = 'on'")
            cursor.execute(statement)
    assert AuditTreeNode.objects.count() == 4  # three leaves and one pair
    with pytest.raises(PermissionError):
        AuditTreeNode.objects.all().delete()
    with pytest.raises(PermissionError):
        AuditTreeNode.objects.update(hash=b"x")


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("attack", "kind", "seq"),
    [
        (f"UPDATE {NODES} SET hash = sha256(hash) WHERE level = 0 AND index = 4", "tree", 5),
        (f"UPDATE {NODES} SET hash = sha256(hash) WHERE level = 2 AND index = 1", "tree", 5),
        (f"DELETE FROM {NODES} WHERE level = 1 AND index = 3", "tree", 7),
        (f"INSERT INTO {NODES} (level, index, hash) VALUES (5, 0, sha256('x'))", "tree", 12),
        (f"INSERT INTO {NODES} (level, index, hash) VALUES (0, 11, sha256('x'))", "tail_cut", 12),
    ],
)
def test_verify_finds_an_altered_missing_or_added_tree_node(attack, kind, seq):
    _chain(11)
    assert audit.audit_verify().ok
    _sql(attack)
    report = audit.audit_verify()
    assert [(x.kind, x.seq) for x in report.findings] == [(kind, seq)], report.findings


@pytest.mark.django_db(transaction=True)
def test_the_fast_path_checks_the_tree_across_blocks_and_ranges(monkeypatch):
    """Outside a transaction the tree is checked block by block in worker processes and above
    the blocks in the parent; tiny blocks here make 11 events span many of both."""
    monkeypatch.setattr(audit, "_BLOCK_LEVEL", 1)
    monkeypatch.setattr(audit, "_BLOCK_EVENTS", 2)
    _chain(11)
    audit.checkpoint_write()
    report = audit.audit_verify(workers=3)
    assert report.ok and report.events == 11
    _sql(f"UPDATE {NODES} SET hash = sha256(hash) WHERE level = 3 AND index = 0")
    report = audit.audit_verify(workers=3)
    assert [(x.kind, x.seq) for x in report.findings] == [("tree", 1)]
    assert "events 1-8" in report.findings[0].message


@pytest.mark.django_db
def test_the_head_row_must_hold_the_trees_edge():
    _chain(6)
    _sql("UPDATE evidence_auditchainhead SET frontier = sha256(frontier) WHERE id = 1")
    report = audit.audit_verify()
    assert [x.kind for x in report.findings] == ["tree"]
    assert "edge" in report.findings[0].message


@pytest.mark.django_db
def test_the_migration_builds_the_same_tree_as_the_appends():
    _chain(9)
    entries = [{"obj": f.camera()} for _ in range(4)]
    audit_record_many(actor="system:test", action="test.event", entries=entries)
    before = set(AuditTreeNode.objects.values_list("level", "index", "hash"))
    frontier = bytes(AuditChainHead.objects.get(id=1).frontier)
    _sql(f"DELETE FROM {NODES}")
    _sql("UPDATE evidence_auditchainhead SET frontier = ''::bytea WHERE id = 1")
    migration = importlib.import_module("evidence.migrations.0011_audit_merkle_tree")
    # The models as that migration saw them (they have moved app since, on the same tables).
    state = MigrationLoader(connection).project_state(("evidence", "0011_audit_merkle_tree"))
    migration.build_tree(state.apps, None)
    after = {
        (lv, ix, bytes(h))
        for lv, ix, h in AuditTreeNode.objects.values_list("level", "index", "hash")
    }
    assert after == {(lv, ix, bytes(h)) for lv, ix, h in before}
    assert bytes(AuditChainHead.objects.get(id=1).frontier) == frontier
    assert audit.audit_verify().ok


def _signed(statement: dict) -> bytes:
    import json

    signature = audit.sign(audit.canonical_json(statement).encode())
    return json.dumps({"statement": statement, "signature": signature}).encode()


@pytest.mark.django_db
def test_checkpoints_are_signed_tree_heads_and_old_ones_still_verify(capsys):
    import json

    from django.conf import settings as django_settings
    from django.core.management import call_command

    from blobstore import blob_store

    _chain(4)
    head, chain_hash = audit.audit_head()
    old = {
        "format": "bwv-audit-checkpoint/1",
        "seq": head,
        "hash": chain_hash,
        "signed_at": "2026-01-01T00:00:00Z",
        "key": audit.key_id(audit.public_key_bytes()),
    }
    name = f"{django_settings.BWV_AUDIT_CHECKPOINT_PREFIX}{head:020d}.json"
    blob_store().put(name, _signed(old))
    _chain(3)
    written = audit.checkpoint_write()
    document = json.loads(blob_store().get(written.name))
    statement = document["statement"]
    assert statement["format"] == "bwv-audit-tree-head/1"
    assert statement["tree_size"] == statement["seq"] == 7
    assert statement["root_hash"] == _reference_root(_event_hashes()).hex()
    assert statement["hash"] == audit.audit_head()[1]
    report = audit.audit_verify()
    assert report.ok and report.checkpoints == 2 and report.chain_only_checkpoints == 1
    call_command("audit_verify")
    assert "1 of them in the format before the tree" in capsys.readouterr().out
    # A head that signs another root than the chain's is a rewrite, whatever its chain hash says.
    forged = dict(statement, root_hash="00" * 32)
    blob_store().put(written.name, _signed(forged))
    report = audit.audit_verify()
    assert [(x.kind, x.seq) for x in report.findings] == [("rewritten", 7)]


@pytest.mark.django_db
def test_a_consistency_proof_between_two_signed_heads_checks_offline(tmp_path, capsys):
    import json

    from django.core.management import call_command

    _chain(5)
    audit.checkpoint_write()
    _chain(6)
    call_command("audit_checkpoint", "--consistency-from", "5")
    document = json.loads(capsys.readouterr().out)
    assert document["earlier"]["statement"]["tree_size"] == 5
    assert document["later"]["statement"]["tree_size"] == 11
    path = tmp_path / "consistency.json"
    path.write_text(json.dumps(document))
    verifier = load_verifier()
    key = audit.public_key_b64()
    assert verifier.main(["--consistency", str(path), "--public-key", key]) == 0
    assert "extends" in capsys.readouterr().out
    document["proof"][0] = "00" * 32
    path.write_text(json.dumps(document))
    assert verifier.main(["--consistency", str(path), "--public-key", key]) == 1
    assert "do not rely" in capsys.readouterr().out.lower()
