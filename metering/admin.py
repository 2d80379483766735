"""Usage in the staff admin: series, readings, hourly and daily rollups, gauges, read-only
for everyone (superusers too: they are the evidence disputes are answered with), and the
usage summaries on the organization, environment and API key pages.

The usage lists are built for a year of data (accounts.admin_kit.AtScaleAdmin): no full
count, no facets, a drill-down by date without queries, filters that use the indexes.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.contrib import admin, messages
from django.http import HttpRequest, HttpResponseRedirect
from django.template.loader import render_to_string
from django.utils.html import format_html

from accounts.admin import ApiKeyAdmin, EnvironmentAdmin, OrganizationAdmin
from accounts.admin_kit import (
    EnvironmentIdFilter,
    PageAnnotatedAdmin,
    ReadOnlyAdmin,
    choices_filter,
    number,
    organization_filter,
    raw,
    when,
)
from accounts.models import API_CALLS, ApiKey, Environment, Organization
from metering.charts import daily_calls_svg
from metering.models import (
    USAGE_METRICS,
    UsageClosedThrough,
    UsageDay,
    UsageGauge,
    UsageReading,
    UsageRollup,
    UsageSeries,
)
from metering.summary import EnvironmentUsage, environments_usage, organization_summary

ENVIRONMENT_RELATED = ["environment__project__organization"]
METRIC_FILTER = choices_filter("metric", USAGE_METRICS)
ENVIRONMENT_FILTERS: tuple[type[admin.SimpleListFilter], ...] = (
    organization_filter("environment__project__organization"),
    EnvironmentIdFilter,
)


@admin.register(UsageSeries)
class UsageSeriesAdmin(ReadOnlyAdmin):
    list_display = [
        "environment",
        "instance",
        "boot",
        "generation",
        number("highest"),
        when("first_received_at", "first"),
        when("last_received_at", "last"),
    ]
    list_filter = ENVIRONMENT_FILTERS
    list_select_related = ENVIRONMENT_RELATED
    date_hierarchy = "last_received_at"
    ordering = ["-pk"]


@admin.register(UsageReading)
class UsageReadingAdmin(ReadOnlyAdmin):
    list_display = [
        "pk",
        when("received_at", "received"),
        "environment",
        "instance",
        raw("source"),
        number("api_calls", "calls (cum.)"),
        number("counted_api_calls", "counted"),
        "seats",
        "tenants",
        when("attributed_hour", "hour"),
        "marks",
    ]
    list_filter = ["source", *ENVIRONMENT_FILTERS]
    list_select_related = ENVIRONMENT_RELATED
    date_hierarchy = "attributed_hour"
    # The primary key, not a date: it is the one index every filter can walk backwards.
    ordering = ["-pk"]

    def changelist_view(self, request: HttpRequest, extra_context: dict | None = None) -> Any:
        """A date across every environment's raw readings is millions of rows with no
        index to order them by (each index would cost every reading ingest writes): the
        date needs an organization or environment, whose indexes serve it. Across all
        environments, the hourly and daily rollups answer by date."""
        dated = any(k.startswith("attributed_hour__") for k in request.GET)
        if dated and not (request.GET.get("org") or request.GET.get("env")):
            messages.warning(
                request,
                "Choose an organization or an environment before a date: raw readings of "
                "every environment are listed newest first only. The hourly and daily "
                "rollups list every environment by date.",
            )
            kept = request.GET.copy()
            for key in [k for k in kept if k.startswith("attributed_hour__")]:
                del kept[key]
            return HttpResponseRedirect(f"{request.path}?{kept.urlencode()}")
        return super().changelist_view(request, extra_context)

    @admin.display(description="marks")
    def marks(self, obj: UsageReading) -> str:
        return " ".join(
            m for m, on in (("dup", obj.duplicate), ("reset", obj.reset), ("late", obj.late)) if on
        )


@admin.register(UsageRollup)
class UsageRollupAdmin(ReadOnlyAdmin):
    list_display = [
        "hour",
        "environment",
        "metric",
        "total",
        "late_total",
        "peak",
        "last",
        "readings",
    ]
    list_filter = [METRIC_FILTER, *ENVIRONMENT_FILTERS]
    list_select_related = ENVIRONMENT_RELATED
    date_hierarchy = "hour"
    ordering = ["-hour", "-id"]  # usage_rollup_hour_id: newest first in any date range


@admin.register(UsageDay)
class UsageDayAdmin(ReadOnlyAdmin):
    list_display = ["pk", "day", "environment", "metric", number("total"), number("peak")]
    list_filter = [METRIC_FILTER, *ENVIRONMENT_FILTERS]
    list_select_related = ENVIRONMENT_RELATED
    date_hierarchy = "day"
    ordering = ["-day", "-id"]  # usage_day_day_id: newest first in any date range


@admin.register(UsageGauge)
class UsageGaugeAdmin(ReadOnlyAdmin):
    list_display = ["environment", "metric", number("value"), when("observed_at", "observed")]
    list_filter = [METRIC_FILTER, *ENVIRONMENT_FILTERS]
    list_select_related = ENVIRONMENT_RELATED
    ordering = ["-pk"]


@admin.register(UsageClosedThrough)
class UsageClosedThroughAdmin(ReadOnlyAdmin):
    list_display = ["organization", when("closed_through"), when("updated_at")]
    list_filter = [organization_filter("organization")]
    list_select_related = ["organization"]
    ordering = ["organization__slug"]


# --- the customer pages, with their usage ---------------------------------------------------
admin.site.unregister(Organization)


@admin.register(Organization)
class OrganizationUsageAdmin(OrganizationAdmin):
    readonly_fields = ["created_at", "usage_summary"]

    def get_fieldsets(self, request: HttpRequest, obj: Organization | None = None) -> list[Any]:
        head = (None, {"fields": ["slug", "name", "created_at"]})
        if obj is None:
            return [head]
        return [head, ("This period", {"fields": ["usage_summary"]})]

    @admin.display(description="usage")
    def usage_summary(self, obj: Organization) -> str:
        summary = organization_summary(organization=obj)
        allowance = None
        api_line = next((line for line in summary.lines if line.metric == API_CALLS), None)
        if api_line and api_line.limit and summary.period:
            days = (summary.period.end - summary.period.start).days
            allowance = api_line.limit // max(1, days)
        return render_to_string(
            "admin/metering/organization_summary.html",
            {
                "organization": obj,
                "summary": summary,
                "chart": daily_calls_svg(summary.daily_calls, allowance),
                "allowance": allowance,
            },
        )


class UsageColumns:
    """List and page columns of an environment's usage, read from the `_usage` that
    `annotate_page` set for the page's rows (metering.summary.environments_usage)."""

    def usage_environment(self, obj: Any) -> Environment:
        return obj

    def _usage(self, obj: Any) -> EnvironmentUsage | None:
        return getattr(self.usage_environment(obj), "_usage", None)

    @admin.display(description="last report")
    def last_report(self, obj: Any) -> Any:
        u = self._usage(obj)
        last = u.reporting.last_report if u else None
        return f"{last.astimezone(dt.UTC):%Y-%m-%d %H:%M}" if last else "-"

    @admin.display(description="reporting")
    def reporting(self, obj: Any) -> str:
        u = self._usage(obj)
        if u is None:
            return "-"
        colour = {"gap": "#ba2121", "reporting": "#447e36"}.get(u.reporting.status, "#666")
        return format_html('<span style="color:{}">{}</span>', colour, u.reporting.label)

    @admin.display(description="calls this period")
    def period_calls(self, obj: Any) -> str:
        u = self._usage(obj)
        return "-" if u is None or u.period_calls is None else f"{u.period_calls:,}"


