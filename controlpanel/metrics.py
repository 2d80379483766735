"""GET /metrics: Prometheus' text format, for a bearer token (METRICS_TOKEN) or an
allowed network (METRICS_ALLOWED_NETWORKS); docs/operations.md lists the metrics.

What the processes counted (ingest, license fetches, GraphQL) comes from
prometheus-client's registry, summed over gunicorn's workers in multiprocess mode
(controlpanel.metrics_files). What the database knows is read at scrape time by
`DatabaseCollector`, with a few cheap queries, on `web` only: the outbox, the open flags,
and the Celery job runs the workers write as rows (controlpanel.job_runs).
"""

from __future__ import annotations

import hmac
import ipaddress
import os
from collections.abc import Iterator
from functools import cache

from django.conf import settings
from django.db.models import Count, Min
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.utils import timezone
from django.views.decorators.http import require_GET
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    generate_latest,
    multiprocess,
)
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    Metric,
    SummaryMetricFamily,
)

from controlpanel import metrics_files
from controlpanel.models import JobRun
from metering.compliance.models import FlagLevel, Notification, NotificationStatus, OverageFlag


class DatabaseCollector:
    """Read at each scrape: four queries on small sets (pending outbox rows, open flags
    by level, one row per job name)."""

    def collect(self) -> Iterator[Metric]:
        now = timezone.now()
        pending = Notification.objects.filter(status=NotificationStatus.PENDING).aggregate(
            count=Count("id"), oldest=Min("created_at")
        )
        yield GaugeMetricFamily(
            "controlpanel_outbox_pending",
            "Notifications (emails, webhooks) waiting in the outbox.",
            value=pending["count"],
        )
        oldest = pending["oldest"]
        yield GaugeMetricFamily(
            "controlpanel_outbox_oldest_pending_age_seconds",
            "Age of the oldest pending notification (0 when none is pending).",
            value=max((now - oldest).total_seconds(), 0.0) if oldest else 0.0,
        )
        failed = Notification.objects.filter(status=NotificationStatus.FAILED).count()
        yield GaugeMetricFamily(
            "controlpanel_outbox_failed",
            "Notifications the sender gave up on (NOTIFY_MAX_ATTEMPTS).",
            value=failed,
        )

        open_flags = GaugeMetricFamily(
            "controlpanel_flags_open",
            "Overage and reporting-gap flags not resolved, by level.",
            labels=["level"],
        )
        counts = dict(
            OverageFlag.objects.filter(resolved_at__isnull=True)
            .order_by()
            .values_list("level")
            .annotate(n=Count("id"))
            .values_list("level", "n")
        )
        for level in FlagLevel:
            open_flags.add_metric([level.value], counts.get(level.value, 0))
        yield open_flags

        yield from _job_metrics(list(JobRun.objects.all()))


def _job_metrics(rows: list[JobRun]) -> Iterator[Metric]:
    runs = CounterMetricFamily(
        "controlpanel_job_runs",
        "Celery task runs by task and outcome (success or failure).",
        labels=["task", "outcome"],
    )
    seconds = SummaryMetricFamily(
        "controlpanel_job_duration_seconds", "Time spent in Celery task runs.", labels=["task"]
    )
    last_success = GaugeMetricFamily(
        "controlpanel_job_last_success_timestamp_seconds",
        "When each task last finished without an error (Unix time).",
        labels=["task"],
    )
    for row in rows:
        runs.add_metric([row.name, "success"], row.runs - row.failures)
        runs.add_metric([row.name, "failure"], row.failures)
        seconds.add_metric([row.name], count_value=row.runs, sum_value=row.seconds_total)
        if row.last_succeeded_at is not None:
            last_success.add_metric([row.name], row.last_succeeded_at.timestamp())
    yield from (runs, seconds, last_success)


DATABASE = CollectorRegistry()
DATABASE.register(DatabaseCollector())


def _process_metrics() -> bytes:
    folder = os.environ.get(metrics_files.VARIABLE)
    if folder is None:
        return generate_latest(REGISTRY)
    # A registry per scrape, as prometheus-client's multiprocess mode asks.
    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry)
    with metrics_files.reading(folder):
        return generate_latest(registry)


@cache
def _networks(
    cidrs: tuple[str, ...],
) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
    return tuple(ipaddress.ip_network(cidr, strict=False) for cidr in cidrs)


def _allowed(request: HttpRequest) -> bool | None:
    """True for the token or an allowed address; None when neither is configured."""
    token: str = settings.METRICS_TOKEN
    networks = _networks(tuple(settings.METRICS_ALLOWED_NETWORKS))
    if not token and not networks:
        return None
    if token:
        scheme, _, sent = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() == "bearer" and hmac.compare_digest(
            sent.strip().encode(), token.encode()
        ):
            return True
    if networks:
        # The connection's own address, never X-Forwarded-For: the proxy in front does
        # not pass /metrics on (deploy/nginx.conf), Prometheus scrapes each service.
        try:
            address = ipaddress.ip_address(request.META.get("REMOTE_ADDR", ""))
        except ValueError:
            return False
        return any(address in network for network in networks)
    return False


@require_GET
def metrics(request: HttpRequest, *, database: bool = True) -> HttpResponse:
    allowed = _allowed(request)
    if allowed is None:
        return JsonResponse(
            {
                "message": "Metrics are off: set METRICS_TOKEN or METRICS_ALLOWED_NETWORKS.",
                "code": "not_found",
            },
            status=404,
        )
    if not allowed:
        return JsonResponse(
            {
                "message": "Send METRICS_TOKEN as `Authorization: Bearer <token>`, or scrape "
                "from a network in METRICS_ALLOWED_NETWORKS.",
                "code": "forbidden",
            },
            status=403,
        )
    body = _process_metrics()
    if database:
        body += generate_latest(DATABASE)
    return HttpResponse(body, content_type=CONTENT_TYPE_LATEST)
