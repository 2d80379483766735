"""Server-side SVG charts: no script, no CDN, readable with the network off."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString

WIDTH, HEIGHT, LEFT, BOTTOM, TOP = 720, 180, 56, 20, 10


def _short(n: float) -> str:
    for size, suffix in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if n >= size:
            return f"{n / size:.1f}{suffix}".replace(".0", "")
    return str(int(n))


def daily_calls_svg(days: Sequence[tuple[dt.date, int]], allowance: int | None) -> SafeString:
    """Bars of API calls per day; a dashed line at the daily allowance (the period's
    quota spread over its days), when there is a quota."""
    peak = max([calls for _, calls in days] + [allowance or 0, 1])
    plot_w, plot_h = WIDTH - LEFT - 4, HEIGHT - BOTTOM - TOP
    step = plot_w / max(1, len(days))

    def y(value: float) -> str:
        return f"{TOP + plot_h - plot_h * value / peak:.1f}"

    def f1(value: float) -> str:
        return f"{value:.1f}"

    bars = format_html_join(
        "",
        '<rect x="{}" y="{}" width="{}" height="{}" fill="#417690">'
        "<title>{}: {} calls</title></rect>",
        (
            (
                f1(LEFT + i * step),
                y(calls),
                f1(max(1.0, step - 1)),
                f1(plot_h * calls / peak),
                day.isoformat(),
                f"{calls:,}",
            )
            for i, (day, calls) in enumerate(days)
        ),
    )
    ticks = format_html_join(
        "",
        '<text x="{}" y="{}" font-size="10" text-anchor="end" fill="#666">{}</text>'
        '<line x1="{}" x2="{}" y1="{}" y2="{}" stroke="#eee"/>',
        (
            (LEFT - 4, f1(float(y(v)) + 3), _short(v), LEFT, WIDTH - 4, y(v), y(v))
            for v in (0, peak / 2, peak)
        ),
    )
    labels = format_html_join(
        "",
        '<text x="{}" y="{}" font-size="10" fill="#666">{}</text>',
        (
            (f1(LEFT + i * step), HEIGHT - 5, day.strftime("%b %d"))
            for i, (day, _) in enumerate(days)
            if i % 15 == 0
        ),
    )
    line = ""
    if allowance:
        line = format_html(
            '<line x1="{}" x2="{}" y1="{}" y2="{}" stroke="#ba2121" '
            'stroke-dasharray="4 3"><title>daily allowance: {}</title></line>',
            LEFT,
            WIDTH - 4,
            y(allowance),
            y(allowance),
            f"{allowance:,}",
        )
    return format_html(
        '<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {} {}" width="100%" '
        'style="max-width:{}px" role="img" aria-label="API calls per day, last {} days">'
        "{}{}{}{}</svg>",
        WIDTH,
        HEIGHT,
        WIDTH,
        len(days),
        ticks,
        bars,
        line,
        labels,
    )
