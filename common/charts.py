"""Charts as inline SVG, drawn on the server: no script, no CDN, readable without colour (values
are written on the bars) and by screen readers (each chart has a title and its table beside it)."""

from __future__ import annotations

from django.utils.html import escape
from django.utils.safestring import SafeString, mark_safe


def bar_chart(
    rows: list[tuple[str, float]],
    *,
    title: str,
    target: float | None = None,
    unit: str = "",
    width: int = 720,
    bar_height: int = 18,
    chart_id: str = "",
) -> SafeString:
    """Horizontal bars, one per row, with an optional target line (e.g. 270 cameras)."""
    label_w, gap, pad = 190, 6, 8
    height = pad * 2 + max(1, len(rows)) * (bar_height + gap) + (16 if target else 0)
    top = max([v for _, v in rows] + [target or 0, 1])
    plot_w = width - label_w - 80
    parts = [
        f'<svg class="chart" id="{escape(chart_id)}" role="img" viewBox="0 0 {width} {height}" '
        f'width="100%" xmlns="http://www.w3.org/2000/svg"><title>{escape(title)}</title>'
    ]
    for i, (label, value) in enumerate(rows):
        y = pad + i * (bar_height + gap)
        w = max(0.0, plot_w * value / top)
        met = target is not None and value >= target
        parts.append(
            f'<text x="{label_w - 6}" y="{y + bar_height - 5}" text-anchor="end" '
            f'font-size="12">{escape(label)}</text>'
            f'<rect x="{label_w}" y="{y}" width="{w:.1f}" height="{bar_height}" '
            f'class="{"bar met" if met else "bar"}"><title>{escape(label)}: {value:g}{escape(unit)}'
            f"</title></rect>"
            f'<text x="{label_w + w + 4:.1f}" y="{y + bar_height - 5}" font-size="12">'
            f"{value:g}{escape(unit)}</text>"
        )
    if target:
        x = label_w + plot_w * target / top
        parts.append(
            f'<line x1="{x:.1f}" x2="{x:.1f}" y1="{pad - 2}" y2="{height - 14}" class="target"/>'
            f'<text x="{x:.1f}" y="{height - 2}" text-anchor="middle" font-size="11">'
            f"target {target:g}</text>"
        )
    if not rows:
        parts.append(f'<text x="{pad}" y="{pad + 12}" font-size="12">No data yet</text>')
    parts.append("</svg>")
    return mark_safe("".join(parts))  # noqa: S308 - every label and value above is escaped
