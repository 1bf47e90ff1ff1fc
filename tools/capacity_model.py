"""The capacity model: what a force needs, from the benchmarks' measured rates.

    .venv/bin/python tools/capacity_model.py [--results bench/results] [--out docs/capacity.md]

Reads the last JSON line each benchmark printed (`make bench` keeps them in bench/results/) and
writes docs/capacity.md: for the force in FORCE (22,000 cameras, as the Metropolitan Police), the
web and worker cores, S3 throughput and capacity, PostgreSQL's size, the sweep's nightly window
and the cost of verifying a year of the audit log, each from a per-core rate measured on the
benchmark machine. Every assumption is in FORCE, stated in the document, and easy to change; a
figure whose benchmark has not been run is said to be missing, never guessed.
"""

from __future__ import annotations

import argparse
import json
import math
import platform
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

# The force. Figures marked "given" come from the force; the rest are assumptions, stated as such.
FORCE = {
    "cameras": 22_000,  # given
    "boroughs": 32,  # given
    "videos_per_year": 785_000,  # given
    "minutes_per_video": 20,  # assumption: an incident recorded from arrival to hand-over
    "gb_per_hour": 2.0,  # assumption: 1080p at about 4.5 Mbit/s, as body-worn cameras record
    "shifts_per_day": 3,  # assumption: early, late and night turns
    "peak_share": 1 / 3,  # given: a third of the fleet docks in the hour after a shift change
    "retained_share": 0.05,  # assumption: footage flagged as evidence or for a policing purpose
    "retained_years": 6,  # assumption: how long retained footage is kept on average
    "unretained_days": 31,  # the policy: unretained footage is deleted within 31 days
    "headroom": 2.0,  # sized for twice the expected peak
    "dock_link_mbit_s": 100,  # assumption: a dock PC's share of the station's network
    # Audit events a year (assumptions): per video, upload started + ingested + deleted or
    # flagged + about three views; every camera issued and returned on every shift it is used
    # (half of the fleet a day, each twice); 10,000 staff sign-ins a day.
    "audit_events_per_video": 6,
    "camera_handovers_per_day": 22_000 // 2 * 2,
    "sign_ins_per_day": 10_000,
}

GIB = 1024**3


def _load(results: Path) -> dict[str, dict]:
    found = {}
    for name in ("ingest", "audit", "review", "sweep"):
        path = results / f"{name}.json"
        if path.exists():
            found[name] = json.loads(path.read_text().strip().splitlines()[-1])
    return found


def _minutes(seconds: float) -> str:
    n = math.ceil(seconds / 60)
    return f"{n} minute" if n == 1 else f"{n} minutes"


def _fmt(value: float, digits: int = 1) -> str:
    if value >= 100:
        return f"{value:,.0f}"
    return f"{value:,.{digits}f}"


def model(bench: dict[str, dict], force: dict) -> dict:
    """The derived figures (None where the benchmark that gives them is missing)."""
    out: dict = {}
    videos_day = force["videos_per_year"] / 365
    gb_video = force["minutes_per_video"] / 60 * force["gb_per_hour"]
    gb_day = videos_day * gb_video
    # The footage of a shift change arrives in the hour after it: a third of the day's footage
    # in each of the three hours after the three changes.
    peak_gb_hour = (
        gb_day / force["shifts_per_day"] * (force["peak_share"] * force["shifts_per_day"])
    )
    peak_mib_s = peak_gb_hour * 1e9 / 3600 / 2**20
    out.update(
        videos_day=videos_day,
        gb_video=gb_video,
        tb_year=gb_day * 365 / 1000,
        peak_gb_hour=peak_gb_hour,
        peak_mib_s=peak_mib_s,
        peak_docks=force["cameras"] * force["peak_share"],
    )
    rolling_tb = gb_day * force["unretained_days"] * (1 - force["retained_share"]) / 1000
    retained_tb = gb_day * 365 * force["retained_share"] * force["retained_years"] / 1000
    out.update(rolling_tb=rolling_tb, retained_tb=retained_tb, s3_tb=rolling_tb + retained_tb)

    ingest = bench.get("ingest")
    if ingest and "cpu_s_per_gib" in ingest:
        ours = ingest["cpu_s_per_gib"]["ours"]
        peak_gib_s = peak_mib_s / 1024
        out["web_cores"] = peak_gib_s * ours["web"] * force["headroom"]
        out["s3_cores"] = peak_gib_s * ours["s3_server"] * force["headroom"]
        out["web_cpu_s_per_gib"] = ours["web"]
        out["s3_cpu_s_per_gib"] = ours["s3_server"]
        out["rss_per_upload_mib"] = ingest.get("rss_per_upload_mib")
        # Uploads in flight at the peak: the peak hour's videos, each as long as a dock's link
        # takes to send it (headroom included).
        seconds_per_video = gb_video * 1e9 * 8 / (force["dock_link_mbit_s"] * 1e6)
        peak_videos = videos_day * force["peak_share"]
        out["uploads_in_flight"] = peak_videos * seconds_per_video / 3600 * force["headroom"]
        if out["rss_per_upload_mib"]:
            out["web_memory_gib"] = out["uploads_in_flight"] * out["rss_per_upload_mib"] / 1024

    audit = bench.get("audit")
    events_year = (
        force["videos_per_year"] * force["audit_events_per_video"]
        + (force["camera_handovers_per_day"] + force["sign_ins_per_day"]) * 365
    )
    out["audit_events_year"] = events_year
    if audit:
        out["verify_year_min"] = events_year / audit["verify_per_s"] / 60
        out["append_peak_per_s"] = audit["append_per_s"]
        if audit.get("bytes_per_event"):
            out["audit_gb_year"] = events_year * audit["bytes_per_event"] / 1e9

    review = bench.get("review")
    if review and review.get("bytes_per_recording"):
        out["recordings_gb_year"] = force["videos_per_year"] * review["bytes_per_recording"] / 1e9

    sweep = bench.get("sweep")
    if sweep:
        nightly = videos_day * (1 - force["retained_share"])
        out["sweep_nightly"] = nightly
        out["sweep_window_s"] = nightly / sweep["sweep_recordings_per_s"]
    return out


