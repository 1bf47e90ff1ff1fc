"""The audit log as a hash chain, its signed checkpoints, and its verification.

Guarantees:
- every event's `body` is a canonical JSON serialisation (sorted keys, no spaces, ASCII only) of
  its sequence number, time, actor, action, object, borough, justification, recipient and detail;
  `hash` = SHA-256(prev_hash + body) as hex, and `prev_hash` is the previous event's hash (64 zeros
  for the first), so changing, removing, inserting or reordering any event breaks the chain;
- appends are serialised by taking the one `AuditChainHead` row first (a row lock on PostgreSQL, the
  write lock on SQLite), so concurrent writers never fork the chain and sequence numbers have no
  gaps; the lock is held until the caller's transaction commits, so an event that is rolled back
  takes its sequence number with it;
- on PostgreSQL a trigger refuses UPDATE, DELETE and TRUNCATE on the table, for every role; only
  someone who can disable triggers can alter history, and then `audit_verify` finds it. The
  application's own role cannot: it may only read and insert here (`db_grant_app_role`);
- the events are also the leaves of a Merkle tree (RFC 9162, custody/merkle.py): leaf i is
  SHA-256(0x00 || the hash of event i + 1). The append that writes an event writes, in the same
  statement, the tree nodes it completes and the tree's new right edge in the head row, so the
  tree always covers exactly the events, and an append stays one statement on PostgreSQL;
- a checkpoint is a signed tree head (tree size, root hash, and the chain head's sequence number
  and hash, signed with Ed25519), written every few minutes to the bucket, under Object Lock where
  it has it, where the database cannot rewrite it: a rewrite of the whole chain, or a tail cut
  off, shows against the last checkpoint. Events after the last checkpoint are protected by the
  chain only, until the next one. From any stored tree, anyone can be given a proof that one event
  is in the log a signed head describes (inclusion), or that a later signed head extends an
  earlier one (consistency), and check it with nothing but SHA-256;
- checkpoints of the format before the tree (chain head only) still verify, and are reported as
  such.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import multiprocessing
import os
from binascii import unhexlify
from bisect import bisect_right
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import cache
from operator import itemgetter, methodcaller
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from django.conf import settings
from django.core.serializers.json import DjangoJSONEncoder
from django.db import connection, connections, transaction
from django.utils import timezone

from blobstore import blob_store
from custody import merkle
from custody.models import AuditChainHead, AuditEvent, AuditTreeNode

GENESIS = "0" * 64
CHECKPOINT_FORMAT_CHAIN_ONLY = "bwv-audit-checkpoint/1"  # before the tree: seq and hash only
CHECKPOINT_FORMAT = "bwv-audit-tree-head/1"
CONSISTENCY_FORMAT = "bwv-audit-consistency/1"


# -- The chain ------------------------------------------------------------------------------------


# One encoder for every call: json.dumps(cls=...) would build a new one each time, a cost that
# shows when thousands of events are appended at once.
_CANONICAL = DjangoJSONEncoder(
    sort_keys=True, separators=(",", ":"), ensure_ascii=True, allow_nan=False
)


def canonical_json(value: Any) -> str:
    """The one serialisation that is hashed and signed: sorted keys, no spaces, ASCII only."""
    return _CANONICAL.encode(value)


def chain_hash(prev_hash: str, body: str) -> str:
    return hashlib.sha256((prev_hash + body).encode("ascii")).hexdigest()


def _event_dict(*, seq: int, at: datetime, entry: dict) -> dict:
    at = at.astimezone(UTC)
    micros = (at - datetime(1970, 1, 1, tzinfo=UTC)) // timedelta(microseconds=1)
    return {
        "seq": seq,
        "t": micros,
        "at": at.strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
        "actor": entry["actor"],
        "actor_id": entry.get("actor_id"),
        "action": entry["action"],
        "object_type": entry["object_type"],
        "object_id": str(entry["object_id"]),
        "borough": entry.get("borough") or "",
        "justification": entry.get("justification") or "",
        "recipient": entry.get("recipient") or "",
        "detail": entry.get("detail") or {},
    }


def event_body(*, seq: int, at: datetime, entry: dict) -> str:
    """The canonical body of one event. `entry` holds actor, actor_id, action, object_type,
    object_id, borough, justification, recipient and detail."""
    return canonical_json(_event_dict(seq=seq, at=at, entry=entry))


def _bodies_around_seq(*, at: datetime, entries: list[dict]) -> list[tuple[str, str]]:
    """Each body split where the sequence number goes, so that everything but the number is
    serialised before the chain's lock is taken. "seq" and "t" sort last among the keys, so a
    body is the canonical JSON of the other keys, then "seq", then "t" (the same for every event
    of one append): the same text event_body gives, without serialising the time again."""
    micros = (at - datetime(1970, 1, 1, tzinfo=UTC)) // timedelta(microseconds=1)
    stamp = at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    after = f',"t":{micros}}}'
    encode = _CANONICAL.encode
    parts = []
    for entry in entries:
        head = encode(
            {
                "at": stamp,
                "actor": entry["actor"],
                "actor_id": entry.get("actor_id"),
                "action": entry["action"],
                "object_type": entry["object_type"],
                "object_id": str(entry["object_id"]),
                "borough": entry.get("borough") or "",
                "justification": entry.get("justification") or "",
                "recipient": entry.get("recipient") or "",
                "detail": entry.get("detail") or {},
            }
        )
        parts.append((head[:-1] + ',"seq":', after))
    return parts


_HEAD_TABLE = AuditChainHead._meta.db_table
_EVENT_TABLE = AuditEvent._meta.db_table
_NODE_TABLE = AuditTreeNode._meta.db_table

# One statement, one round trip, on PostgreSQL: lock the head, number and hash the event (the
# database's SHA-256 over the same bytes as chain_hash), climb the Merkle tree from the new leaf
# (one node per trailing 1 bit of the old size, each merged with the frontier's last subtree),
# insert the event and the nodes, and move the head and its frontier. The lock is held only from
# here to the commit.
_APPEND_ONE_SQL = f"""
WITH RECURSIVE old AS (
    SELECT seq, hash, frontier FROM {_HEAD_TABLE} WHERE id = 1 FOR UPDATE
), calc AS (
    SELECT old.seq + 1 AS seq, old.hash AS prev, old.frontier,
           encode(sha256(convert_to(old.hash || %(before)s || (old.seq + 1)::text || %(after)s,
                                    'UTF8')), 'hex') AS hash
    FROM old
), climb(level, node, rest) AS (
    SELECT 0, sha256(decode('00', 'hex') || decode(calc.hash, 'hex')), calc.frontier FROM calc
    UNION ALL
    SELECT climb.level + 1,
           sha256(decode('01', 'hex') || substr(climb.rest, length(climb.rest) - 31, 32)
                  || climb.node),
           substr(climb.rest, 1, length(climb.rest) - 32)
    FROM climb, calc
    WHERE ((calc.seq - 1) >> climb.level) & 1 = 1
), nodes AS (
    INSERT INTO {_NODE_TABLE} (level, index, hash)
    SELECT climb.level, (calc.seq - 1) >> climb.level, climb.node FROM climb, calc
), new AS (
    UPDATE {_HEAD_TABLE} AS h
    SET seq = calc.seq, hash = calc.hash,
        frontier = (SELECT rest || node FROM climb ORDER BY level DESC LIMIT 1)
    FROM calc WHERE h.id = 1
    RETURNING h.seq AS seq, h.hash AS hash, calc.prev AS prev
)
INSERT INTO {_EVENT_TABLE} (seq, prev_hash, hash, body)
SELECT seq, prev, hash, %(before)s || seq::text || %(after)s FROM new
RETURNING id, seq, prev_hash, hash, body
"""  # noqa: S608


def audit_append(entries: list[dict]) -> list[AuditEvent]:
    """Append events, in order, to the chain. Runs in the caller's transaction (or its own)."""
    if not entries:
        return []
    at = timezone.now()
    if len(entries) == 1 and connection.vendor == "postgresql":
        ((before, after),) = _bodies_around_seq(at=at, entries=entries)
        with connection.cursor() as cursor:
            cursor.execute(_APPEND_ONE_SQL, {"before": before, "after": after})
            row = cursor.fetchone()
            if row is None:
                _head_create()
                cursor.execute(_APPEND_ONE_SQL, {"before": before, "after": after})
                row = cursor.fetchone()
        pk, seq, prev, digest, body = row
        event = AuditEvent(id=pk, seq=seq, prev_hash=prev, hash=digest, body=body)
        event._state.adding = False
        events = [event]
    else:
        events = _append_many(entries, at)
    for event, entry in zip(events, entries, strict=True):
        # The generated columns, without a round trip: the same values _event_dict put in the body.
        event.at = at
        event.actor_user_id = entry.get("actor_id")
        event.actor_label = entry["actor"]
        event.action = entry["action"]
        event.object_type = entry["object_type"]
        event.object_id = str(entry["object_id"])
        event.borough_code = entry.get("borough") or ""
    return events


