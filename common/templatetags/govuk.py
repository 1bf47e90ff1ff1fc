"""Small template helpers for the GOV.UK layout (templates/layout/). Markup stays in templates."""

from __future__ import annotations

from django import template
from django.urls import NoReverseMatch, reverse

register = template.Library()


@register.filter
def with_level(messages, level_tag: str) -> list:
    """The messages of one level ("success", "info", "warning", "error"), so that the layout can
    show all errors in one summary and all successes in one banner."""
    return [message for message in messages if message.level_tag == level_tag]


@register.inclusion_tag("layout/breadcrumbs.html")
def breadcrumbs(*trail):
    """`{% breadcrumbs "Home" "home" "Cases" "case-list" %}`: label and place, in pairs; a place
    is a URL name without arguments or a path (from `{% url ... as name %}`). The current page is
    the page's heading and is not repeated here."""
    if len(trail) % 2:
        raise template.TemplateSyntaxError("breadcrumbs takes a label and a place for each link")
    links = []
    for label, place in zip(trail[::2], trail[1::2], strict=True):
        place = str(place)
        if not place.startswith("/"):
            try:
                place = reverse(place)
            except NoReverseMatch as exc:
                raise template.TemplateSyntaxError(f"breadcrumbs: no URL named {place!r}") from exc
        links.append({"label": label, "href": place})
    return {"links": links}


@register.filter
def minutes(duration) -> int:
    """A timedelta in whole minutes, rounded up (a lockout of 29 min 30 s is "30 minutes")."""
    seconds = duration.total_seconds() if duration else 0
    return int(-(-seconds // 60))


@register.inclusion_tag("components/sort_header.html", takes_context=True)
def sort_header(context, label: str, key: str, numeric: bool = False):
    """A column header that sorts the table by `key` on the server (common.web.sort_by): a link
    that keeps the filters, goes back to the first page, and turns the order round when the table
    is already sorted by this column; `aria-sort` says how it is sorted now."""
    sort = context.get("sort") or {}
    current = sort.get("key") == key
    descending = bool(sort.get("descending"))
    return {
        "request": context.get("request"),
        "label": label,
        "next": f"-{key}" if current and not descending else key,
        "aria_sort": ("descending" if descending else "ascending") if current else "none",
        "numeric": numeric,
    }


@register.filter
def person(user) -> str:
    """A member of staff by name: their rank, name and collar number when they are an officer,
    else their full name, else their user name. Pages select the officer with the user."""
    if user is None:
        return ""
    officer = getattr(user, "officer", None)
    if officer is not None:
        return officer.display_name
    return user.get_full_name() or user.get_username()
