"""Retention sweep throughput and memory, against raw S3 DeleteObjects.

    .venv/bin/python bench/sweep.py [--n 100000] [--processes 1,2,4] [--n-parallel 20000]

In one run, on the same PostgreSQL and S3 server:
  (a) raw S3 DeleteObjects of N small objects in 1,000-key batches;
  (b) our sweep over N expired recordings, each with one small object of the same size: it claims
      them under row locks, deletes the objects in 1,000-key batches, destroys the data keys, marks
      the rows deleted and writes a certificate and an audit event for each.
Then the sweep's peak Python memory (tracemalloc) with 10,000 and with 100,000 expired rows.
Then (c) `--n-parallel` expired recordings swept by 1, 2 and 4 processes at once against the same
S3 and PostgreSQL: every recording must be deleted exactly once (one certificate and one
`recording.erased` event each, every object gone), and the rate per CPU second of the sweep
processes is compared with one process's ("per_cpu_s_vs_one", goal within 10 %).
Last line: JSON with objects/s of both, "ratio" = (b)/(a) (goal ≥ 0.9), "mem_growth" = peak at
100,000 ÷ peak at 10,000 (goal < 1.2) and "processes" with (c)'s figures.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import resource
import sys
import time
import tracemalloc
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

BODY = b"x" * 256


def put_objects(store, keys: list[str]) -> None:
    def put(chunk):
        for key in chunk:
            store.client.put_object(Bucket=store.bucket, Key=key, Body=BODY)

    chunks = [keys[i : i + 500] for i in range(0, len(keys), 500)]
    with ThreadPoolExecutor(max_workers=10) as pool:  # boto3's connection pool holds 10
        list(pool.map(put, chunks))


def make_recordings(n: int, *, prefix: str, camera, dock) -> list[str]:
    """Bulk-create n expired, available recordings; returns their storage keys."""
    from django.utils import timezone

    from evidence.models import Recording, RecordingState

    now = timezone.now()
    keys = []
    rows = []
    for i in range(n):
        rid = uuid.uuid4()
        key = f"{prefix}/{rid}/media"
        keys.append(key)
        start = now - timedelta(days=40, seconds=i)
        rows.append(
            Recording(
                id=rid,
                camera=camera,
                borough=camera.borough,
                dock=dock,
                state=RecordingState.AVAILABLE,
                started_at=start,
                ended_at=start + timedelta(seconds=30),
                size_bytes=len(BODY),
                sha256=f"{i:064x}",
                storage_key=key,
                segment_size=1 << 20,
                kek_id="bench",
                wrapped_key=b"\x00" * 60,
                delete_after=start + timedelta(days=31),
            )
        )
        if len(rows) == 5000:
            Recording.objects.bulk_create(rows)
            rows = []
    Recording.objects.bulk_create(rows)
    return keys


def _sweeper(start, done, batch_size: int) -> None:
    """One sweep process: waits for the start, sweeps, reports what it deleted and its CPU time."""
    from django.db import connection

    from retention.sweep import sweep_expired_recordings

    connection.ensure_connection()
    start.wait()
    before = resource.getrusage(resource.RUSAGE_SELF)
    run = sweep_expired_recordings(
        batch_size=batch_size, triggered_by="bench", override_reason="benchmark: parallel"
    )
    after = resource.getrusage(resource.RUSAGE_SELF)
    cpu = after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime
    done.put((run.deleted, run.failed, cpu))
    connection.close()


def parallel_sweep(processes: int, n: int, *, batch_size: int, camera, dock, store) -> dict:
    """Sweep n expired recordings with `processes` processes at once; check each went once."""
    from django.db import connections

    from custody.models import AuditEvent
    from evidence.models import Recording, RecordingState
    from retention.models import DeletionCertificate

    keys = make_recordings(n, prefix=f"bench/par{processes}", camera=camera, dock=dock)
    put_objects(store, keys)
    ids = list(
        Recording.objects.filter(storage_key__startswith=f"bench/par{processes}/").values_list(
            "pk", flat=True
        )
    )
    connections.close_all()
    ctx = multiprocessing.get_context("fork")
    start, done = ctx.Event(), ctx.Queue()
    procs = [ctx.Process(target=_sweeper, args=(start, done, batch_size)) for _ in range(processes)]
    for p in procs:
        p.start()
    time.sleep(1)  # every process connected and waiting
    t0 = time.perf_counter()
    start.set()
    results = [done.get() for _ in procs]
    elapsed = time.perf_counter() - t0
    for p in procs:
        p.join()
        assert p.exitcode == 0, p.exitcode
    deleted = sum(r[0] for r in results)
    cpu = sum(r[2] for r in results)
    assert deleted == n and not any(r[1] for r in results), results
    assert Recording.objects.filter(pk__in=ids, state=RecordingState.DELETED).count() == n
    assert DeletionCertificate.objects.filter(recording_id__in=ids).count() == n
    erased = AuditEvent.objects.filter(
        action="recording.erased", object_id__in=[str(i) for i in ids]
    )
    assert erased.count() == n and erased.values("object_id").distinct().count() == n
    assert store.size(keys[0]) is None and store.size(keys[-1]) is None
    return {
        "processes": processes,
        "recordings_per_s": round(n / elapsed),
        "per_cpu_s": round(n / cpu),
        "per_process": [r[0] for r in results],
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=100_000)
    parser.add_argument("--batch-size", type=int, default=1000)
    parser.add_argument("--mem-small", type=int, default=10_000)
    parser.add_argument("--mem-large", type=int, default=100_000)
    parser.add_argument("--processes", default="1,2,4", help="sweep processes at once, in turn")
    parser.add_argument("--n-parallel", type=int, default=20_000)
    args = parser.parse_args()

    from devtools.localservices import local_services

    with local_services(redis=False):
        os.environ["DJANGO_SETTINGS_MODULE"] = "bwv.settings"
        import django

        django.setup()
        from django.core.management import call_command

        call_command("migrate", verbosity=0)
        from blobstore import blob_store
        from common.roles import Role
        from devices.models import Borough, Camera
        from devices.services import dock_register
        from retention.sweep import sweep_expired_recordings
        from tests import factories as f

        store = blob_store()
        harrow = Borough.objects.get(code="QA")
        admin = f.user(Role.SYSTEM_ADMIN)
        dock, _ = dock_register(borough=harrow, station="Bench", name="Dock", actor=admin)
        camera = Camera.objects.create(serial="BENCH-SWEEP", borough=harrow)

        # (a) raw DeleteObjects of N keys, 1,000 a request.
        # The same key shape as a recording's (a folder per recording), so both delete alike.
        raw_keys = [f"bench/raw/{uuid.uuid4()}/media" for _ in range(args.n)]
        put_objects(store, raw_keys)
        t0 = time.perf_counter()
        failed = store.delete_many(raw_keys)
        raw_s = time.perf_counter() - t0
        assert not failed, failed[:5]

        # (b) our sweep over N expired recordings with one object each.
        keys = make_recordings(args.n, prefix="bench/rec", camera=camera, dock=dock)
        put_objects(store, keys)
        t0 = time.perf_counter()
        run = sweep_expired_recordings(
            batch_size=args.batch_size,
            triggered_by="bench",
            override_reason="benchmark: the whole estate is expired",
        )
        ours_s = time.perf_counter() - t0
        assert run.deleted == args.n, (run.deleted, run.failed, run.errors[:3])
        assert store.size(keys[0]) is None and store.size(keys[-1]) is None

        # Peak memory of the sweep with a small and a large backlog (objects absent: S3 answers
        # the same, and memory is what is measured here).
        peaks = {}
        for n in (args.mem_small, args.mem_large):
            make_recordings(n, prefix=f"bench/mem{n}", camera=camera, dock=dock)
            tracemalloc.start()
            run = sweep_expired_recordings(
                batch_size=args.batch_size, triggered_by="bench", override_reason="benchmark"
            )
            peaks[n] = tracemalloc.get_traced_memory()[1]
            tracemalloc.stop()
            assert run.deleted == n

        parallel = [
            parallel_sweep(
                int(p),
                args.n_parallel,
                batch_size=args.batch_size,
                camera=camera,
                dock=dock,
                store=store,
            )
            for p in args.processes.split(",")
        ]
        for row in parallel:
            row["per_cpu_s_vs_one"] = round(row["per_cpu_s"] / parallel[0]["per_cpu_s"], 3)
            print(f"sweep, {row}", file=sys.stderr)

        raw_rate, ours_rate = args.n / raw_s, args.n / ours_s
        result = {
            "bench": "sweep",
            "n": args.n,
            "raw_delete_objects_per_s": round(raw_rate),
            "sweep_recordings_per_s": round(ours_rate),
            "ratio": round(ours_rate / raw_rate, 3),
            f"peak_mem_mib_{args.mem_small}": round(peaks[args.mem_small] / 2**20, 2),
            f"peak_mem_mib_{args.mem_large}": round(peaks[args.mem_large] / 2**20, 2),
            "mem_growth": round(peaks[args.mem_large] / peaks[args.mem_small], 3),
            "processes": parallel,
            "cores": os.cpu_count(),
        }
        print(f"raw DeleteObjects {raw_rate:.0f}/s; sweep {ours_rate:.0f}/s", file=sys.stderr)
        print(json.dumps(result))


if __name__ == "__main__":
    main()
