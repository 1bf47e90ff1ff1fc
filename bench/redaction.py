"""Redaction: the worker's peak memory against the clip's length.

    .venv/bin/python bench/redaction.py [--seconds 20 80 600]

For each length a clip is made (evidence/sample_media.py, 320x240, 25 fps), then a fresh Python
process runs what the worker does with it after decryption: render the redacted copy to a file
(one box), run the face detector on it, and seal and store it in segments (the embedded local
store, in a temporary directory). Each child reports its peak resident set size (ru_maxrss, which
counts FFmpeg's and OpenCV's allocations too), its RSS once everything is imported, and the
Python-level peak traced by tracemalloc during the work. Last line: JSON of the results,
"growth_mib" (the peak RSS of the longest less that of the shortest) and "ratio" (longest ÷
shortest; goal close to 1 however long the longest).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

CHILD = r"""
import json, os, resource, sys, time, tracemalloc, uuid
from pathlib import Path
import django
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "bwv.settings")
django.setup()
from evidence.redaction import faces_in_file, parse_spec, render_redaction, seal_file_to_store
source, seconds = Path(sys.argv[1]), float(sys.argv[2])
boxes, mutes = parse_spec(
    boxes=[{"start": 0, "end": seconds, "x": 40, "y": 40, "w": 96, "h": 64, "mode": "pixelate"}],
    mutes=[], width=320, height=240, duration=seconds,
)
def rss_mib():
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
import cv2  # noqa: F401 -- loaded before the baseline, as a worker would have it
baseline = rss_mib()
tracemalloc.start()
t0 = time.perf_counter()
dest = source.with_name("redacted.mp4")
render_redaction(source, dest, boxes, mutes)
faces = faces_in_file(dest)
oid = uuid.uuid4()
copy = seal_file_to_store(dest, object_id=oid, storage_key=f"derived/{oid}/media")
elapsed = time.perf_counter() - t0
traced = tracemalloc.get_traced_memory()[1] / (1 << 20)
print(json.dumps({
    "seconds": seconds,
    "copy_mib": round(copy.size_bytes / (1 << 20), 1),
    "baseline_rss_mib": round(baseline, 1),
    "peak_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
    "tracemalloc_peak_mib": round(traced, 1),
    "elapsed_s": round(elapsed, 1),
}))
"""


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=int, nargs="+", default=[20, 80, 600])
    args = parser.parse_args()
    from evidence.sample_media import make_clip

    results = []
    for seconds in args.seconds:
        with tempfile.TemporaryDirectory(prefix="bwv-bench-redact-") as tmp:
            source = Path(tmp) / "clip.mp4"
            t0 = time.perf_counter()
            make_clip(source, seconds=seconds, crf=18)
            made = time.perf_counter() - t0
            env = {**os.environ, "BWV_VAR_DIR": str(Path(tmp) / "var")}
            env.pop("BWV_S3_BUCKET", None)  # the local store: measure the worker, not S3
            out = subprocess.run(  # noqa: S603 -- our own interpreter and script
                [sys.executable, "-c", CHILD, str(source), str(seconds)],
                cwd=ROOT,
                env=env,
                capture_output=True,
                text=True,
                check=True,
            )
            result = json.loads(out.stdout.strip().splitlines()[-1])
            result["clip_mib"] = round(source.stat().st_size / (1 << 20), 1)
            result["clip_made_s"] = round(made, 1)
            print(json.dumps(result), flush=True)
            results.append(result)
    growth = results[-1]["peak_rss_mib"] - results[0]["peak_rss_mib"]
    ratio = results[-1]["peak_rss_mib"] / results[0]["peak_rss_mib"]
    print(
        json.dumps({"results": results, "growth_mib": round(growth, 1), "ratio": round(ratio, 3)})
    )


if __name__ == "__main__":
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "bwv.settings")
    import django

    django.setup()
    main()
