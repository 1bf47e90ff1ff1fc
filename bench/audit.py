"""Audit chain: append throughput under concurrent writers, with the Merkle tree and without it,
and verification against raw hashing and against the rate PostgreSQL hands out the rows.

    .venv/bin/python bench/audit.py [--appends 100000] [--writers 4] [--chain 1000000[,5000000]]

PostgreSQL runs durable (fsync, synchronous_commit and full_page_writes on), as in production.

In one run, on the same PostgreSQL:
  (a) `--writers` processes append `--appends` events between them, each event its own
      transaction through `audit_record` (as a web request or a task does): the one statement
      that numbers, hashes and inserts the event and writes the Merkle tree's new nodes and edge;
  (a') the same, with the append statement as it was before the tree (chain only), into a copy of
      the chain's tables: the baseline of (a);
  (e) the same writers appending MANY_BATCH events per transaction through audit_record_many,
      as the bulk paths do (exports, the sweep, incident tagging);
  (f) the floors of one event per transaction: empty commits (an xid, nothing else) by the same
      writers, and commits serialised on one row lock held through the commit, as the chain's
      head is. (a), (a'), (e) and (f) alternate, four times each, best kept;
  (b) the chain is extended to `--chain` events (bulk-loaded with COPY, hashed by the same code,
      the tree's nodes with them), a tree head is signed, and `audit_verify` walks it all: every
      hash recomputed, every link, every tree node and the signed head checked;
  (c) plain SHA-256 over the same serialised bytes (prev_hash + body of every event, already in
      memory), one call per event, as the baseline of (b) (over the first million events at most:
      a per-event rate, which needs them all in memory);
  (d) the floor of (b): the same columns the verifier reads (prev_hash, body of every event in seq
      order, and every tree node) streamed out with COPY to nowhere, split over the same number of
      processes as the verifier: no verifier can be faster than PostgreSQL hands it its rows.
Verification, floor and baseline are run twice, interleaved, and the best of each kept. With several
`--chain` sizes (ascending), (b) and (d) are measured at each: verification time should grow
linearly with the chain ("linearity" = time ratio ÷ size ratio, 1.0 when linear).
Last line: JSON with "append_per_s" (goal >= 5,000 durable) and "append_before_merkle_per_s", their
"append_ratio" = (a) / (a'), "append_many_per_s" (e), "empty_commit_per_s" and
"locked_commit_per_s" (f), events/s of (b), (c) and (d), "ratio" = (b) / (c) and "floor_ratio" =
(b) / (d) (goal >= 0.8), for the largest chain, and "sizes" with each size's figures.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import multiprocessing
import os
import sys
import time
from datetime import timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

ACTIONS = [
    "recording.viewed",
    "recording.ingested",
    "recording.flagged",
    "recording.erased",
    "auth.sign_in",
    "camera.issued",
    "case.recording_added",
]


# The append as it was before the Merkle tree (chain only), on copies of the tables: the baseline.
_CHAIN_ONLY_SQL = """
WITH old AS (
    SELECT seq, hash FROM bench_chain_head WHERE id = 1 FOR UPDATE
), new AS (
    UPDATE bench_chain_head AS h
    SET seq = old.seq + 1,
        hash = encode(sha256(convert_to(old.hash || %(before)s || (old.seq + 1)::text || %(after)s,
                                        'UTF8')), 'hex')
    FROM old WHERE h.id = 1
    RETURNING h.seq AS seq, h.hash AS hash, old.hash AS prev
)
INSERT INTO bench_chain_event (seq, prev_hash, hash, body)
SELECT seq, prev, hash, %(before)s || seq::text || %(after)s FROM new
RETURNING id, seq, prev_hash, hash, body
"""


def _entry(k: int, i: int) -> dict:
    return {
        "actor": f"system:bench{k}",
        "actor_id": None,
        "action": ACTIONS[i % len(ACTIONS)],
        "object_type": "evidence.recording",
        "object_id": f"{k:02d}-{i:08d}",
        "borough": "",
        "justification": "5201234/26 review for a charging decision",
        "recipient": "",
        "detail": {"writer": k, "i": i},
    }


MANY_BATCH = (
    20  # events per transaction in the "many" mode (an export, a sweep's or tagging's batch)
)


def _writer(k: int, n: int, mode: str, start_event, done_queue) -> None:
    import django

    django.setup()
    from django.db import connection, transaction
    from django.utils import timezone

    from custody.audit import _bodies_around_seq
    from custody.services import audit_record, audit_record_many

    connection.ensure_connection()
    start_event.wait()
    t0 = time.perf_counter()
    if mode == "many":
        for i in range(0, n, MANY_BATCH):
            entries = [_entry(k, j) for j in range(i, min(i + MANY_BATCH, n))]
            with transaction.atomic():
                audit_record_many(
                    actor=entries[0]["actor"],
                    action=entries[0]["action"],
                    entries=[
                        {
                            "obj": _Ref(e["object_id"]),
                            "justification": e["justification"],
                            "detail": e["detail"],
                        }
                        for e in entries
                    ],
                )
    for i in range(n if mode != "many" else 0):
        if mode == "empty_commit":
            # A transaction that writes a commit record (an xid) and nothing else: what fsync and
            # group commit allow, with no lock between the writers.
            with transaction.atomic(), connection.cursor() as cursor:
                cursor.execute("SELECT txid_current()")
        elif mode == "locked_commit":
            # The same, serialised on one row lock held through the commit, as the chain's head
            # is: the floor of any one-event-per-transaction append.
            with transaction.atomic(), connection.cursor() as cursor:
                cursor.execute("UPDATE bench_commit_lock SET n = n + 1 WHERE id = 1")
        elif mode == "chain_only":
            ((before, after),) = _bodies_around_seq(at=timezone.now(), entries=[_entry(k, i)])
            with connection.cursor() as cursor:
                cursor.execute(_CHAIN_ONLY_SQL, {"before": before, "after": after})
                cursor.fetchone()
        else:
            entry = _entry(k, i)
            audit_record(
                actor=entry["actor"],
                action=entry["action"],
                object_type=entry["object_type"],
                object_id=entry["object_id"],
                justification=entry["justification"],
                detail=entry["detail"],
            )
    done_queue.put(time.perf_counter() - t0)
    connection.close()


class _Ref:
    """A recording as audit_record_many needs it, without the recording."""

    audit_type = "evidence.recording"
    borough = None

    def __init__(self, pk: str):
        self.pk = pk


def chain_only_tables() -> None:
    """Copies of the chain's tables (columns, generated columns, indexes), for the baseline."""
    from django.db import connection

    from custody.models import AuditChainHead, AuditEvent

    with connection.cursor() as cursor:
        cursor.execute("DROP TABLE IF EXISTS bench_chain_event, bench_chain_head")
        cursor.execute(
            f"CREATE TABLE bench_chain_event (LIKE {AuditEvent._meta.db_table} INCLUDING ALL)"
        )
        cursor.execute(
            f"CREATE TABLE bench_chain_head (LIKE {AuditChainHead._meta.db_table} INCLUDING ALL)"
        )
        cursor.execute(
            "INSERT INTO bench_chain_head (id, seq, hash, frontier, published_size) "
            "VALUES (1, 0, repeat('0', 64), ''::bytea, 0)"
        )
        cursor.execute("DROP TABLE IF EXISTS bench_commit_lock")
        cursor.execute("CREATE TABLE bench_commit_lock (id int PRIMARY KEY, n bigint)")
        cursor.execute("INSERT INTO bench_commit_lock VALUES (1, 0)")