def _append_many(entries: list[dict], at: datetime) -> list[AuditEvent]:
    """Several events in one transaction: the bodies are serialised before the lock, the chain's
    hashes and the tree's nodes computed in Python under it, and the rows written in bulk (COPY on
    PostgreSQL). The rows are exactly those the one-statement append would write one by one."""
    n = len(entries)
    parts = _bodies_around_seq(at=at, entries=entries)
    postgres = connection.vendor == "postgresql"
    with transaction.atomic(), connection.cursor() as cursor:
        # UPDATE first, read after: the lock (row lock on PostgreSQL, the write lock on SQLite)
        # is taken before the head is read, so no two writers read the same head.
        sql = (
            f"UPDATE {_HEAD_TABLE} SET seq = seq + %s WHERE id = 1 "  # noqa: S608
            "RETURNING seq, hash, frontier"
        )
        cursor.execute(sql, [n])
        row = cursor.fetchone()
        if row is None:
            _head_create()
            cursor.execute(sql, [n])
            row = cursor.fetchone()
        last_seq, prev, frontier = row[0], row[1], bytes(row[2])
        first_seq = last_seq - n + 1
        rows, hashes = [], []
        for seq, (before, after) in enumerate(parts, start=first_seq):
            body = f"{before}{seq}{after}"
            digest = chain_hash(prev, body)
            rows.append((seq, prev, digest, body))
            hashes.append(digest)
            prev = digest
        frontier, nodes = merkle.append_leaves(frontier, first_seq - 1, unhexlify("".join(hashes)))
        if postgres:
            events = _copy_rows(cursor, rows, nodes)
        else:
            events = AuditEvent.objects.bulk_create(
                [AuditEvent(seq=s, prev_hash=p, hash=h, body=b) for s, p, h, b in rows],
                batch_size=1000,
            )
            AuditTreeNode.objects.bulk_create(
                [AuditTreeNode(level=lv, index=ix, hash=h) for lv, ix, h in nodes],
                batch_size=1000,
            )
        cursor.execute(
            f"UPDATE {_HEAD_TABLE} SET hash = %s, frontier = %s WHERE id = 1",  # noqa: S608
            [prev, frontier],
        )
    return events