admin.site.unregister(Environment)


@admin.register(Environment)
class EnvironmentUsageAdmin(UsageColumns, PageAnnotatedAdmin, EnvironmentAdmin):
    list_display = ["name", "project", "kind", "status", "last_report", "reporting", "period_calls"]
    readonly_fields = ["created_at", "last_report", "reporting", "period_calls", "gauges"]

    def annotate_page(self, objects: list[Environment]) -> None:
        usage = environments_usage(environments=objects)
        for environment in objects:
            # On the row, not the admin: one admin instance serves every thread's requests.
            setattr(environment, "_usage", usage.get(environment.pk))  # noqa: B010

    def get_object(self, request: HttpRequest, object_id: str, from_field: str | None = None):
        environment = super().get_object(request, object_id, from_field)
        if environment is not None:
            self.annotate_page([environment])
        return environment

    @admin.display(description="seats / tenants now")
    def gauges(self, obj: Environment) -> str:
        u = getattr(obj, "_usage", None)
        if u is None:
            return "-"
        return f"{u.seats if u.seats is not None else '-'} / {u.tenants if u.tenants is not None else '-'}"


admin.site.unregister(ApiKey)


@admin.register(ApiKey)
class ApiKeyUsageAdmin(UsageColumns, PageAnnotatedAdmin, ApiKeyAdmin):
    """A key's own last use; its environment's reporting and usage (readings record the
    environment, not the key, so usage is the environment's)."""

    list_display = [
        "display",
        "name",
        "environment",
        when("last_used_at", "last used"),
        "state",
        "reporting",
        "period_calls",
    ]

    def usage_environment(self, obj: ApiKey) -> Environment:
        return obj.environment

    def annotate_page(self, objects: list[ApiKey]) -> None:
        environments = {k.environment_id: k.environment for k in objects}
        usage = environments_usage(environments=list(environments.values()))
        for environment in environments.values():
            # On the row, not the admin: one admin instance serves every thread's requests.
            setattr(environment, "_usage", usage.get(environment.pk))  # noqa: B010

    @admin.display(description="state")
    def state(self, obj: ApiKey) -> str:
        if obj.revoked_at is not None:
            return f"revoked {obj.revoked_at:%Y-%m-%d}"
        if obj.expires_at is not None:
            return f"expires {obj.expires_at:%Y-%m-%d %H:%M}"
        return "active"
