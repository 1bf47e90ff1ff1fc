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
- a checkpoint (sequence number and hash of the head, signed with Ed25519) is written every few
  minutes to the bucket, under Object Lock where it has it, where the database cannot rewrite it:
  a rewrite of the whole chain, or a tail cut off, shows against the last checkpoint. Events after
  the last checkpoint are protected by the chain only, until the next one.
"""

from __future__ import annotations

import base64
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
from django.db import connection, transaction
from django.utils import timezone

from evidence.models import AuditChainHead, AuditEvent

GENESIS = "0" * 64
CHECKPOINT_FORMAT = "bwv-audit-checkpoint/1"


# -- The chain ------------------------------------------------------------------------------------


def canonical_json(value: Any) -> str:
    """The one serialisation that is hashed and signed: sorted keys, no spaces, ASCII only."""
    return json.dumps(
        value,
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=True,
        allow_nan=False,
        cls=DjangoJSONEncoder,
    )


def chain_hash(prev_hash: str, body: str) -> str:
    return hashlib.sha256((prev_hash + body).encode("ascii")).hexdigest()


_SEQ_MARK = -918273645  # stands in for the sequence number until the chain's lock is held


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


def _body_around_seq(*, at: datetime, entry: dict) -> tuple[str, str]:
    """The body split where the sequence number goes, so that everything but the number is
    serialised before the chain's lock is taken. The top-level "seq" is the last one in the text:
    only "t" (a number) sorts after it, and any "seq" nested in detail comes earlier."""
    mark = f'"seq":{_SEQ_MARK},'
    before, found, after = event_body(seq=_SEQ_MARK, at=at, entry=entry).rpartition(mark)
    if not found:  # pragma: no cover - the key order above guarantees it
        raise AssertionError("sequence number not found in an event body")
    return before + '"seq":', "," + after


_HEAD_TABLE = AuditChainHead._meta.db_table
_EVENT_TABLE = AuditEvent._meta.db_table

# One statement, one round trip, on PostgreSQL: lock the head, number and hash the event (the
# database's SHA-256 over the same bytes as chain_hash), insert it and move the head. The lock is
# held only from here to the commit.
_APPEND_ONE_SQL = f"""
WITH old AS (
    SELECT seq, hash FROM {_HEAD_TABLE} WHERE id = 1 FOR UPDATE
), new AS (
    UPDATE {_HEAD_TABLE} AS h
    SET seq = old.seq + 1,
        hash = encode(sha256(convert_to(old.hash || %(before)s || (old.seq + 1)::text || %(after)s,
                                        'UTF8')), 'hex')
    FROM old WHERE h.id = 1
    RETURNING h.seq AS seq, h.hash AS hash, old.hash AS prev
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
        before, after = _body_around_seq(at=at, entry=entries[0])
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
    for event in events:  # the generated columns, without a round trip
        data = event.data
        event.at = at
        event.actor_user_id = data["actor_id"]
        event.actor_label = data["actor"]
        event.action = data["action"]
        event.object_type = data["object_type"]
        event.object_id = data["object_id"]
        event.borough_code = data["borough"]
    return events


def _append_many(entries: list[dict], at: datetime) -> list[AuditEvent]:
    n = len(entries)
    parts = [_body_around_seq(at=at, entry=entry) for entry in entries]
    with transaction.atomic(), connection.cursor() as cursor:
        # UPDATE first, read after: the lock (row lock on PostgreSQL, the write lock on SQLite)
        # is taken before the head is read, so no two writers read the same head.
        sql = f"UPDATE {_HEAD_TABLE} SET seq = seq + %s WHERE id = 1 RETURNING seq, hash"  # noqa: S608
        cursor.execute(sql, [n])
        row = cursor.fetchone()
        if row is None:
            _head_create()
            cursor.execute(sql, [n])
            row = cursor.fetchone()
        last_seq, prev = row
        events = []
        for i, (before, after) in enumerate(parts):
            seq = last_seq - n + 1 + i
            body = f"{before}{seq}{after}"
            digest = chain_hash(prev, body)
            events.append(AuditEvent(seq=seq, prev_hash=prev, hash=digest, body=body))
            prev = digest
        AuditEvent.objects.bulk_create(events, batch_size=1000)
        cursor.execute(f"UPDATE {_HEAD_TABLE} SET hash = %s WHERE id = 1", [prev])  # noqa: S608
    return events


def _head_create() -> None:
    """The head row, continuing whatever chain is in the table (empty: the genesis)."""
    last = AuditEvent.objects.order_by("-seq").values_list("seq", "hash").first()
    seq, digest = last or (0, GENESIS)
    with transaction.atomic():
        AuditChainHead.objects.get_or_create(id=1, defaults={"seq": seq, "hash": digest})


def audit_head() -> tuple[int, str]:
    row = AuditChainHead.objects.filter(id=1).values_list("seq", "hash").first()
    return row or (0, GENESIS)


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


def _checkpoint_name(seq: int) -> str:
    return f"{settings.BWV_AUDIT_CHECKPOINT_PREFIX}{seq:020d}.json"


def checkpoint_write(*, now: datetime | None = None) -> Checkpoint | None:
    """Sign the chain head and store it out of the database's reach. None when the head has not
    moved since the last checkpoint. Reads the head outside any transaction and does the storage
    I/O after, so it never holds the chain's lock while talking to the bucket."""
    written, _name = _checkpoint_head(now=now)
    return written


def checkpoint_covering_head() -> str | None:
    """The storage name of a signed checkpoint of the head as it is now (written if missing);
    None while the chain is empty."""
    return _checkpoint_head(now=None)[1]


def _checkpoint_head(*, now: datetime | None) -> tuple[Checkpoint | None, str | None]:
    from evidence.storage import blob_store

    seq, digest = audit_head()
    if seq == 0:
        return None, None
    store = blob_store()
    name = _checkpoint_name(seq)
    if store.size(name) is not None:
        return None, name
    now = now or timezone.now()
    statement = {
        "format": CHECKPOINT_FORMAT,
        "seq": seq,
        "hash": digest,
        "signed_at": now.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "key": key_id(public_key_bytes()),
    }
    document = {"statement": statement, "signature": sign(canonical_json(statement).encode())}
    retain_until = now + timedelta(days=settings.BWV_AUDIT_CHECKPOINT_RETAIN_DAYS)
    store.put_retained(name, canonical_json(document).encode(), retain_until=retain_until)
    return Checkpoint(seq, digest, statement["signed_at"], statement["key"], name), name


@dataclass
class CheckpointProblem:
    name: str
    message: str


def checkpoints_load() -> tuple[list[Checkpoint], list[CheckpointProblem]]:
    """Every stored checkpoint whose signature holds, in order, and the ones that do not."""
    from evidence.storage import blob_store

    store = blob_store()
    keys = verification_keys()
    good: list[Checkpoint] = []
    bad: list[CheckpointProblem] = []
    for name in store.iter_keys(settings.BWV_AUDIT_CHECKPOINT_PREFIX):
        try:
            document = json.loads(store.get(name))
            statement = document["statement"]
            key = keys.get(statement["key"])
            if key is None:
                bad.append(CheckpointProblem(name, "signed with an unknown key"))
                continue
            key.verify(base64.b64decode(document["signature"]), canonical_json(statement).encode())
            if statement["format"] != CHECKPOINT_FORMAT or name != _checkpoint_name(
                statement["seq"]
            ):
                bad.append(CheckpointProblem(name, "does not match its name"))
                continue
        except InvalidSignature:
            bad.append(CheckpointProblem(name, "its signature does not verify: altered or forged"))
            continue
        except (ValueError, KeyError, TypeError):
            bad.append(CheckpointProblem(name, "unreadable"))
            continue
        good.append(
            Checkpoint(
                statement["seq"], statement["hash"], statement["signed_at"], statement["key"], name
            )  # fmt: skip
        )
    good.sort(key=lambda c: c.seq)
    return good, bad


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
        return Finding("inserted", r.seq - 1,
                       f"event {r.seq - 1} was inserted: event {r.seq} links past it")  # fmt: skip
    if r.intact and body_seq is not None and body_seq != r.seq:
        if nxt is not None and nxt.body_seq == r.seq:
            return Finding("reordered", r.seq,
                           f"events reordered: event {body_seq} stands at position {r.seq}, "
                           f"event {r.seq} after it")  # fmt: skip
        if body_seq > r.seq:
            return Finding("removed", r.seq,
                           f"event {r.seq} removed and the later events renumbered: "
                           f"event {body_seq} stands at position {r.seq}")  # fmt: skip
        return Finding("inserted", r.seq,
                       f"an event was inserted before position {r.seq}: the later events "
                       f"were renumbered (event {body_seq} stands at {r.seq})")  # fmt: skip
    if not r.intact or body_seq != r.seq:
        if nxt is not None and nxt.prev_hash == expected_prev and nxt.seq == r.seq + 1:
            return Finding("inserted", r.seq,
                           f"event {r.seq} was inserted: event {nxt.seq} links past it")  # fmt: skip
        return Finding("edited", r.seq,
                       f"event {r.seq} was edited: its content no longer matches its hash")  # fmt: skip
    return Finding("edited", r.seq - 1,
                   f"event {r.seq - 1} was edited and its hash recomputed: event {r.seq} "
                   f"no longer links to it")  # fmt: skip


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
_BLOCK_EVENTS = 8000  # one read: a few MiB, small enough for libpq to move quickly


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


def _verify_range(lo: int, hi: int, wanted: frozenset[int]) -> _RangeResult:
    """Recompute the chain over events (lo, hi] as read from the database in seq order.

    Each read returns a few thousand events as one string (string_agg of prev_hash + body, one
    per line; bodies hold no raw newline), so Python does not touch events one by one: a block's
    SHA-256s come from map() and its links are checked in one comparison of byte strings.
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


def _fast_ranges(last_seq: int, wanted: frozenset[int], workers: int) -> list[_RangeResult]:
    """Split the chain into one range per worker process; each reads and hashes its own."""
    size = -(-last_seq // workers)
    jobs = [(lo, min(lo + size, last_seq), wanted) for lo in range(0, last_seq, size)]
    if workers == 1 or len(jobs) == 1:
        return [_verify_range(*job) for job in jobs]
    from django.db import connections

    connections.close_all()  # the children open their own; a shared socket would be corrupted
    context = multiprocessing.get_context("fork")
    with context.Pool(len(jobs)) as pool:
        return pool.map(_verify_range_in_child, jobs)


def _workers() -> int:
    if multiprocessing.current_process().daemon:  # e.g. inside a Celery prefork worker
        return 1
    return max(1, min(4, os.cpu_count() or 1))


def verify_chain(
    *, wanted: frozenset[int] = frozenset(), workers: int | None = None
) -> tuple[Finding | None, int, dict[int, str], int]:
    """Recompute the whole chain. Returns (first break or None, events checked, hashes at the
    checkpoint positions asked for, last seq).

    On PostgreSQL, outside a transaction, the chain is cut into one range per CPU, each read and
    hashed by its own process (_verify_range), and the ranges' ends are checked to meet. A range
    that does not check out is walked row by row (_diagnose) to say what happened. On SQLite, or
    inside a transaction other connections cannot see (tests), the row-by-row walk does it all.
    """
    last_seq = AuditEvent.objects.order_by("-seq").values_list("seq", flat=True).first() or 0
    if connection.vendor != "postgresql" or connection.in_atomic_block:
        finding, hashes = _diagnose(0, GENESIS, "")
        count = AuditEvent.objects.count()
        return finding, count, {s: h for s, h in hashes.items() if s in wanted}, last_seq
    if last_seq == 0:
        return None, 0, {}, 0
    results = _fast_ranges(last_seq, wanted, workers or _workers())
    hashes: dict[int, str] = {}
    expected_prev, before_prev, checked = GENESIS, "", 0
    for r in results:
        whole = r.intact and r.count == r.hi - r.lo
        if not whole or (r.count and r.first_prev != expected_prev):
            finding, seen = _diagnose(r.lo, expected_prev, before_prev)
            hashes.update({s: h for s, h in seen.items() if s in wanted})
            if finding is not None:
                return finding, checked + max(0, finding.seq - r.lo - 1), hashes, last_seq
            # The walk found nothing wrong (a row appended while the range was read).
            if seen:
                top = max(seen)
                r.last_hash = seen[top]
                r.before_last = seen.get(top - 1, expected_prev)
        hashes.update(r.hashes)
        expected_prev, before_prev = r.last_hash, r.before_last
        checked += r.hi - r.lo
    return None, checked, hashes, last_seq


def audit_verify(*, checkpoints: bool = True, workers: int | None = None) -> VerifyReport:
    """Walk the chain and the checkpoints; report the first break and a tail cut off."""
    report = VerifyReport()
    good, bad = checkpoints_load() if checkpoints else ([], [])
    report.checkpoints = len(good)
    report.last_checkpoint = good[-1] if good else None
    for problem in bad:
        report.findings.append(
            Finding("checkpoint", 0, f"checkpoint {problem.name}: {problem.message}")
        )
    wanted = frozenset(c.seq for c in good)
    finding, checked, hashes, last_seq = verify_chain(wanted=wanted, workers=workers)
    report.events = checked
    report.head_seq = last_seq
    if finding is not None:
        report.findings.append(finding)
    matched: Checkpoint | None = None
    for cp in good:
        if cp.seq > last_seq:
            first = last_seq + 1
            report.findings.append(Finding(
                "tail_cut", first,
                f"events {first}-{cp.seq} are missing: the chain ends at {last_seq} but a "
                f"checkpoint signed {cp.signed_at} covers up to {cp.seq} (tail cut off)",
            ))  # fmt: skip
            break
        if finding is not None and cp.seq >= finding.seq:
            break  # past the first break nothing can be compared
        if cp.seq in hashes and hashes[cp.seq] != cp.hash:
            since = (
                f"after event {matched.seq} (checkpoint {matched.signed_at})"
                if matched
                else "from the start"
            )
            report.findings.append(Finding(
                "rewritten", cp.seq,
                f"event {cp.seq} differs from the checkpoint signed {cp.signed_at}: the chain was "
                f"rewritten {since}, up to event {cp.seq}",
            ))  # fmt: skip
            break
        matched = cp
    return report
