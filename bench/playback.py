"""Playback: time to first byte and seek latency of our Range endpoint, against a raw S3 ranged
GET of the same stored bytes.

    .venv/bin/python bench/playback.py [--mib 64] [--repeat 40] [--range-kib 512]

One clip of `--mib` MiB goes through the real ingest path into the loopback S3 server (encrypted in
segments). A sergeant's session states its purpose, then, in one run, alternating request by
request, over HTTP on loopback (our endpoint served by a threaded WSGI server, a thread per request,
its database connections from a pool: BWV_DB_POOL_SIZE):
  ttfb:  ours, `GET /recordings/<id>/media` with `Range: bytes=0-`, until the first body byte;
         raw, `GetObject` with the same range of the stored (sealed) object, until its first byte;
  seek:  ours, a `--range-kib` range at a random offset, until its last byte; raw, `GetObject` of
         the sealed span that holds it (what our endpoint itself must read and decrypt).
Last line: JSON with the medians and p95s, "ttfb_ratio", "seek_ratio" and "ratio" (the larger of
the two ratios, ours ÷ raw; goal at most 1.5).
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import random
import statistics
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def _ours(port: int, path: str, cookie: str, start: int, end: int | None) -> tuple[float, float]:
    """(seconds to the first body byte, seconds to the last) of one ranged GET of ours."""
    t0 = time.perf_counter()
    conn = http.client.HTTPConnection("127.0.0.1", port)
    wanted = f"bytes={start}-{'' if end is None else end - 1}"
    conn.request("GET", path, headers={"Range": wanted, "Cookie": cookie})
    response = conn.getresponse()
    assert response.status == 206, response.status
    response.read(1)
    first = time.perf_counter() - t0
    if end is not None:
        while response.read(1 << 16):
            pass
    last = time.perf_counter() - t0
    conn.close()
    return first, last


def _raw(store, key: str, start: int, end: int | None) -> tuple[float, float]:
    t0 = time.perf_counter()
    ranged = f"bytes={start}-{'' if end is None else end - 1}"
    body = store.client.get_object(Bucket=store.bucket, Key=key, Range=ranged)["Body"]
    body.read(1)
    first = time.perf_counter() - t0
    if end is not None:
        while body.read(1 << 16):
            pass
    last = time.perf_counter() - t0
    body.close()
    return first, last


def _summary(samples: list[float]) -> dict:
    ordered = sorted(samples)
    return {
        "p50_ms": round(statistics.median(ordered) * 1000, 2),
        "p95_ms": round(ordered[max(0, int(len(ordered) * 0.95) - 1)] * 1000, 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--mib", type=int, default=64)
    parser.add_argument("--repeat", type=int, default=40)
    parser.add_argument("--range-kib", type=int, default=512)
    args = parser.parse_args()

    from devtools.localservices import local_services

    with local_services(redis=False):
        os.environ["DJANGO_SETTINGS_MODULE"] = "bwv.settings"
        os.environ["BWV_PLAIN_STATIC"] = "1"
        # The threaded server below runs each request in a new thread: without a pool each Range
        # request would open a database connection of its own.
        os.environ.setdefault("BWV_DB_POOL_SIZE", "4")
        import django

        django.setup()
        from django.core.management import call_command
        from django.core.servers.basehttp import ThreadedWSGIServer, WSGIRequestHandler
        from django.core.wsgi import get_wsgi_application
        from django.test import Client

        call_command("migrate", verbosity=0)
        from blobstore import blob_store
        from common.roles import Role
        from evidence.media import recording_cipher
        from evidence.sample_media import padded_clip
        from tests import factories as f

        size = args.mib * 2**20
        cam, _officer = f.issued_camera(borough_code="QA")
        recording = f.ingested_recording(cam=cam, data=padded_clip(size, seed=1))
        client = Client()
        f.sign_in(client, f.user(Role.CUSTODY_SERGEANT, borough_code="QA"))
        opened = client.post(f"/recordings/{recording.pk}/", {"purpose": "5201234/26 bench"})
        assert opened.status_code == 302, opened.status_code
        cookie = "; ".join(f"{k}={v.value}" for k, v in client.cookies.items())

        class Quiet(WSGIRequestHandler):
            def log_message(self, *args):  # the bench's output is its JSON line
                pass

        server = ThreadedWSGIServer(("127.0.0.1", 0), Quiet)
        server.set_app(get_wsgi_application())
        threading.Thread(target=server.serve_forever, daemon=True).start()
        port = server.server_address[1]

        store = blob_store()
        cipher = recording_cipher(recording)
        path = f"/recordings/{recording.pk}/media"
        span = args.range_kib * 1024
        rng = random.Random(7)  # noqa: S311 -- seek offsets, not a secret
        ttfb = {"ours": [], "raw": []}
        seek = {"ours": [], "raw": []}
        _ours(port, path, cookie, 0, span)  # warm both paths
        _raw(store, recording.storage_key, 0, span)
        for _ in range(args.repeat):
            ttfb["ours"].append(_ours(port, path, cookie, 0, None)[0])
            ttfb["raw"].append(_raw(store, recording.storage_key, 0, None)[0])
            start = rng.randrange(0, size - span)
            seek["ours"].append(_ours(port, path, cookie, start, start + span)[1])
            first, last = start // cipher.segment_size, (start + span - 1) // cipher.segment_size
            lo, hi = cipher.sealed_span(first, last, size)
            seek["raw"].append(_raw(store, recording.storage_key, lo, hi)[1])
        server.shutdown()

        figures = {
            f"{what}_{side}": _summary(samples[side])
            for what, samples in (("ttfb", ttfb), ("seek", seek))
            for side in ("ours", "raw")
        }
        ttfb_ratio = figures["ttfb_ours"]["p50_ms"] / figures["ttfb_raw"]["p50_ms"]
        seek_ratio = figures["seek_ours"]["p50_ms"] / figures["seek_raw"]["p50_ms"]
        result = {
            "bench": "playback",
            "clip_mib": args.mib,
            "range_kib": args.range_kib,
            "repeat": args.repeat,
            **{f"{k}_{m}": v[m] for k, v in figures.items() for m in ("p50_ms", "p95_ms")},
            "ttfb_ratio": round(ttfb_ratio, 3),
            "seek_ratio": round(seek_ratio, 3),
            "ratio": round(max(ttfb_ratio, seek_ratio), 3),
        }
        print(json.dumps(result))


if __name__ == "__main__":
    main()
