"""Tagging footage with dispatch incidents on a force-sized table, against a plain bulk insert.

    .venv/bin/python bench/integration.py [--rows 1000000] [--incidents 10000]

Loads N recordings into PostgreSQL (COPY) across the 32 boroughs (20 officers each, a clip every
2.5 seconds of the force's time), then 10,000 incidents of two officers each, an hour long, spread
over the same weeks. In one run it measures:
  ours:  `evidence.incidents.incidents_tag` on every incident as they arrived: the recordings each
         attendance justifies, found through the recordings' (officer, start) index, the tags
         written and each one audited in the hash-chained log;
  plain: the same tag rows written again with Django's bulk_create (no search, no audit).
Last line: JSON with both rates in tags a second and "ratio" = ours ÷ plain (goal at least 0.5).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

SPACING = timedelta(seconds=2.5)


def load_recordings(rows: int) -> None:
    """N recordings by COPY: 20 officers and cameras in each borough, a clip a minute long every
    2.5 seconds of the force's time before 1 November 2026, the officers taking turns."""
    from django.db import connection

    from devices.models import Borough, Camera, Officer

    cameras, officers = [], []
    for b in Borough.objects.order_by("pk"):
        for i in range(20):
            cameras.append(Camera.objects.create(serial=f"BENCH-{b.code}-{i:03d}", borough=b))
            officers.append(
                Officer.objects.create(
                    collar_number=f"{i:03d}{b.code}B", first_name="B", last_name="O", borough=b
                )
            )
    base = datetime(2026, 11, 1, tzinfo=UTC)
    columns = (
        "id, camera_id, borough_id, officer_id, state, started_at, ended_at, duration_seconds, "
        "size_bytes, sha256, original_filename, media_info, storage_key, poster_key, "
        "segment_size, kek_id, delete_after, created_at, held, clock_suspect, "
        "clock_suspect_reason, review_window_extended"
    )
    with connection.cursor() as cursor:
        with cursor.cursor.copy(f"COPY evidence_recording ({columns}) FROM STDIN") as copy:
            for n in range(rows):
                k = n % len(cameras)
                start = base - SPACING * n
                rid = uuid.UUID(int=n + 1, version=4)
                copy.write_row(
                    (
                        rid,
                        cameras[k].pk,
                        cameras[k].borough_id,
                        officers[k].pk,
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
        cursor.execute("ANALYZE evidence_recording")


def load_incidents(count: int, span: timedelta, base: datetime) -> list[int]:
    from devices.models import Borough, Officer
    from evidence.incidents import attendance_window
    from evidence.models import Incident, IncidentAttendance

    rng = random.Random(2026)
    officers = {
        b.pk: list(Officer.objects.filter(borough=b, collar_number__endswith="B"))
        for b in Borough.objects.all()
    }
    boroughs = [pk for pk, found in officers.items() if found]
    incidents, plans = [], []
    for n in range(count):
        borough = rng.choice(boroughs)
        opened = base - timedelta(seconds=rng.randrange(int(span.total_seconds())))
        incidents.append(Incident(reference=f"CAD {n}/BENCH", borough_id=borough, opened_at=opened))
        plans.append((opened, rng.sample(officers[borough], 2)))
    incidents = Incident.objects.bulk_create(incidents, batch_size=2000)
    attendances = []
    for incident, (opened, sent) in zip(incidents, plans, strict=True):
        arrived, cleared = opened + timedelta(minutes=5), opened + timedelta(minutes=65)
        for officer in sent:
            attendances.append(
                IncidentAttendance(
                    incident=incident,
                    officer=officer,
                    arrived_at=arrived,
                    cleared_at=cleared,
                    **attendance_window(arrived, cleared),
                )
            )
    IncidentAttendance.objects.bulk_create(attendances, batch_size=5000)
    return [i.pk for i in incidents]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--incidents", type=int, default=10_000)
    args = parser.parse_args()

    from devtools.localservices import local_services

    with local_services(redis=False):
        os.environ["DJANGO_SETTINGS_MODULE"] = "bwv.settings"
        import django

        django.setup()
        from django.core.management import call_command
        from django.db import connection, transaction

        call_command("migrate", verbosity=0)
        from evidence.incidents import incidents_tag
        from evidence.models import IncidentTag

        t0 = time.perf_counter()
        load_recordings(args.rows)
        base = datetime(2026, 11, 1, tzinfo=UTC)
        ids = load_incidents(args.incidents, SPACING * args.rows, base)
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE evidence_incidentattendance")
        print(
            f"loaded {args.rows} recordings and {len(ids)} incidents in "
            f"{time.perf_counter() - t0:.0f}s",
            file=sys.stderr,
        )

        # Ours: the incidents arrive in batches of 500 (as a dispatch system catching up sends).
        t0 = time.perf_counter()
        tags = 0
        for n in range(0, len(ids), 500):
            tags += incidents_tag(incident_ids=ids[n : n + 500], actor="system:bench")
        ours_seconds = time.perf_counter() - t0
        assert tags == IncidentTag.objects.count() and tags > 0

        # Plain: the same rows again, straight in.
        rows = list(IncidentTag.objects.values_list("recording_id", "incident_id", "tagged_at"))
        IncidentTag.objects.all().delete()
        t0 = time.perf_counter()
        with transaction.atomic():
            IncidentTag.objects.bulk_create(
                [IncidentTag(recording_id=r, incident_id=i, tagged_at=at) for r, i, at in rows],
                batch_size=2000,
            )
        plain_seconds = time.perf_counter() - t0
        assert IncidentTag.objects.count() == tags

        ours, plain = tags / ours_seconds, tags / plain_seconds
        result = {
            "bench": "integration",
            "recordings": args.rows,
            "incidents": len(ids),
            "tags": tags,
            "ours_seconds": round(ours_seconds, 2),
            "plain_seconds": round(plain_seconds, 2),
            "ours_tags_per_s": round(ours),
            "plain_tags_per_s": round(plain),
            "ratio": round(ours / plain, 3),
        }
        print(json.dumps(result))


if __name__ == "__main__":
    main()