def _copy_rows(cursor, rows: list[tuple], nodes: list[tuple]) -> list[AuditEvent]:
    """Write events and tree nodes with COPY (PostgreSQL), and return the events with their ids.
    COPY needs only the INSERT privilege the application's role has, and fires the same
    constraints; the ids are read back by sequence number, in one indexed range."""
    raw = cursor.cursor  # psycopg's own cursor, for COPY
    # Django's error classes, as for any other statement (an IntegrityError stays one).
    with connection.wrap_database_errors:
        with raw.copy(f"COPY {_EVENT_TABLE} (seq, prev_hash, hash, body) FROM STDIN") as copy:
            for row in rows:
                copy.write_row(row)
        with raw.copy(f'COPY {_NODE_TABLE} (level, "index", hash) FROM STDIN') as copy:
            for node in nodes:
                copy.write_row(node)
    cursor.execute(
        f"SELECT id FROM {_EVENT_TABLE} WHERE seq >= %s AND seq <= %s ORDER BY seq",  # noqa: S608
        [rows[0][0], rows[-1][0]],
    )
    ids = cursor.fetchall()
    if len(ids) != len(rows):  # pragma: no cover - the unique seq and the head's lock forbid it
        raise AssertionError("the events written do not read back one for one")
    # from_db with every column builds a model from positional values, the cheap way; the
    # generated columns are filled in by audit_append.
    fields = [f.attname for f in AuditEvent._meta.concrete_fields]
    alias = connection.alias
    events = []
    for (pk,), row in zip(ids, rows, strict=True):
        values = dict.fromkeys(fields)
        values.update(zip(("id", "seq", "prev_hash", "hash", "body"), (pk, *row), strict=True))
        events.append(AuditEvent.from_db(alias, fields, tuple(values.values())))
    return events


def _head_create() -> None:
    """The head row, continuing whatever chain and tree are in the tables (empty: the genesis)."""
    last = AuditEvent.objects.order_by("-seq").values_list("seq", "hash").first()
    seq, digest = last or (0, GENESIS)
    edge = tree_nodes(set(merkle.perfect_parts(0, seq)))
    frontier = b"".join(edge[part] for part in merkle.perfect_parts(0, seq))
    with transaction.atomic():
        AuditChainHead.objects.get_or_create(
            id=1, defaults={"seq": seq, "hash": digest, "frontier": frontier}
        )


def audit_head() -> tuple[int, str]:
    row = AuditChainHead.objects.filter(id=1).values_list("seq", "hash").first()
    return row or (0, GENESIS)


@dataclass(frozen=True)
class TreeHead:
    size: int  # tree size = the chain head's sequence number
    root: bytes
    chain_hash: str


def tree_head() -> TreeHead:
    """The chain head and the tree's root over the same events, read from one row."""
    row = AuditChainHead.objects.filter(id=1).values_list("seq", "hash", "frontier").first()
    if row is None:
        return TreeHead(0, merkle.EMPTY_ROOT, GENESIS)
    seq, digest, frontier = row
    return TreeHead(seq, merkle.frontier_root(bytes(frontier), seq), digest)


def tree_nodes(wanted: set[tuple[int, int]]) -> dict[tuple[int, int], bytes]:
    """Stored tree nodes by (level, index)."""
    found: dict[tuple[int, int], bytes] = {}
    keys = sorted(wanted)
    for i in range(0, len(keys), 500):
        rows = AuditTreeNode.objects.filter(pk__in=keys[i : i + 500]).values_list(
            "level", "index", "hash"
        )
        found.update({(level, index): bytes(h) for level, index, h in rows})
    return found


def inclusion_proofs(seqs: list[int], size: int) -> dict[int, list[str]]:
    """For each event, the proof (hex hashes) that it is in the tree of `size` events."""
    proofs = merkle.resolve([merkle.inclusion_ranges(s - 1, size) for s in seqs], tree_nodes)
    return {s: [h.hex() for h in proof] for s, proof in zip(seqs, proofs, strict=True)}


def consistency_proof(old_size: int, new_size: int) -> list[str]:
    """The proof (hex hashes) that the tree of `new_size` events extends the one of `old_size`."""
    if old_size == 0 or old_size == new_size:
        return []
    proof = merkle.resolve([merkle.consistency_ranges(old_size, new_size)], tree_nodes)[0]
    return [h.hex() for h in proof]


# -- Signing ----------------------------------------------------------------------------------------


@cache
def signing_key() -> Ed25519PrivateKey:
    raw = settings.BWV_AUDIT_SIGNING_KEY.strip()
    if raw.startswith("-----BEGIN"):
        key = serialization.load_pem_private_key(raw.encode(), password=None)
        if not isinstance(key, Ed25519PrivateKey):
            raise ValueError("BWV_AUDIT_SIGNING_KEY must be an Ed25519 key")
        return key
    return Ed25519PrivateKey.from_private_bytes(base64.b64decode(raw))


def public_key_bytes(key: Ed25519PublicKey | None = None) -> bytes:
    key = key or signing_key().public_key()
    return key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def public_key_b64() -> str:
    return base64.b64encode(public_key_bytes()).decode()


def key_id(public: bytes) -> str:
    """A short name for a public key: the first 16 hex digits of its SHA-256."""
    return hashlib.sha256(public).hexdigest()[:16]


