"""Bar charts drawn as SVG by a template (components/bar_chart.html), no script and no library.

This computes the geometry only (numbers); the markup is the template's. A chart's scale starts at
zero and ends at a round number at or above its largest value (or at a fixed end, 100 for a
percentage), so a bar's length is its value's true share of the axis; the axis is labelled with
its unit and ticks; a legend names the bar and the target mark; and the chart's table (its
figures, for screen readers and for copying) comes with it.
"""

from __future__ import annotations

import math

from django import template

register = template.Library()

WIDTH = 760
LABEL_W = 170  # the rows' labels, right-aligned against the axis
PLOT_W = 470
ROW_H = 26
BAR_H = 18
TOP = 10
AXIS_H = 46  # ticks, their numbers and the axis title
LEGEND_H = 28


def nice_step(span: float) -> float:
    """A round step (1, 2 or 5 times a power of ten) at or above `span`."""
    if span <= 0:
        return 1.0
    power = 10 ** math.floor(math.log10(span))
    return next(m * power for m in (1, 2, 5, 10) if m * power >= span)


def _number(value: float) -> str:
    return f"{value:,.0f}" if float(value).is_integer() else f"{value:,.2f}".rstrip("0")


@register.inclusion_tag("components/bar_chart.html")
def bar_chart(
    rows,
    *,
    id: str,  # noqa: A002 - the element's id, as in the markup
    title: str,
    label: str,
    value: str,
    axis: str,
    unit: str = "",
    target: str = "",
    scale_max: float | None = None,
    label_heading: str = "",
    value_heading: str = "",
):
    """`rows` are dicts; `label` and `value` (and `target`, a per-row mark) name their keys."""
    values = [float(row[value] or 0) for row in rows]
    targets = [float(row[target] or 0) for row in rows] if target else []
    largest = max(values + targets + [0.0])
    if scale_max:
        top = float(scale_max)
        step = nice_step(top / 5)
    else:
        step = nice_step(largest / 5) if largest else 1.0
        top = step * max(1, math.ceil(largest / step))
    ticks = []
    n = 0
    while n * step <= top + 1e-9:
        ticks.append({"x": LABEL_W + PLOT_W * n * step / top, "text": _number(n * step)})
        n += 1
    bars = []
    for i, row in enumerate(rows):
        amount = values[i]
        mark = targets[i] if target else None
        bars.append(
            {
                "label": row[label],
                "value": row[value],
                "text": f"{_number(amount)}{unit_suffix(unit)}",
                "y": TOP + i * ROW_H,
                "text_y": TOP + i * ROW_H + BAR_H - 5,
                "width": PLOT_W * amount / top,
                "end": LABEL_W + PLOT_W * amount / top,
                "target": row[target] if target else None,
                "target_x": LABEL_W + PLOT_W * mark / top if mark else None,
                "met": bool(mark) and amount >= mark,
            }
        )
    plot_h = max(1, len(rows)) * ROW_H
    axis_y = TOP + plot_h
    shared_target = {b["target"] for b in bars} if target else set()
    return {
        "id": id,
        "title": title,
        "axis": axis,
        "unit": unit,
        "bars": bars,
        "ticks": ticks,
        "has_target": bool(target) and any(b["target_x"] for b in bars),
        "one_target": next(iter(shared_target)) if len(shared_target) == 1 else None,
        "label_heading": label_heading or label.replace("_", " ").capitalize(),
        "value_heading": value_heading or axis,
        "width": WIDTH,
        "height": axis_y + AXIS_H + LEGEND_H,
        "label_w": LABEL_W,
        "plot_end": LABEL_W + PLOT_W,
        "top_y": TOP - 4,
        "axis_y": axis_y,
        "tick_text_y": axis_y + 16,
        "axis_title_y": axis_y + 36,
        "axis_mid": LABEL_W + PLOT_W / 2,
        "legend_y": axis_y + AXIS_H + 4,
        "legend_text_y": axis_y + AXIS_H + 16,
        "bar_h": BAR_H,
    }


def unit_suffix(unit: str) -> str:
    """ "%" sticks to its number; other units ("h", "GiB") follow a space."""
    if not unit:
        return ""
    return unit if unit == "%" else f" {unit}"
