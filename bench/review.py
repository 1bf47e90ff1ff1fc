"""Review search latency on a force-sized table, against the Django admin changelist.

    .venv/bin/python bench/review.py [--rows 1000000] [--repeat 30] [--no-admin]

Loads N recordings into PostgreSQL (COPY) across the 32 boroughs, one in 50 of them flagged as
evidence under a crime reference (a reference names 3 recordings), then, in one run and through
the Django test client, measures p50/p95 of:
  ours:  the search page, first page (system admin), a deep page (keyset cursor half-way through
         the table, i.e. page 10,000 at 50 a page), a filtered query (a Harrow sergeant,
         unflagged footage of one camera), and a crime reference (a system admin: the whole
         table);
  admin: the Django admin changelist of the same model, first page and the same deep page (?p=)
         (left out with --no-admin: its COUNT(*) and OFFSET are what ours avoids, and at ten
         million rows they only make the run long).
Our pages are also checked to run no COUNT over the recordings table (the run fails if one does).
Last line: JSON with every figure, "worst_p95_ms" (our slowest shape; goal under 50 at 10 M rows)
and "ratio" = our deep-page p95 ÷ the admin's deep-page p95.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def load(rows: int) -> None:
    from django.db import connection

    from devices.models import Borough, Camera, Officer

    boroughs = list(Borough.objects.order_by("pk"))
    cameras, officers = [], []
    for b in boroughs:
        for i in range(20):
            cameras.append(Camera.objects.create(serial=f"BENCH-{b.code}-{i:03d}", borough=b))
            officers.append(
                Officer.objects.create(
                    collar_number=f"{i:03d}{b.code}B",
                    first_name="B",
                    last_name=f"Officer{i}",
                    borough=b,
                )
            )
    base = datetime(2026, 11, 1, tzinfo=UTC)
    columns = (
        "id, camera_id, borough_id, officer_id, state, started_at, ended_at, "
        "duration_seconds, size_bytes, sha256, original_filename, media_info, storage_key, "
        "poster_key, segment_size, kek_id, delete_after, created_at, held, clock_suspect, clock_suspect_reason, review_window_extended"
    )
    with connection.cursor() as cursor:
        raw = cursor.cursor  # psycopg 3
        # Ten million rows in minutes, not an hour: the rows are valid by construction, so the
        # foreign-key triggers are skipped while loading, and the indexes that back no constraint
        # are dropped and built again afterwards (one sort each instead of ten million inserts).
        cursor.execute("SET session_replication_role = replica")
        cursor.execute(
            "SELECT i.indexname, i.indexdef FROM pg_indexes i WHERE i.tablename IN "
            "('evidence_recording', 'evidence_evidenceflag') AND NOT EXISTS (SELECT 1 FROM "
            "pg_constraint c WHERE c.conindid = (quote_ident(i.indexname))::regclass)"
        )
        indexes = cursor.fetchall()
        for name, _definition in indexes:
            cursor.execute(f'DROP INDEX "{name}"')
        with raw.copy(f"COPY evidence_recording ({columns}) FROM STDIN") as copy:
            for n in range(rows):
                cam = cameras[n % len(cameras)]
                officer = officers[n % len(officers)]
                start = base - timedelta(seconds=n * 2.5)
                rid = uuid.UUID(int=n + 1, version=4)
                copy.write_row(
                    (
                        rid,
                        cam.pk,
                        cam.borough_id,
                        officer.pk,
                        "available",
                        start,
                        start + timedelta(seconds=60),
                        60.0,
                        50_000_000,
                        f"{n:064x}",
                        "CLIP.MP4",
                        "{}",
                        f"recordings/{rid}/media",
                        "",
                        1 << 20,
                        "bench",
                        start + timedelta(days=31),
                        start,
                        False,
                        False,
                        "",
                        False,
                    )
                )
        flagger = _bench_user()
        with raw.copy(
            "COPY evidence_evidenceflag (recording_id, kind, crime_reference, reason, "
            "flagged_by_id, flagged_at, lift_reason) FROM STDIN"
        ) as copy:
            for n in range(0, rows, FLAG_EVERY):
                start = base - timedelta(seconds=n * 2.5)
                copy.write_row(
                    (
                        uuid.UUID(int=n + 1, version=4),
                        "evidence",
                        crime_reference(n),
                        "bench",
                        flagger,
                        start + timedelta(hours=1),
                        "",
                    )
                )
        cursor.execute("SET session_replication_role = DEFAULT")
        cursor.execute("SET maintenance_work_mem = '512MB'")
        for _name, definition in indexes:
            cursor.execute(definition)
        cursor.execute("VACUUM ANALYZE evidence_recording")
        cursor.execute("VACUUM ANALYZE evidence_evidenceflag")


FLAG_EVERY = 50
REFS_SHARED = 3  # recordings per crime reference


def crime_reference(n: int) -> str:
    """The crime reference of the flag on recording n (a multiple of FLAG_EVERY)."""
    return f"{n // FLAG_EVERY // REFS_SHARED:07d}/26"


def _bench_user() -> int:
    from common.roles import Role
    from tests import factories as f

    return f.user(Role.SYSTEM_ADMIN).pk


def timed(client, url: str, repeat: int, *, counts_allowed: bool = False) -> dict:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as queries:
        client.get(url)  # warm
    if not counts_allowed:
        counting = [
            q["sql"]
            for q in queries.captured_queries
            if "COUNT(" in q["sql"].upper() and "evidence_recording" in q["sql"]
        ]
        assert not counting, f"{url} counts recordings: {counting}"
    samples = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        response = client.get(url)
        samples.append((time.perf_counter() - t0) * 1000)
        assert response.status_code == 200, (url, response.status_code)
    samples.sort()
    return {
        "p50_ms": round(statistics.median(samples), 1),
        "p95_ms": round(samples[int(len(samples) * 0.95) - 1], 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=30)
    parser.add_argument("--no-admin", action="store_true", help="leave out the admin baseline")
    args = parser.parse_args()

    from devtools.localservices import local_services

    with local_services(redis=False):
        os.environ["DJANGO_SETTINGS_MODULE"] = "bwv.settings"
        os.environ["BWV_PLAIN_STATIC"] = "1"  # no collected manifest needed to render pages
        import django

        django.setup()
        from django.core.management import call_command
        from django.test import Client

        call_command("migrate", verbosity=0)
        from common.roles import Role
        from evidence.models import Recording
        from review.selectors import _encode_cursor
        from tests import factories as f

        t0 = time.perf_counter()
        load(args.rows)
        print(f"loaded {args.rows} recordings in {time.perf_counter() - t0:.0f}s", file=sys.stderr)

        admin_user = f.user(Role.SYSTEM_ADMIN)
        ours = Client()
        f.sign_in(ours, admin_user)
        admin = ours  # the admin site asks for the same two factors
        sergeant = Client()
        f.sign_in(sergeant, f.user(Role.CUSTODY_SERGEANT, borough_code="QA"))

        per_page = 50
        deep_page = min(10_000, max(1, args.rows // per_page // 2))
        pivot = Recording.objects.order_by("-started_at", "-id")[(deep_page - 1) * per_page]
        deep_cursor = _encode_cursor(pivot)
        harrow_cam = "BENCH-QA-007"
        # A reference on recordings from the middle of the table, far from its first page.
        reference = crime_reference(args.rows // 2 // FLAG_EVERY * FLAG_EVERY)

        figures = {
            "ours_first": timed(ours, "/recordings/", args.repeat),
            "ours_deep": timed(ours, f"/recordings/?cursor={deep_cursor}", args.repeat),
            "ours_filtered": timed(
                sergeant, f"/recordings/?flagged=no&camera={harrow_cam}", args.repeat
            ),
            "ours_crime_reference": timed(
                ours, f"/recordings/?crime_reference={reference}", args.repeat
            ),
        }
        if not args.no_admin:
            figures["admin_first"] = timed(
                admin, "/admin/evidence/recording/", args.repeat, counts_allowed=True
            )
            figures["admin_deep"] = timed(
                admin, f"/admin/evidence/recording/?p={deep_page}", args.repeat, counts_allowed=True
            )
        worst = max(v["p95_ms"] for k, v in figures.items() if k.startswith("ours_"))
        from django.db import connection

        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_total_relation_size('evidence_recording')")
            table_bytes = cursor.fetchone()[0]
        result = {
            "bench": "review",
            "rows": args.rows,
            "deep_page": deep_page,
            **{f"{k}_{m}": v[m] for k, v in figures.items() for m in ("p50_ms", "p95_ms")},
            "worst_p95_ms": worst,
            "ratio": round(figures["ours_deep"]["p95_ms"] / figures["admin_deep"]["p95_ms"], 3)
            if "admin_deep" in figures
            else None,
            "cores": os.cpu_count(),
            # The table and its indexes, per recording: what recordings cost PostgreSQL.
            "bytes_per_recording": round(table_bytes / args.rows),
        }
        print(json.dumps(result))


if __name__ == "__main__":
    main()
