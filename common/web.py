"""Small helpers shared by the pages of every app."""

from __future__ import annotations

import csv
from collections.abc import Iterable

from django.core.paginator import Page, Paginator
from django.http import HttpResponse
from django.utils.http import url_has_allowed_host_and_scheme


def client_ip(request) -> str:
    """The caller's address as the server sees it (a proxy in front sets REMOTE_ADDR for us)."""
    return request.META.get("REMOTE_ADDR", "")


def spreadsheet_safe(value) -> object:
    """A cell that starts with = + - @ would run as a formula in a spreadsheet: neutralise it."""
    return f"'{value}" if str(value)[:1] in "=+-@" else value


def csv_response(filename: str, header: list[str], rows: Iterable[Iterable]) -> HttpResponse:
    response = HttpResponse(content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{filename}.csv"'
    writer = csv.writer(response)
    writer.writerow(header)
    for row in rows:
        writer.writerow([spreadsheet_safe(v) for v in row])
    return response


def safe_local_path(request, target: str | None, default: str) -> str:
    """`target` when it is a path on this site, else `default`: never a redirect elsewhere.

    Only a path that starts with one "/" is taken: no scheme, no host, and none of the forms that
    browsers read as another host ("//evil.example", "/\\evil.example").
    """
    if (
        target
        and target.startswith("/")
        and not target.startswith(("//", "/\\"))
        and url_has_allowed_host_and_scheme(
            target, allowed_hosts={request.get_host()}, require_https=request.is_secure()
        )
    ):
        return target
    return default


def page_of(request, items, *, per_page: int = 50) -> Page:
    """The page of `items` named by `?page=` (the first for a missing or wrong number, the last
    past the end), for `components/pagination.html`, which keeps the other parameters."""
    return Paginator(items, per_page).get_page(request.GET.get("page"))


def sort_by(request, items, *, columns: dict[str, tuple], default: str):
    """`items` ordered by the column named in `?sort=` ("due", or "-due" for descending), one of
    `columns` (a key and the fields it orders by, the last making the order total); `default`
    otherwise. Returns the ordered items and the sort, for `{% sort_header %}`."""
    raw = request.GET.get("sort") or default
    key, descending = raw.removeprefix("-"), raw.startswith("-")
    if key not in columns:
        key, descending = default.removeprefix("-"), default.startswith("-")

    def flip(field):
        if not isinstance(field, str):  # an expression: F("due_at").asc(nulls_last=True)
            return field.copy().reverse_ordering()
        return field.removeprefix("-") if field.startswith("-") else f"-{field}"

    order = [flip(field) if descending else field for field in columns[key]]
    return items.order_by(*order), {"key": key, "descending": descending}
