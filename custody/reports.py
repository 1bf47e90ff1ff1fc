"""The audit report as CSV: one object's (or one person's) events in chain order, in codes.

Cells that a spreadsheet would run as formulas are neutralised (common.web.csv_response)."""

from __future__ import annotations

from django.db.models import QuerySet

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


def audit_csv_response(*, events: QuerySet[AuditEvent], filename: str):
    """Every event, oldest first, in the chain's own codes: the evidential record (the pages put
    them in words)."""
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
        for e in events.order_by("seq").iterator(chunk_size=2000)
        for d in (e.data,)
    )
    return csv_response(filename, CSV_COLUMNS, rows)
