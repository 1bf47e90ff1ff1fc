"""Retention sweep throughput and memory, against raw S3 DeleteObjects.

    .venv/bin/python bench/sweep.py [--n 100000]

In one run, on the same PostgreSQL and S3 server:
  (a) raw S3 DeleteObjects of N small objects in 1,000-key batches;
  (b) our sweep over N expired recordings, each with one small object of the same size: it claims
      them under row locks, deletes the objects in 1,000-key batches, destroys the data keys, marks
      the rows deleted and writes a certificate and an audit event for each.
Then the sweep's peak Python memory (tracemalloc) with 10,000 and with 100,000 expired rows.
Last line: JSON with objects/s of both, "ratio" = (b)/(a) (goal ≥ 0.7) and "mem_growth" = peak at
100,000 ÷ peak at 10,000 (goal < 1.2).
"""

from __future__ import annotations

import argparse
import json
import os
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


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=100_000)
    parser.add_argument("--batch-size", type=int, default=1000)
    parser.add_argument("--mem-small", type=int, default=10_000)
    parser.add_argument("--mem-large", type=int, default=100_000)
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
        }
        print(f"raw DeleteObjects {raw_rate:.0f}/s; sweep {ours_rate:.0f}/s", file=sys.stderr)
        print(json.dumps(result))


if __name__ == "__main__":
    main()
