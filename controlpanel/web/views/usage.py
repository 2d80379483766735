"""The usage explorer: counted usage per environment and hour or day, per instance, down
to the raw readings of one hour; each view also as CSV."""

from __future__ import annotations

import csv
import datetime as dt

from django.http import HttpRequest, HttpResponse
from django.urls import reverse

from accounts.models import Membership
from controlpanel.web.access import org_page
from controlpanel.web.forms import UsageFilterForm
from controlpanel.web.views.common import page
from metering import explorer


def _csv(filename: str, header: list[str], rows: list[list[object]]) -> HttpResponse:
    response = HttpResponse(content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    writer = csv.writer(response)
    writer.writerow(header)
    writer.writerows(rows)
    return response


def _iso(at: dt.datetime | None) -> str:
    return "" if at is None else at.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")


@org_page()
def usage(request: HttpRequest, membership: Membership) -> HttpResponse:
    organization = membership.organization
    environments = list(explorer.environments_of(organization=organization))
    form = UsageFilterForm(request.GET or None)
    rows: list[explorer.UsageRow] = []
    instances: list[explorer.InstanceRow] = []
    error = ""
    start = end = None
    granularity = "day"
    chosen = environments
    if form.is_bound and not form.is_valid():
        error = "Check the filters below."
    else:
        if not form.is_bound:
            form = UsageFilterForm({})
            form.is_valid()
        start, end, granularity = form.range()
        env_id = form.cleaned_data.get("environment")
        if env_id:
            chosen = [e for e in environments if e.pk == env_id]
            if not chosen:
                form.add_error("environment", "No such environment in this organization.")
        try:
            if chosen:
                rows = explorer.usage_rows(
                    organization=organization,
                    environments=chosen,
                    start=start,
                    end=end,
                    granularity=granularity,
                )
                instances = explorer.usage_by_instance(
                    organization=organization, environments=chosen, start=start, end=end
                )
        except explorer.RangeError as exc:
            error = str(exc)
    if request.GET.get("format") == "csv" and not error and start is not None and end is not None:
        what = request.GET.get("view", "buckets")
        stamp = f"{organization.slug}-{start:%Y%m%d}-{end - dt.timedelta(days=1):%Y%m%d}"
        if what == "instances":
            return _csv(
                f"{stamp}-instances.csv",
                [
                    "project",
                    "environment",
                    "kind",
                    "instance",
                    "boots",
                    "readings",
                    "counted_api_calls",
                    "first_hour",
                    "last_hour",
                ],
                [
                    [
                        r.environment.project.slug,
                        r.environment.name,
                        r.environment.kind,
                        r.instance,
                        r.boots,
                        r.readings,
                        r.counted,
                        _iso(r.first),
                        _iso(r.last),
                    ]
                    for r in instances
                ],
            )
        return _csv(
            f"{stamp}-{granularity}.csv",
            [
                granularity,
                "project",
                "environment",
                "kind",
                "api_calls",
                "seats_peak",
                "tenants_peak",
            ],
            [
                [
                    _iso(r.bucket),
                    r.environment.project.slug,
                    r.environment.name,
                    r.environment.kind,
                    r.api_calls,
                    "" if r.seats is None else r.seats,
                    "" if r.tenants is None else r.tenants,
                ]
                for r in rows
            ],
        )
    query = request.GET.copy()
    query.pop("format", None)
    return page(
        request,
        "web/usage.html",
        {
            "membership": membership,
            "form": form,
            "environments": environments,
            "rows": rows,
            "instances": instances,
            "error": error,
            "granularity": granularity,
            "start": start,
            "end_day": end - dt.timedelta(days=1) if end else None,
            "total": sum(r.api_calls for r in rows),
            "query": query.urlencode(),
        },
        section="usage",
        breadcrumbs=[("Usage", None)],
        status=400 if error else 200,
    )


@org_page()
def usage_hour(request: HttpRequest, membership: Membership) -> HttpResponse:
    """The raw readings of one environment and hour: what each one counted."""
    organization = membership.organization
    try:
        env_id = int(request.GET.get("environment", ""))
        hour = dt.datetime.fromisoformat(request.GET.get("hour", "").replace("Z", "+00:00"))
        if hour.tzinfo is None:
            raise ValueError
    except ValueError:
        return page(
            request,
            "customer/message.html",
            {
                "title": "Which hour?",
                "text": "Open an hour from the usage explorer (environment and hour are needed).",
            },
            section="usage",
            status=400,
        )
    hour = hour.astimezone(dt.UTC).replace(minute=0, second=0, microsecond=0)
    environment, readings = explorer.readings_of_hour(
        organization=organization, environment_id=env_id, hour=hour
    )
    if environment is None:
        from django.http import Http404

        raise Http404("No such environment.")
    if request.GET.get("format") == "csv":
        return _csv(
            f"{organization.slug}-{environment.project.slug}-{environment.name}-{hour:%Y%m%dT%H}-readings.csv",
            [
                "id",
                "source",
                "instance",
                "boot",
                "observed_at",
                "received_at",
                "attributed_hour",
                "api_calls",
                "counted_api_calls",
                "seats",
                "tenants",
                "duplicate",
                "reset",
                "late",
            ],
            [
                [
                    r.pk,
                    r.source,
                    r.instance,
                    r.boot,
                    _iso(r.observed_at),
                    _iso(r.received_at),
                    _iso(r.attributed_hour),
                    r.api_calls,
                    r.counted_api_calls,
                    r.seats,
                    r.tenants,
                    r.duplicate,
                    r.reset,
                    r.late,
                ]
                for r in readings
            ],
        )
    back = (
        reverse("web:usage", args=[organization.slug])
        + f"?environment={environment.pk}&granularity=hour&start={hour:%Y-%m-%d}&end={hour:%Y-%m-%d}"
    )
    return page(
        request,
        "web/usage_hour.html",
        {
            "membership": membership,
            "environment": environment,
            "hour": hour,
            "readings": readings,
            "counted": sum(r.counted_api_calls for r in readings),
            "back": back,
            "query": request.GET.urlencode(),
            "limit": explorer.MAX_READINGS,
        },
        section="usage",
        breadcrumbs=[("Usage", back), (f"{environment.name}, {hour:%b %-d %H:00} UTC", None)],
    )
