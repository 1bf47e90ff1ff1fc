"""The audit report: one object's (or one person's) events in chain order, as a page or as CSV.

Cells that a spreadsheet would run as formulas are neutralised (common.web.csv_response)."""

from __future__ import annotations

from django.db.models import QuerySet
from django.shortcuts import render

from common.web import csv_response
from custody.models import AuditEvent

CSV_COLUMNS = [
    "seq",
    "at",
    "actor",
    "action",
    "object_type",
    "object_id",
    "borough",
    "justification",
    "recipient",
    "detail",
    "hash",
]
PAGE_LIMIT = 1000


def audit_report_response(request, *, title: str, events: QuerySet[AuditEvent], filename: str):
    events = events.order_by("seq")
    if request.GET.get("format") == "csv":
        rows = (
            [
                e.seq,
                d["at"],
                d["actor"],
                d["action"],
                d["object_type"],
                d["object_id"],
                d["borough"],
                d["justification"],
                d["recipient"],
                d["detail"],
                e.hash,
            ]
            for e in events.iterator(chunk_size=2000)
            for d in (e.data,)
        )
        return csv_response(filename, CSV_COLUMNS, rows)
    context = {"title": title, "events": events[:PAGE_LIMIT], "total": events.count()}
    return render(request, "staff/audit_report.html", context)