def verification_keys() -> dict[str, Ed25519PublicKey]:
    """Current and earlier public keys, by key id."""
    keys = {key_id(public_key_bytes()): signing_key().public_key()}
    for b64 in settings.BWV_AUDIT_OLD_PUBLIC_KEYS:
        raw = base64.b64decode(b64)
        keys[key_id(raw)] = Ed25519PublicKey.from_public_bytes(raw)
    return keys


def sign(data: bytes) -> str:
    return base64.b64encode(signing_key().sign(data)).decode()


# -- Checkpoints ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Checkpoint:
    seq: int
    hash: str
    signed_at: str
    key: str
    name: str = ""
    root_hash: str | None = None  # None: a checkpoint of the format before the tree

    @property
    def tree_size(self) -> int | None:
        return None if self.root_hash is None else self.seq


def _checkpoint_name(seq: int) -> str:
    return f"{settings.BWV_AUDIT_CHECKPOINT_PREFIX}{seq:020d}.json"


def checkpoint_write(*, now: datetime | None = None) -> Checkpoint | None:
    """Sign the tree head and store it out of the database's reach. None when the head has not
    moved since the last checkpoint. Reads the head outside any transaction and does the storage
    I/O after, so it never holds the chain's lock while talking to the bucket."""
    written, _name = _checkpoint_head(now=now)
    return written


def checkpoint_covering_head() -> str | None:
    """The storage name of a signed tree head of the log as it is now (written if missing);
    None while the chain is empty."""
    return _checkpoint_head(now=None)[1]


def published_size() -> int:
    """The tree size of the last signed tree head written (0: none yet)."""
    row = AuditChainHead.objects.filter(id=1).values_list("published_size", flat=True).first()
    return row or 0


def checkpoint_name_for(size: int) -> str:
    return _checkpoint_name(size)


def _checkpoint_head(*, now: datetime | None) -> tuple[Checkpoint | None, str | None]:
    head = tree_head()
    if head.size == 0:
        return None, None
    store = blob_store()
    name = _checkpoint_name(head.size)
    written = None
    if store.size(name) is None:
        now = now or timezone.now()
        statement = {
            "format": CHECKPOINT_FORMAT,
            "tree_size": head.size,
            "root_hash": head.root.hex(),
            "seq": head.size,
            "hash": head.chain_hash,
            "signed_at": now.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "key": key_id(public_key_bytes()),
        }
        document = {"statement": statement, "signature": sign(canonical_json(statement).encode())}
        retain_until = now + timedelta(days=settings.BWV_AUDIT_CHECKPOINT_RETAIN_DAYS)
        store.put_retained(name, canonical_json(document).encode(), retain_until=retain_until)
        written = Checkpoint(
            head.size,
            head.chain_hash,
            statement["signed_at"],
            statement["key"],
            name,
            statement["root_hash"],
        )
    # Remember the newest published size (a moment's wait for the head row's lock, every few
    # minutes): an export proves that its own head extends this one.
    AuditChainHead.objects.filter(id=1, published_size__lt=head.size).update(
        published_size=head.size
    )
    return written, name


@dataclass
class CheckpointProblem:
    name: str
    message: str


def checkpoint_parse(raw: bytes, keys: dict[str, Ed25519PublicKey], name: str = "") -> Checkpoint:
    """A stored checkpoint whose signature holds, in either format; ValueError says why not."""
    try:
        document = json.loads(raw)
        statement = document["statement"]
        key = keys.get(statement["key"])
        if key is None:
            raise ValueError("signed with an unknown key")
        key.verify(base64.b64decode(document["signature"]), canonical_json(statement).encode())
    except InvalidSignature:
        raise ValueError("its signature does not verify: altered or forged") from None
    except (KeyError, TypeError, AttributeError, json.JSONDecodeError, binascii.Error):
        raise ValueError("unreadable") from None
    fmt, seq = statement.get("format"), statement.get("seq")
    if fmt not in (CHECKPOINT_FORMAT, CHECKPOINT_FORMAT_CHAIN_ONLY) or not isinstance(seq, int):
        raise ValueError("not a checkpoint of a known format")
    if name and name != _checkpoint_name(seq):
        raise ValueError("does not match its name")
    root = None
    if fmt == CHECKPOINT_FORMAT:
        root = statement.get("root_hash")
        if statement.get("tree_size") != seq or not isinstance(root, str) or len(root) != 64:
            raise ValueError("its tree size and sequence number disagree")
    return Checkpoint(seq, statement["hash"], statement["signed_at"], statement["key"], name, root)


def checkpoints_load() -> tuple[list[Checkpoint], list[CheckpointProblem]]:
    """Every stored checkpoint whose signature holds, in order, and the ones that do not."""
    store = blob_store()
    keys = verification_keys()
    good: list[Checkpoint] = []
    bad: list[CheckpointProblem] = []
    for name in store.iter_keys(settings.BWV_AUDIT_CHECKPOINT_PREFIX):
        try:
            good.append(checkpoint_parse(store.get(name), keys, name))
        except ValueError as exc:
            bad.append(CheckpointProblem(name, str(exc)))
    good.sort(key=lambda c: c.seq)
    return good, bad