def render(bench: dict[str, dict], force: dict, figures: dict, *, machine: str) -> str:
    missing = [n for n in ("ingest", "audit", "review", "sweep") if n not in bench]
    f = figures
    lines = [
        "# Capacity model",
        "",
        "Written by `tools/capacity_model.py` from the benchmarks' last JSON lines "
        "(`bench/results/`, written by `make bench`); edit the assumptions in the script, not here.",
        f"Measured on: {machine}.",
        "",
    ]
    if missing:
        lines += [f"Not measured (benchmark not run): {', '.join(missing)}.", ""]
    lines += [
        "## The force",
        "",
        "| | |",
        "|---|---|",
        f"| cameras | {force['cameras']:,} in {force['boroughs']} boroughs (given) |",
        f"| videos a year | {force['videos_per_year']:,} (given), {_fmt(f['videos_day'])} a day |",
        f"| length and size of a video | {force['minutes_per_video']} minutes at "
        f"{force['gb_per_hour']} GB an hour: {_fmt(f['gb_video'], 2)} GB (assumption) |",
        f"| footage a year | {_fmt(f['tb_year'])} TB |",
        f"| shift changes | {force['shifts_per_day']} a day (assumption); a third of the fleet "
        f"({_fmt(f['peak_docks'])} cameras) docks in the hour after each (given), with the "
        "footage of that shift |",
        f"| peak hour | {_fmt(f['peak_gb_hour'])} GB, {_fmt(f['peak_mib_s'])} MiB/s on average "
        "over the hour |",
        f"| retained | {force['retained_share']:.0%} of footage, kept "
        f"{force['retained_years']} years on average (assumption); the rest deleted within "
        f"{force['unretained_days']} days |",
        f"| sized for | {force['headroom']:g} × the expected peak |",
        "",
        "## What it needs",
        "",
    ]
    if "web_cores" in f:
        lines += [
            f"- **Web cores for ingest**: {_fmt(f['web_cores'])} at the peak hour "
            f"({f['web_cpu_s_per_gib']} CPU seconds per GiB received, sealed and stored, measured; "
            "the dock's own CPU is on the dock PC). Page views and the API are small beside it: "
            "add a core per borough's review load if the sergeants work at the same hour.",
            f"- **Web memory**: {_fmt(f['uploads_in_flight'])} uploads in flight at the peak "
            f"(the peak hour's videos, each sent over a {force['dock_link_mbit_s']} Mbit/s dock "
            f"link; headroom included), about {f['rss_per_upload_mib']} MiB each as measured "
            f"(resident memory): {_fmt(f['web_memory_gib'], 2)} GiB above the processes' own.",
            f"- **S3 throughput**: {_fmt(f['peak_mib_s'] * force['headroom'])} MiB/s of writes "
            f"(headroom included); on the S3 server measured here that is "
            f"{_fmt(f['s3_cores'])} cores ({f['s3_cpu_s_per_gib']} CPU s per GiB).",
        ]
    else:
        lines.append("- Web cores and S3 throughput: the ingest benchmark has not been run.")
    lines += [
        f"- **S3 capacity**: {_fmt(f['rolling_tb'])} TB of unretained footage on the rolling "
        f"{force['unretained_days']} days, plus {_fmt(f['retained_tb'])} TB retained: "
        f"**{_fmt(f['s3_tb'])} TB** (sealed segments add 0.003 %).",
    ]
    db = []
    if "recordings_gb_year" in f:
        db.append(
            f"recordings {_fmt(f['recordings_gb_year'], 2)} GB a year (rows and indexes, "
            "measured per row)"
        )
    if "audit_gb_year" in f:
        db.append(
            f"audit log {_fmt(f['audit_gb_year'])} GB a year (events, tree nodes and "
            "indexes, measured per event)"
        )
    if db:
        lines.append(f"- **PostgreSQL**: {'; '.join(db)}. Both grow for ever: rows are kept.")
    lines.append(
        f"- **Audit log**: about {f['audit_events_year'] / 1e6:.0f} million events a year "
        f"({force['audit_events_per_video']} per video, {force['camera_handovers_per_day']:,} "
        f"camera handovers and {force['sign_ins_per_day']:,} sign-ins a day; assumption)."
    )
    if "verify_year_min" in f:
        lines.append(
            f"  Verifying a year of it takes **{_fmt(f['verify_year_min'])} minutes** at the "
            f"measured rate. Appends: {f['append_peak_per_s']:,}/s measured on a durable cluster "
            f"against an average need of {f['audit_events_year'] / 365 / 86400:.1f}/s (a peak "
            "hour perhaps fifty times that)."
        )
    if "sweep_window_s" in f:
        lines.append(
            f"- **The nightly sweep**: about {_fmt(f['sweep_nightly'])} recordings a night, "
            f"**{_fmt(f['sweep_window_s'])} seconds** at the measured rate; a backlog of a "
            f"month ({_fmt(f['sweep_nightly'] * 30)}) fits in {_minutes(f['sweep_window_s'] * 30)}."
        )
        lines.append(
            "- **Worker cores**: one is enough for the work measured here (the night's sweep "
            "above, an audit verification of a year, checkpoints every ten minutes); a second "
            "keeps exports and mail moving while the sweep or a verification runs."
        )
    lines += [
        "",
        "## Measured",
        "",
        "| benchmark | last line |",
        "|---|---|",
    ]
    for name, data in bench.items():
        lines.append(f"| {name} | `{json.dumps(data)}` |")
    lines += [
        "",
        "## Beyond one PostgreSQL and one S3 endpoint",
        "",
        "The figures above fit one PostgreSQL server and one S3 endpoint for a force of this size. "
        "What changes when a force (or a group of forces sharing one system) outgrows them:",
        "",
        "- **Read replicas.** Search, the recording pages and audit verification read only: they "
        "can go to streaming replicas (a second database alias and a router for the read-only "
        "views), leaving the primary to ingest, flags and the audit appends. The audit chain is "
        "appended on the primary only (its head row serialises appends); verification reads a "
        "replica up to the replica's head and compares with signed checkpoints as now.",
        "- **Partitioning by month.** The recordings and audit tables grow for ever. Partitioned "
        "by month (recordings by `started_at`, audit events by `seq` ranges that map to months), "
        "old partitions become read-only, are vacuumed once, and can sit on cheaper storage; "
        "searches with a date range touch only their months, and the keyset pager already orders "
        "by the partition key. Verification runs per partition in parallel and joins the "
        "partitions' end hashes, as it joins its ranges now.",
        "- **A distributed S3.** One S3 endpoint is one machine's disks and network. MinIO in "
        "distributed mode or SeaweedFS with several volume servers spread objects and erasure "
        "coding over many machines behind one endpoint (a load balancer in front of several "
        "gateways); Object Lock and legal holds must be supported by the chosen store, which "
        "both do. Nothing in the application changes: it speaks S3.",
        "- **More web and worker machines** are stateless and scale out; uploads already resume "
        "on any web process (the claim is in PostgreSQL), and several sweep processes share the "
        "night's work without deleting anything twice.",
        "",
    ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--results", type=Path, default=ROOT / "bench" / "results")
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "capacity.md")
    args = parser.parse_args()
    bench = _load(args.results)
    machine_file = args.results / "machine.txt"
    machine = (
        machine_file.read_text().strip()
        if machine_file.exists()
        else f"{platform.machine()}, {platform.system()}"
    )
    text = render(bench, FORCE, model(bench, FORCE), machine=machine)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text)
    print(f"wrote {args.out} ({datetime.now(UTC):%Y-%m-%d %H:%M} UTC)")


if __name__ == "__main__":
    main()
