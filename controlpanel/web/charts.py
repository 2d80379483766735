"""Charts drawn on the server as SVG: no chart library to ship, nothing to run in the
browser, and the same picture with JavaScript off. Each chart has a title and a text
description for screen readers; the page shows the figures as a table too."""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass

from django.utils.html import escape
from django.utils.safestring import SafeString, mark_safe

WIDTH, HEIGHT = 760, 240
LEFT, RIGHT, TOP, BOTTOM = 64, 12, 14, 30


@dataclass(frozen=True)
class Line:
    value: float
    label: str
    css: str


def nice_ceiling(value: float) -> float:
    """A round axis maximum at or above `value` whose quarters are round too (1, 2, 4, 6
    or 8 times a power of ten)."""
    if value <= 0:
        return 1
    power = 10 ** math.floor(math.log10(value))
    for step in (1, 2, 4, 6, 8, 10):
        if value <= step * power:
            return step * power
    return 10 * power


def short_number(value: float) -> str:
    for size, suffix in ((1e9, "B"), (1e6, "M"), (1e3, "k")):
        if abs(value) >= size:
            text = f"{value / size:.1f}".rstrip("0").rstrip(".")
            return f"{text}{suffix}"
    return f"{value:,.0f}"


def _axis(top: float, plot_h: float, x0: float, x1: float) -> list[str]:
    parts = []
    for i in range(5):
        value = top * i / 4
        y = TOP + plot_h - plot_h * i / 4
        parts.append(f'<line class="grid" x1="{x0}" x2="{x1}" y1="{y:.1f}" y2="{y:.1f}"/>')
        parts.append(
            f'<text class="tick" x="{x0 - 6}" y="{y + 4:.1f}" text-anchor="end">'
            f"{short_number(value)}</text>"
        )
    return parts


def _frame(chart_id: str, title: str, description: str, body: list[str]) -> SafeString:
    return mark_safe(
        f'<svg class="chart" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" '
        f'aria-labelledby="{chart_id}-title {chart_id}-desc" preserveAspectRatio="xMidYMid meet">'
        f'<title id="{chart_id}-title">{escape(title)}</title>'
        f'<desc id="{chart_id}-desc">{escape(description)}</desc>' + "".join(body) + "</svg>"
    )


def daily_bars(
    *, chart_id: str, days: list[tuple[dt.date, int]], lines: list[Line], title: str
) -> SafeString:
    """One bar per day, with horizontal reference lines (e.g. the quota's even pace)."""
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    peak = max([v for _, v in days] + [ln.value for ln in lines] + [1])
    top = nice_ceiling(peak)
    body = _axis(top, plot_h, LEFT, WIDTH - RIGHT)
    step = plot_w / max(1, len(days))
    width = max(1.0, step * 0.8)
    for i, (day, value) in enumerate(days):
        h = plot_h * value / top
        x = LEFT + i * step + (step - width) / 2
        body.append(
            f'<rect class="bar" x="{x:.1f}" y="{TOP + plot_h - h:.1f}" width="{width:.1f}" '
            f'height="{h:.1f}"><title>{day:%b %-d}: {value:,} calls</title></rect>'
        )
        if (day.day == 1 or i == 0) and i < len(days) - 6:
            body.append(f'<text class="tick" x="{x:.1f}" y="{HEIGHT - 10}">{day:%b %-d}</text>')
    for line in lines:
        y = TOP + plot_h - plot_h * line.value / top
        body.append(
            f'<line class="{line.css}" x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{y:.1f}" y2="{y:.1f}"/>'
        )
        body.append(
            f'<text class="label {line.css}-label" x="{LEFT + 6}" y="{y - 5:.1f}">'
            f"{escape(line.label)}</text>"
        )
    total = sum(v for _, v in days)
    description = (
        f"Daily API calls from {days[0][0]:%B %-d} to {days[-1][0]:%B %-d}: "
        f"{total:,} in all, at most {max(v for _, v in days):,} in a day."
        if days
        else "No days."
    )
    return _frame(chart_id, title, description, body)


def cumulative(
    *,
    chart_id: str,
    start: dt.date,
    end: dt.date,
    running: list[tuple[dt.date, int]],
    projected: int | None,
    quota: int | None,
    title: str,
) -> SafeString:
    """The period's running total so far, a dashed projection to the period's end, and
    the quota as a line: where they meet is the crossing date."""
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    span = max(1, (end - start).days)
    last = running[-1][1] if running else 0
    top = nice_ceiling(max(last, projected or 0, quota or 0, 1))
    body = _axis(top, plot_h, LEFT, WIDTH - RIGHT)

    def point(day: dt.date, value: float) -> str:
        x = LEFT + plot_w * ((day - start).days + 1) / span
        return f"{x:.1f},{TOP + plot_h - plot_h * value / top:.1f}"

    if running:
        points = [f"{LEFT},{TOP + plot_h}"] + [point(d, v) for d, v in running]
        body.append(f'<polyline class="used" points="{" ".join(points)}"/>')
        if projected is not None:
            body.append(
                f'<polyline class="projected" points="{point(*running[-1])} '
                f'{point(end - dt.timedelta(days=1), projected)}"/>'
            )
    if quota is not None:
        y = TOP + plot_h - plot_h * quota / top
        body.append(
            f'<line class="quota" x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{y:.1f}" y2="{y:.1f}"/>'
        )
        body.append(
            f'<text class="label quota-label" x="{LEFT + 6}" y="{y - 5:.1f}">quota {quota:,}</text>'
        )
    body.append(f'<text class="tick" x="{LEFT}" y="{HEIGHT - 10}">{start:%b %-d}</text>')
    body.append(
        f'<text class="tick" x="{WIDTH - RIGHT}" y="{HEIGHT - 10}" text-anchor="end">'
        f"{end - dt.timedelta(days=1):%b %-d}</text>"
    )
    description = (
        f"API calls this period so far: {last:,}"
        + (f"; projected {projected:,} by the period's end" if projected is not None else "")
        + (f"; quota {quota:,}." if quota is not None else ".")
    )
    return _frame(chart_id, title, description, body)