def consistency_document(old_size: int, new_size: int | None = None) -> dict:
    """Two stored signed tree heads and the proof that the later extends the earlier, for anyone
    to check offline (tools/verify_bundle.py --consistency). `new_size` None: a head of now."""
    store = blob_store()
    if new_size is None:
        name = checkpoint_covering_head()
        if name is None:
            raise ValueError("the audit log is empty")
        new_size = int(name.rsplit("/", 1)[-1].split(".")[0])
    documents = {}
    for size in (old_size, new_size):
        if store.size(_checkpoint_name(size)) is None:
            raise ValueError(f"no signed tree head of size {size} is stored")
        checkpoint = checkpoint_parse(store.get(_checkpoint_name(size)), verification_keys())
        if checkpoint.root_hash is None:
            raise ValueError(f"the checkpoint at {size} is of the format before the tree")
        documents[size] = json.loads(store.get(_checkpoint_name(size)))
    if old_size > new_size:
        raise ValueError(f"the earlier head ({old_size}) is larger than the later ({new_size})")
    return {
        "format": CONSISTENCY_FORMAT,
        "earlier": documents[old_size],
        "later": documents[new_size],
        "proof": consistency_proof(old_size, new_size),
    }


# -- Verification ---------------------------------------------------------------------------------


@dataclass
class Finding:
    kind: str  # edited, removed, inserted, reordered, tail_cut, rewritten, checkpoint
    seq: int
    message: str


@dataclass
class VerifyReport:
    events: int = 0
    head_seq: int = 0
    checkpoints: int = 0
    chain_only_checkpoints: int = 0  # of the format before the tree
    last_checkpoint: Checkpoint | None = None
    findings: list[Finding] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.findings


@dataclass
class _Row:
    seq: int
    prev_hash: str
    body: str
    hash: str

    @property
    def intact(self) -> bool:
        return chain_hash(self.prev_hash, self.body) == self.hash

    @property
    def body_seq(self) -> int | None:
        try:
            return int(json.loads(self.body)["seq"])
        except (ValueError, KeyError, TypeError):
            return None


def _rows_from(seq_after: int) -> Iterator[_Row]:
    rows = (
        AuditEvent.objects.filter(seq__gt=seq_after)
        .order_by("seq", "id")
        .values_list("seq", "prev_hash", "body", "hash")
    )
    for values in rows.iterator(chunk_size=2000):
        yield _Row(*values)


def _explain(r: _Row, nxt: _Row | None, expected_prev: str, before_prev: str) -> Finding:
    """Say what happened at the first row that does not continue the chain."""
    body_seq = r.body_seq
    if r.intact and r.prev_hash == before_prev:
        return Finding(
            "inserted", r.seq - 1, f"event {r.seq - 1} was inserted: event {r.seq} links past it"
        )
    if r.intact and body_seq is not None and body_seq != r.seq:
        if nxt is not None and nxt.body_seq == r.seq:
            return Finding(
                "reordered",
                r.seq,
                f"events reordered: event {body_seq} stands at position {r.seq}, "
                f"event {r.seq} after it",
            )
        if body_seq > r.seq:
            return Finding(
                "removed",
                r.seq,
                f"event {r.seq} removed and the later events renumbered: "
                f"event {body_seq} stands at position {r.seq}",
            )
        return Finding(
            "inserted",
            r.seq,
            f"an event was inserted before position {r.seq}: the later events "
            f"were renumbered (event {body_seq} stands at {r.seq})",
        )
    if not r.intact or body_seq != r.seq:
        if nxt is not None and nxt.prev_hash == expected_prev and nxt.seq == r.seq + 1:
            return Finding(
                "inserted", r.seq, f"event {r.seq} was inserted: event {nxt.seq} links past it"
            )
        return Finding(
            "edited", r.seq, f"event {r.seq} was edited: its content no longer matches its hash"
        )
    return Finding(
        "edited",
        r.seq - 1,
        f"event {r.seq - 1} was edited and its hash recomputed: event {r.seq} "
        f"no longer links to it",
    )


def _diagnose(seq_after: int, expected_prev: str, before_prev: str) -> tuple[Finding | None, dict]:
    """Walk row by row from `seq_after` and explain the first break. Returns the finding (None if
    the chain holds to its end) and the hashes at the checkpoint positions seen on the way."""
    expected_seq = seq_after + 1
    rows = _rows_from(seq_after)
    hashes: dict[int, str] = {}
    current = next(rows, None)
    while current is not None:
        nxt = next(rows, None)
        r = current
        if r.seq > expected_seq:
            last = r.seq - 1
            span = (
                f"event {expected_seq}" if last == expected_seq else f"events {expected_seq}-{last}"
            )
            return Finding(
                "removed", expected_seq, f"{span} removed: the chain jumps to {r.seq}"
            ), hashes
        if r.seq < expected_seq:
            return Finding(
                "inserted", r.seq, f"an extra event carries number {r.seq}: inserted"
            ), hashes
        body_seq = r.body_seq
        if r.intact and body_seq == r.seq and r.prev_hash == expected_prev:
            hashes[r.seq] = r.hash
            before_prev, expected_prev = expected_prev, r.hash
            expected_seq += 1
            current = nxt
            continue
        return _explain(r, nxt, expected_prev, before_prev), hashes
    return None, hashes


_digest = methodcaller("digest")
_prefix64 = itemgetter(slice(0, 64))
_sha256 = hashlib.sha256
# One read: a few MiB, small enough for libpq to move quickly; a power of two, so that each block
# of events is one complete subtree of the Merkle tree, checked where it is read.
_BLOCK_LEVEL = 13
_BLOCK_EVENTS = 1 << _BLOCK_LEVEL

Node = tuple[int, int]


@dataclass
class _RangeResult:
    lo: int
    hi: int
    count: int = 0
    first_prev: str = ""
    last_hash: str = ""
    before_last: str = ""
    intact: bool = True
    hashes: dict = field(default_factory=dict)
    tree_finding: Finding | None = None
    block_roots: bytes = b""  # the roots of the range's complete blocks, in order
    nodes: dict = field(default_factory=dict)  # recomputed tree nodes asked for


