"""The dashboard: the contract and usage against it, refreshed in place every minute."""

from __future__ import annotations

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django_htmx.middleware import HtmxDetails

from accounts.models import Membership
from controlpanel.web import charts
from controlpanel.web.access import org_page
from controlpanel.web.views.common import page
from controlpanel.web.words import flag_words
from metering.compliance.models import OverageFlag
from metering.overview import Overview, organization_overview


def _charts(overview: Overview) -> dict[str, object]:
    if overview.period is None or not overview.daily:
        return {}
    period = overview.period
    lines = []
    quota = overview.quota
    period_days = max(1, (period.end - period.start).days)
    if quota is not None:
        pace = quota / period_days
        lines.append(charts.Line(pace, f"quota pace {pace:,.0f}/day", "pace"))
    daily = charts.daily_bars(
        chart_id="daily-calls",
        days=overview.daily,
        lines=lines,
        title="API calls per day, last 90 days",
    )
    running, total = [], 0
    for day, value in overview.daily:
        if period.start.date() <= day <= overview.at.date():
            total += value
            running.append((day, total))
    forecast = overview.forecast
    period_chart = charts.cumulative(
        chart_id="period-calls",
        start=period.start.date(),
        end=period.end.date(),
        running=running,
        projected=forecast.projected_total if forecast else None,
        quota=quota,
        title="API calls this period: so far, projected, and the quota",
    )
    return {
        "daily_chart": daily,
        "period_chart": period_chart,
        "pace_per_day": lines[0].value if lines else None,
    }


LEVEL_ORDER = {"warning": 1, "exceeded": 2, "over_cap": 3}


def _worst(flags: list[OverageFlag]) -> list[OverageFlag]:
    """One flag per metric and scope: the highest level open (a metric at 100 % has its
    80 % warning open too; saying both reads as two problems)."""
    best: dict[tuple[str, str], OverageFlag] = {}
    for flag in flags:
        key = (flag.metric, flag.scope)
        held = best.get(key)
        if held is None or LEVEL_ORDER.get(flag.level, 0) > LEVEL_ORDER.get(held.level, 0):
            best[key] = flag
    return [f for f in flags if best.get((f.metric, f.scope)) is f]


def _context(membership: Membership) -> dict[str, object]:
    overview = organization_overview(organization=membership.organization)
    flags = [(flag, flag_words(flag, overview.contract)) for flag in _worst(overview.flags)]
    return {
        "membership": membership,
        "overview": overview,
        "flags": flags,
        "refresh_seconds": settings.DASHBOARD_REFRESH_SECONDS,
        "recent_days": list(reversed(overview.daily[-14:])),
        **_charts(overview),
    }


class HtmxHttpRequest(HttpRequest):
    """A request through django_htmx's middleware (django-htmx's type hint for it)."""

    htmx: HtmxDetails


@org_page()
def dashboard(request: HtmxHttpRequest, membership: Membership) -> HttpResponse:
    context = _context(membership)
    if request.htmx:
        # The minute's refresh: only the figures, swapped in place.
        return render(request, "web/dashboard_panel.html", context)
    return page(request, "web/dashboard.html", context, section="dashboard")