def appends(total: int, writers: int, *, mode: str = "tree") -> float:
    """Events (or, for the commit floors, transactions) per second, `writers` processes: one event
    per transaction through audit_record ("tree"), the chain-only statement ("chain_only"),
    MANY_BATCH events per transaction through audit_record_many ("many"), or the floors
    ("empty_commit", "locked_commit")."""
    from django.db import connections

    connections.close_all()
    ctx = multiprocessing.get_context("fork")
    start, done = ctx.Event(), ctx.Queue()
    procs = [
        ctx.Process(target=_writer, args=(k, total // writers, mode, start, done))
        for k in range(writers)
    ]
    for p in procs:
        p.start()
    time.sleep(2)  # every writer connected and waiting
    t0 = time.perf_counter()
    start.set()
    for p in procs:
        p.join()
        assert p.exitcode == 0, p.exitcode
    elapsed = time.perf_counter() - t0
    return (total // writers) * writers / elapsed


def extend_chain(to: int) -> None:
    """Bulk-load events up to `to`, continuing the chain and its Merkle tree from the head, with the
    real body, hash and tree functions (COPY, so that building a million events takes seconds,
    not an hour)."""
    from django.db import connection
    from django.utils import timezone

    from custody import merkle
    from custody.audit import chain_hash, event_body
    from custody.models import AuditChainHead, AuditEvent, AuditTreeNode

    head = AuditChainHead.objects.get(id=1)
    seq, prev, frontier = head.seq, head.hash, bytes(head.frontier)
    at = timezone.now() - timedelta(days=30)
    table = AuditEvent._meta.db_table
    nodes = []
    with connection.cursor() as cursor:
        raw = cursor.connection
        with raw.cursor().copy(f"COPY {table} (seq, prev_hash, hash, body) FROM STDIN") as copy:  # noqa: S608
            for s in range(seq + 1, to + 1):
                body = event_body(
                    seq=s,
                    at=at + timedelta(milliseconds=s),
                    entry={
                        "actor": f"sergeant.{s % 700}",
                        "actor_id": s % 700 + 1,
                        "action": ACTIONS[s % len(ACTIONS)],
                        "object_type": "evidence.recording",
                        "object_id": f"{s:036d}",
                        "borough": "QA",
                        "justification": "5201234/26 review for a charging decision",
                        "detail": {"ip": "10.0.0.1"},
                    },
                )
                digest = chain_hash(prev, body)
                copy.write_row((s, prev, digest, body))
                frontier, made = merkle.append_leaf(
                    frontier, s - 1, merkle.leaf_hash(bytes.fromhex(digest))
                )
                nodes += made
                prev = digest
        node_table = AuditTreeNode._meta.db_table
        with raw.cursor().copy(f"COPY {node_table} (level, index, hash) FROM STDIN") as copy:  # noqa: S608
            for node in nodes:
                copy.write_row(node)
    AuditChainHead.objects.filter(id=1).update(seq=to, hash=prev, frontier=frontier)
    with connection.cursor() as cursor:
        cursor.execute(f"VACUUM ANALYZE {table}")  # noqa: S608
        cursor.execute(f"VACUUM ANALYZE {node_table}")  # noqa: S608


def serialised_events() -> list[bytes]:
    """prev_hash + body of every event, the exact bytes the chain hashes."""
    from django.db import connection

    from custody.models import AuditEvent

    table = AuditEvent._meta.db_table
    out: list[bytes] = []
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT prev_hash || body FROM {table} ORDER BY seq")  # noqa: S608
        while rows := cursor.fetchmany(50_000):
            out.extend(r[0].encode("ascii") for r in rows)
    return out


def raw_hashing(data: list[bytes]) -> float:
    sha256 = hashlib.sha256
    t0 = time.perf_counter()
    for item in data:
        sha256(item).digest()
    return len(data) / (time.perf_counter() - t0)


def _copy_range(args) -> int:
    """COPY one range of events and its tree nodes to nowhere; returns the bytes streamed."""
    lo, hi = args
    from django.db import connection

    from custody.models import AuditEvent, AuditTreeNode

    events, nodes = AuditEvent._meta.db_table, AuditTreeNode._meta.db_table
    streamed = 0
    try:
        raw = connection.cursor().connection
        statements = [
            f"COPY (SELECT prev_hash, body FROM {events} "  # noqa: S608
            f"WHERE seq > {lo:d} AND seq <= {hi:d} ORDER BY seq) TO STDOUT",
            f'COPY (SELECT level, "index", hash FROM {nodes} '  # noqa: S608
            f'WHERE "index" >= ({lo:d}::bigint >> level) AND "index" < ({hi:d}::bigint >> level) '
            'ORDER BY level, "index") TO STDOUT',
        ]
        for sql in statements:
            with raw.cursor().copy(sql) as copy:
                for block in copy:
                    streamed += len(block)
    finally:
        connection.close()
    return streamed


def copy_floor(expected: int) -> float:
    """Events/s at which PostgreSQL streams what the verifier reads, as many processes as it."""
    from django.db import connections

    from custody.audit import _workers

    workers = _workers()
    size = -(-expected // workers)
    jobs = [(lo, min(lo + size, expected)) for lo in range(0, expected, size)]
    connections.close_all()
    t0 = time.perf_counter()
    with multiprocessing.get_context("fork").Pool(len(jobs)) as pool:
        pool.map(_copy_range, jobs)
    return expected / (time.perf_counter() - t0)


def verification(expected: int) -> float:
    from custody.audit import audit_verify

    t0 = time.perf_counter()
    report = audit_verify()
    elapsed = time.perf_counter() - t0
    assert report.ok, report.findings
    assert report.events == expected and report.checkpoints >= 1, report
    return expected / elapsed


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--appends", type=int, default=100_000)
    parser.add_argument("--writers", type=int, default=4)
    parser.add_argument(
        "--chain",
        default="1000000",
        help="events in the chain to verify; several, comma-separated and ascending, to show growth",
    )
    args = parser.parse_args()
    sizes = [int(n) for n in args.chain.split(",")]
    if sizes != sorted(set(sizes)):
        parser.error("--chain sizes must be ascending")

    from devtools.localservices import local_services

    with local_services(redis=False, durable=True):
        os.environ["DJANGO_SETTINGS_MODULE"] = "bwv.settings"
        import django

        django.setup()
        from django.core.management import call_command

        call_command("migrate", verbosity=0)
        from django.db import connection

        from custody.audit import _workers, audit_head, checkpoint_write

        with connection.cursor() as cursor:
            cursor.execute("SHOW fsync")
            fsync = cursor.fetchone()[0]
            cursor.execute("SHOW synchronous_commit")
            sync_commit = cursor.fetchone()[0]

        chain_only_tables()
        modes = ["chain_only", "tree", "many", "empty_commit", "locked_commit"]
        rates: dict[str, list[float]] = {mode: [0.0] for mode in modes}
        for _ in range(4 if args.appends else 0):  # alternate: neither gets the quieter machine
            for mode in modes:
                rates[mode].append(appends(args.appends // 4, args.writers, mode=mode))
            print(
                "appends: " + ", ".join(f"{mode} {rates[mode][-1]:.0f}/s" for mode in modes),
                file=sys.stderr,
            )
        merkle_rates, chain_only_rates = rates["tree"], rates["chain_only"]
        append_rate, chain_only_rate = max(merkle_rates), max(chain_only_rates)
        with connection.cursor() as cursor:
            cursor.execute("DROP TABLE bench_chain_event, bench_chain_head, bench_commit_lock")
        head = audit_head()[0]
        print(f"head at {head}", file=sys.stderr)
        measured = []
        raw_rate = 0.0
        for n, chain in enumerate(sizes):
            t0 = time.perf_counter()
            extend_chain(chain)
            checkpoint_write()
            print(f"chain of {chain} built in {time.perf_counter() - t0:.0f}s", file=sys.stderr)
            if n == 0:
                data = serialised_events()[:1_000_000]
            verifies, floors = [], []
            for _ in range(2):
                if n == 0:
                    raw_rate = max(raw_rate, raw_hashing(data))
                verifies.append(verification(chain))
                floors.append(copy_floor(chain))
                print(
                    f"{chain}: raw {raw_rate:.0f}/s, verify {verifies[-1]:.0f}/s, "
                    f"COPY {floors[-1]:.0f}/s",
                    file=sys.stderr,
                )
            if n == 0:
                del data
            verify_rate, floor_rate = max(verifies), max(floors)
            measured.append(
                {
                    "events": chain,
                    "verify_s": round(chain / verify_rate, 2),
                    "verify_per_s": round(verify_rate),
                    "copy_floor_per_s": round(floor_rate),
                    "floor_ratio": round(verify_rate / floor_rate, 3),
                }
            )
        largest = measured[-1]
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT pg_total_relation_size('evidence_auditevent') "
                "+ pg_total_relation_size('evidence_audittreenode')"
            )
            stored_bytes = cursor.fetchone()[0]
        verify_rate = largest["verify_per_s"]
        result = {
            "bench": "audit",
            "writers": args.writers,
            "appends": args.appends,
            "append_per_s": round(append_rate),
            "append_before_merkle_per_s": round(chain_only_rate),
            "append_ratio": round(append_rate / chain_only_rate, 3) if chain_only_rate else None,
            # The floors of one event per transaction on this disk: commits with nothing to
            # wait for but the WAL's fsync (group commit helps), and commits serialised on one
            # row lock held through the fsync, as the chain's head is.
            "empty_commit_per_s": round(max(rates["empty_commit"])),
            "locked_commit_per_s": round(max(rates["locked_commit"])),
            # Events appended as the bulk paths do: MANY_BATCH per transaction.
            "append_many_per_s": round(max(rates["many"])),
            "append_many_batch": MANY_BATCH,
            "chain_events": largest["events"],
            "verify_per_s": verify_rate,
            "raw_sha256_per_s": round(raw_rate),
            "ratio": round(verify_rate / raw_rate, 3),
            "copy_floor_per_s": largest["copy_floor_per_s"],
            "floor_ratio": largest["floor_ratio"],
            "sizes": measured,
            # Events, tree nodes and their indexes, per event: what the log costs PostgreSQL.
            "bytes_per_event": round(stored_bytes / sizes[-1]),
            "linearity": round(
                (measured[-1]["verify_s"] / measured[0]["verify_s"]) / (sizes[-1] / sizes[0]), 3
            ),
            "verify_workers": _workers(),
            "cores": os.cpu_count(),
            "postgres_fsync": fsync,
            "postgres_synchronous_commit": sync_commit,
        }
        print(json.dumps(result))


if __name__ == "__main__":
    main()