def _stored_levels(cursor, first: int, levels: list[bytes]) -> list[bytes]:
    """The stored tree nodes at the places of `levels` (the nodes over leaves from `first`),
    concatenated per level in index order, in one query."""
    conditions, params = [], []
    for level, data in enumerate(levels):
        lo = first >> level
        conditions.append("(level = %s AND index >= %s AND index < %s)")
        params += [level, lo, lo + len(data) // merkle.HASH_SIZE]
    cursor.execute(
        f"SELECT level, string_agg(hash, ''::bytea ORDER BY index) FROM {_NODE_TABLE} "  # noqa: S608
        f"WHERE {' OR '.join(conditions)} GROUP BY level",
        params,
    )
    found = {level: bytes(data) for level, data in cursor.fetchall()}
    return [found.get(level, b"") for level in range(len(levels))]


def _tree_difference(
    first: int, levels: list[bytes], stored: list[bytes], base: int = 0
) -> Finding | None:
    """Name the first stored node that is not what the chain's hashes give. `levels[j]` holds
    the nodes of level `base + j` over the leaves from `first` on."""
    for j, (mine, theirs) in enumerate(zip(levels, stored, strict=True)):
        if mine == theirs:
            continue
        level = base + j
        at = next(k for k in range(0, len(mine), 32) if mine[k : k + 32] != theirs[k : k + 32])
        index = (first >> level) + at // 32
        lo, hi = (index << level) + 1, (index + 1) << level
        if level == 0:
            return Finding(
                "tree",
                lo,
                f"event {lo} is not the event that was appended: its hash differs from the "
                "Merkle tree's leaf written with it (edited, and the chain recomputed after it)",
            )
        span = f"event {lo}" if lo == hi else f"events {lo}-{hi}"
        return Finding(
            "tree",
            lo,
            f"the Merkle tree does not match the chain over {span}: its node at level "
            f"{level} is altered or missing (the tree was changed, or the chain "
            f"rewritten without it)",
        )
    return None


def _pick(first: int, levels: list[bytes], wanted: frozenset[Node]) -> dict[Node, bytes]:
    out = {}
    for level, index in wanted:
        if level < len(levels):
            i = index - (first >> level)
            if 0 <= i < len(levels[level]) // 32:
                out[(level, index)] = levels[level][i * 32 : (i + 1) * 32]
    return out


def _verify_range(
    lo: int, hi: int, wanted: frozenset[int], wanted_nodes: frozenset[Node] = frozenset()
) -> _RangeResult:
    """Recompute the chain over events (lo, hi] as read from the database in seq order, and the
    Merkle tree's nodes over them, compared with the stored ones block by block.

    Each read returns a few thousand events as one string (string_agg of prev_hash + body, one
    per line; bodies hold no raw newline), so Python does not touch events one by one: a block's
    SHA-256s come from map() and its links are checked in one comparison of byte strings; its
    subtree's nodes, level by level, the same way.
    """
    table = AuditEvent._meta.db_table
    sql = (
        "SELECT count(*), string_agg(x, E'\\n') FROM (SELECT prev_hash || body AS x "  # noqa: S608
        f"FROM {table} WHERE seq > %s AND seq <= %s ORDER BY seq) t"
    )
    result = _RangeResult(lo, hi)
    previous = b""
    wanted_here = sorted(s for s in wanted if lo < s <= hi)
    with connection.cursor() as cursor:
        for start in range(lo, hi, _BLOCK_EVENTS):
            stop = min(start + _BLOCK_EVENTS, hi)
            cursor.execute(sql, [start, stop])
            count, text = cursor.fetchone()
            if count != stop - start:
                result.intact = False
                break
            lines = text.encode("ascii").split(b"\n")
            computed = b"".join(map(_digest, map(_sha256, lines)))
            prevs = unhexlify(b"".join(map(_prefix64, lines)))
            if not result.count:
                result.first_prev = lines[0][:64].decode("ascii")
                previous = prevs[:32]
            if prevs != previous + computed[:-32]:
                result.intact = False
                break
            # Checkpoints grow by one every 10 minutes: find this block's by bisection.
            for s in wanted_here[
                bisect_right(wanted_here, start) : bisect_right(wanted_here, stop)
            ]:
                i = s - start - 1
                result.hashes[s] = computed[i * 32 : (i + 1) * 32].hex()
            if result.tree_finding is None:
                levels = merkle.subtree_levels(start, computed)
                stored = _stored_levels(cursor, start, levels)
                result.tree_finding = _tree_difference(start, levels, stored)
                if len(levels) > _BLOCK_LEVEL:
                    result.block_roots += levels[_BLOCK_LEVEL]
                result.nodes.update(_pick(start, levels, wanted_nodes))
            result.before_last = (computed[-64:-32] or previous).hex()
            previous = computed[-32:]
            result.last_hash = previous.hex()
            result.count += count
    return result


def _verify_range_in_child(args) -> _RangeResult:
    try:
        return _verify_range(*args)
    finally:
        connection.close()


def _fast_ranges(
    last_seq: int, wanted: frozenset[int], wanted_nodes: frozenset[Node], workers: int
) -> list[_RangeResult]:
    """Split the chain into one range per worker process (whole blocks each); each reads and
    hashes its own."""
    size = -(-last_seq // workers)
    size = -(-size // _BLOCK_EVENTS) * _BLOCK_EVENTS
    jobs = [(lo, min(lo + size, last_seq), wanted, wanted_nodes) for lo in range(0, last_seq, size)]
    if workers == 1 or len(jobs) == 1:
        return [_verify_range(*job) for job in jobs]
    connections.close_all()  # the children open their own; a shared socket would be corrupted
    context = multiprocessing.get_context("fork")
    with context.Pool(len(jobs)) as pool:
        return pool.map(_verify_range_in_child, jobs)


def _workers() -> int:
    if multiprocessing.current_process().daemon:  # e.g. inside a Celery prefork worker
        return 1
    return max(1, min(4, os.cpu_count() or 1))


def _expected_node_count(size: int) -> int:
    return sum(size >> level for level in range(size.bit_length()))


def _verify_tree_upper(
    block_roots: bytes, size: int, wanted_nodes: frozenset[Node]
) -> tuple[Finding | None, dict]:
    """The levels above the blocks, from the blocks' roots, against the stored ones."""
    upper = merkle.levels_above(block_roots) if block_roots else []
    levels = upper[1:]  # level _BLOCK_LEVEL itself was compared inside the blocks
    first_level = _BLOCK_LEVEL + 1
    finding = None
    if levels:
        rows = AuditTreeNode.objects.filter(level__gte=first_level).order_by("level", "index")
        stored: dict[int, list[bytes]] = {}
        for level, h in rows.values_list("level", "hash"):
            stored.setdefault(level, []).append(bytes(h))
        # Nodes past the chain as read belong to events appended since: not compared here.
        joined = [
            b"".join(stored.get(first_level + j, []))[: len(level)]
            for j, level in enumerate(levels)
        ]
        finding = _tree_difference(0, levels, joined, base=first_level)
    nodes = {}
    for level, index in wanted_nodes:
        if level >= first_level and level - _BLOCK_LEVEL < len(upper):
            data = upper[level - _BLOCK_LEVEL]
            if index < len(data) // 32:
                nodes[(level, index)] = data[index * 32 : (index + 1) * 32]
    return finding, nodes


def _verify_tree_whole(size: int, wanted_nodes: frozenset[Node]) -> tuple[Finding | None, dict]:
    """The whole tree recomputed from the events' hashes at once, against every stored node."""
    hashes = AuditEvent.objects.filter(seq__lte=size).order_by("seq").values_list("hash", flat=True)
    data = b"".join(bytes.fromhex(h) for h in hashes.iterator(chunk_size=5000))
    levels = merkle.subtree_levels(0, data) if data else []
    stored: dict[int, dict[int, bytes]] = {}
    for level, index, h in AuditTreeNode.objects.values_list("level", "index", "hash"):
        stored.setdefault(level, {})[index] = bytes(h)
    padded = []
    for level, mine in enumerate(levels):
        row = stored.get(level, {})
        # Stop at the first hole, so that a missing node shows where it is.
        parts = []
        for index in range(len(mine) // 32):
            if index not in row:
                break
            parts.append(row[index])
        padded.append(b"".join(parts))
    return _tree_difference(0, levels, padded), _pick(0, levels, wanted_nodes)


def verify_chain(
    *,
    wanted: frozenset[int] = frozenset(),
    wanted_nodes: frozenset[Node] = frozenset(),
    workers: int | None = None,
) -> ChainCheck:
    """Recompute the whole chain, and the Merkle tree from it. Returns the first break of the
    chain, the events checked, the hashes at the checkpoint positions asked for, the last seq,
    the first difference between the stored tree and the chain, and the recomputed tree nodes
    asked for.

    On PostgreSQL, outside a transaction, the chain is cut into one range per CPU, each read and
    hashed by its own process (_verify_range), and the ranges' ends are checked to meet. A range
    that does not check out is walked row by row (_diagnose) to say what happened. On SQLite, or
    inside a transaction other connections cannot see (tests), the row-by-row walk does it all,
    and the tree is recomputed in one piece.
    """
    last_seq = AuditEvent.objects.order_by("-seq").values_list("seq", flat=True).first() or 0
    if connection.vendor != "postgresql" or connection.in_atomic_block:
        finding, hashes = _diagnose(0, GENESIS, "")
        count = AuditEvent.objects.count()
        check = ChainCheck(
            finding, count, {s: h for s, h in hashes.items() if s in wanted}, last_seq
        )
        if finding is None:
            check.tree_finding, check.nodes = _verify_tree_whole(last_seq, wanted_nodes)
        return check
    if last_seq == 0:
        return ChainCheck(None, 0, {}, 0)
    results = _fast_ranges(last_seq, wanted, wanted_nodes, workers or _workers())
    hashes: dict[int, str] = {}
    expected_prev, before_prev, checked = GENESIS, "", 0
    rewalked = False
    for r in results:
        whole = r.intact and r.count == r.hi - r.lo
        if not whole or (r.count and r.first_prev != expected_prev):
            finding, seen = _diagnose(r.lo, expected_prev, before_prev)
            hashes.update({s: h for s, h in seen.items() if s in wanted})
            if finding is not None:
                return ChainCheck(
                    finding, checked + max(0, finding.seq - r.lo - 1), hashes, last_seq
                )
            # The walk found nothing wrong (a row appended while the range was read).
            rewalked = True
            if seen:
                top = max(seen)
                r.last_hash = seen[top]
                r.before_last = seen.get(top - 1, expected_prev)
        hashes.update(r.hashes)
        expected_prev, before_prev = r.last_hash, r.before_last
        checked += r.hi - r.lo
    check = ChainCheck(None, checked, hashes, last_seq)
    if rewalked:
        check.tree_finding, check.nodes = _verify_tree_whole(last_seq, wanted_nodes)
    else:
        check.tree_finding = next((r.tree_finding for r in results if r.tree_finding), None)
        for r in results:
            check.nodes.update(r.nodes)
        upper_finding, upper_nodes = _verify_tree_upper(
            b"".join(r.block_roots for r in results), last_seq, wanted_nodes
        )
        check.tree_finding = check.tree_finding or upper_finding
        check.nodes.update(upper_nodes)
    return check


def _tree_beyond(last_seq: int) -> Finding | None:
    """What lies past the last event verified, read in one statement so that appends meanwhile
    (each moves the head and adds its leaf and its event in one transaction) count as they
    should: the head, the events after `last_seq`, the leaves from `last_seq` on, all nodes."""
    sql = (
        f"SELECT h.seq, (SELECT count(*) FROM {_EVENT_TABLE} WHERE seq > %(last)s), "  # noqa: S608
        f'(SELECT count(*) FROM {_NODE_TABLE} WHERE level = 0 AND "index" >= %(last)s), '
        f"(SELECT count(*) FROM {_NODE_TABLE}) FROM {_HEAD_TABLE} h WHERE h.id = 1"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, {"last": last_seq})
        row = cursor.fetchone()
    if row is None:
        return None
    head, events_after, leaves_after, nodes = row
    appended = head - last_seq  # events appended since the chain was read
    if appended < 0:
        return Finding(
            "tree", head + 1, f"the head row says {head} events, but the chain has {last_seq}"
        )
    if events_after < appended:
        first = last_seq + 1
        return Finding(
            "tail_cut",
            first,
            f"events {first}-{head} are missing: the head and the Merkle tree go to {head} but "
            f"the chain ends at {last_seq} (tail cut off)",
        )
    if leaves_after > appended:
        first = head + 1
        return Finding(
            "tail_cut",
            first,
            f"the Merkle tree holds leaves after event {head}, where the chain ends: events "
            "from there were removed with the head moved back, or leaves were inserted",
        )
    expected = _expected_node_count(head)
    if nodes != expected:
        more = "more" if nodes > expected else "fewer"
        return Finding(
            "tree",
            head + 1,
            f"the Merkle tree holds {abs(nodes - expected)} nodes {more} than the chain's {head} "
            "events give",
        )
    return None


@dataclass
class ChainCheck:
    finding: Finding | None
    events: int
    hashes: dict[int, str]
    last_seq: int
    tree_finding: Finding | None = None
    nodes: dict = field(default_factory=dict)


def audit_verify(*, checkpoints: bool = True, workers: int | None = None) -> VerifyReport:
    """Walk the chain, the tree and the checkpoints; report the first break and a tail cut off."""
    report = VerifyReport()
    good, bad = checkpoints_load() if checkpoints else ([], [])
    report.checkpoints = len(good)
    report.chain_only_checkpoints = sum(1 for c in good if c.root_hash is None)
    report.last_checkpoint = good[-1] if good else None
    for problem in bad:
        report.findings.append(
            Finding("checkpoint", 0, f"checkpoint {problem.name}: {problem.message}")
        )
    head = AuditChainHead.objects.filter(id=1).values_list("seq", "frontier").first()
    head_seq, frontier = (head[0], bytes(head[1])) if head else (0, b"")
    wanted = frozenset(c.seq for c in good)
    wanted_nodes = frozenset(
        part
        for size in {c.seq for c in good if c.root_hash is not None} | {head_seq}
        for part in merkle.perfect_parts(0, size)
    )
    check = verify_chain(wanted=wanted, wanted_nodes=wanted_nodes, workers=workers)
    finding, hashes, last_seq, nodes = check.finding, check.hashes, check.last_seq, check.nodes
    report.events = check.events
    report.head_seq = last_seq
    if finding is not None:
        report.findings.append(finding)
    elif check.tree_finding is not None:
        report.findings.append(check.tree_finding)
    elif (beyond := _tree_beyond(last_seq)) is not None:
        report.findings.append(beyond)
    elif head_seq <= last_seq:
        # The head as read before the chain: its edge is made of nodes recomputed above.
        edge = b"".join(nodes.get(p, b"") for p in merkle.perfect_parts(0, head_seq))
        if edge != frontier:
            report.findings.append(
                Finding(
                    "tree",
                    head_seq,
                    "the head row's edge of the Merkle tree differs from the tree the chain gives",
                )
            )
    matched: Checkpoint | None = None
    for cp in good:
        if cp.seq > last_seq:
            first = last_seq + 1
            # The checkpoint says it with its signature and date: it replaces the tree's word.
            report.findings = [x for x in report.findings if x.kind != "tail_cut"]
            report.findings.append(
                Finding(
                    "tail_cut",
                    first,
                    f"events {first}-{cp.seq} are missing: the chain ends at {last_seq} but a "
                    f"checkpoint signed {cp.signed_at} covers up to {cp.seq} (tail cut off)",
                )
            )
            break
        if finding is not None and cp.seq >= finding.seq:
            break  # past the first break nothing can be compared
        differs = cp.seq in hashes and hashes[cp.seq] != cp.hash
        if cp.root_hash is not None and not differs:
            parts = [nodes.get(p) for p in merkle.perfect_parts(0, cp.seq)]
            if all(parts):
                differs = merkle.fold(parts).hex() != cp.root_hash
        if differs:
            since = (
                f"after event {matched.seq} (checkpoint {matched.signed_at})"
                if matched
                else "from the start"
            )
            report.findings.append(
                Finding(
                    "rewritten",
                    cp.seq,
                    f"event {cp.seq} differs from the checkpoint signed {cp.signed_at}: the chain was "
                    f"rewritten {since}, up to event {cp.seq}",
                )
            )
            break
        matched = cp
    return report
