"""HTTP entry points of ingest: the native usage API and the CMS client's (WCP) protocol.

Plain function views on purpose (healthchecks' ping view is the model): the hot path
checks the key's shape before any I/O, then makes one database round trip, one short
transaction (`metering.ingest.record`); the key's last use is written after the commit.
No DRF machinery, no session, no CSRF (API keys, not cookies, authenticate these
requests).
"""

from __future__ import annotations

import datetime as dt
from time import perf_counter
from typing import Any

from django.conf import settings
from django.db import DatabaseError, DataError
from django.http import HttpRequest, HttpResponse
from django.utils import timezone
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_http_methods, require_POST

from accounts.models import SEATS, TENANTS
from accounts.selectors.api_keys import api_key_check
from accounts.wcp import WcpRefusal, wcp_authenticate, wcp_key_from_request
from metering import metrics, selectors, services
from metering.ingest import http
from metering.ingest.record import Recorded, Refused, record, shape_refusal
from metering.models import ReadingSource
from metering.readings import FUTURE_SKEW, Invalid, parse_timestamp


def _get_usage(request: HttpRequest) -> HttpResponse:
    try:
        return _usage_summary(request)
    except DatabaseError:
        return http.unavailable()


def _usage_summary(request: HttpRequest) -> HttpResponse:
    check = api_key_check(http.bearer(request))
    if check.problem is not None:
        return http.refusal(Refused(check.problem))
    assert check.api_key is not None
    now = timezone.now()
    try:
        granularity = request.GET.get("granularity", "hour")
        if granularity not in ("hour", "day"):
            raise Invalid(
                "granularity must be hour or day.", "bad_granularity", field="granularity"
            )
        # Present means given: `?to=` is a bad timestamp, not "now".
        to = parse_timestamp(request.GET["to"], field="to") if "to" in request.GET else now
        start = (
            parse_timestamp(request.GET["from"], field="from")
            if "from" in request.GET
            else to - dt.timedelta(days=1)
        )
        summary = selectors.usage_summary(
            environment=check.api_key.environment, start=start, end=to, granularity=granularity
        )
    except Invalid as invalid:
        return http.respond(invalid.status, invalid.body())
    return http.respond(200, summary)


# Each view names its methods: any other answers 405 with `Allow` (JSON: controlpanel.edges).
@csrf_exempt
@require_http_methods(["GET", "POST"])
def usage(request: HttpRequest) -> HttpResponse:
    """POST one reading; GET the environment's usage."""
    if request.method == "POST":
        return http.post_usage(request, single=True)
    return _get_usage(request)


@csrf_exempt
@require_POST
def usage_batch(request: HttpRequest) -> HttpResponse:
    """POST up to 1,000 readings, validated whole."""
    return http.post_usage(request, single=False)


# --- the CMS client's protocol (WCP) ---------------------------------------------------------
def _wcp_message(status: int, message: str, **extra: Any) -> HttpResponse:
    return http.respond(status, {"message": message, **extra})


def _wcp_refusal(refusal: WcpRefusal) -> HttpResponse:
    return _wcp_message(refusal.status, refusal.message)


def _gauge_view(request: HttpRequest, org_id: str, project_id: str, metric: str) -> HttpResponse:
    key = wcp_key_from_request(request)
    throttled = http.throttled(key, wcp=True)
    if throttled is not None:
        return throttled
    caller = wcp_authenticate(key, org_slug=org_id, project_slug=project_id)
    if isinstance(caller, WcpRefusal):
        return _wcp_refusal(caller)
    try:
        raw = http.body_json(request, json_only=False)
    except Invalid as invalid:
        return _wcp_message(invalid.status, invalid.message)
    operation = raw.get("operation") if isinstance(raw, dict) else None
    if operation not in ("increment", "decrement"):
        return _wcp_message(
            400, 'The body must be {"operation": "increment"} or {"operation": "decrement"}.'
        )
    try:
        change = services.gauge_step(
            environment=caller.environment,
            metric=metric,
            increment=operation == "increment",
            now=timezone.now(),
        )
    except DatabaseError:
        return http.unavailable(wcp=True)
    noun = "seat" if metric == SEATS else "tenant"
    if change.no_contract:
        return _wcp_message(403, f"Cannot add a {noun}: this organization has no active contract.")
    if not change.ok:
        return _wcp_message(
            403,
            f"Cannot add a {noun}: the limit is {change.cap} {noun}s per environment and "
            f"{change.value} are in use in {caller.environment.name}. Free a {noun} or "
            "ask for a higher limit.",
        )
    return _wcp_message(200, "ok", operation=operation, count=change.value, limit=change.cap)


@csrf_exempt
@require_POST
def package_seats(request: HttpRequest, org_id: str, project_id: str) -> HttpResponse:
    return _gauge_view(request, org_id, project_id, SEATS)


@csrf_exempt
@require_POST
def package_tenants(request: HttpRequest, org_id: str, project_id: str) -> HttpResponse:
    return _gauge_view(request, org_id, project_id, TENANTS)


def _log_times(logs: Any, now: dt.datetime) -> list[dt.datetime]:
    if not isinstance(logs, list):
        raise Invalid("logs must be a list.", "wrong_type", field="logs")
    times = []
    for i, log in enumerate(logs):
        created = log.get("createdOn") if isinstance(log, dict) else None
        if type(created) is not int or created < 0:
            raise Invalid(f"logs[{i}].createdOn must be epoch milliseconds.", "wrong_type", index=i)
        # Compared as numbers first: 2^64 ms is no datetime at all.
        if created > (now + FUTURE_SKEW).timestamp() * 1000:
            raise Invalid(
                f"logs[{i}].createdOn is in the future; check the clock.",
                "timestamp_in_future",
                index=i,
            )
        at = dt.datetime.fromtimestamp(created / 1000, tz=dt.UTC)
        if at < now - dt.timedelta(days=settings.RETENTION_DAYS):
            raise Invalid(
                f"logs[{i}].createdOn is older than the retention window.",
                "timestamp_too_old",
                index=i,
            )
        times.append(at)
    return times


@csrf_exempt
@require_POST
def telemetry(request: HttpRequest) -> HttpResponse:
    """WCP telemetry: each log is one API call at its `createdOn`. Nothing else from the
    batch (errors, durations, function names, version) is stored."""
    started = perf_counter()
    return metrics.answered("telemetry", _telemetry(request), started)


def _telemetry(request: HttpRequest) -> HttpResponse:
    now = timezone.now()
    try:
        raw = http.body_json(request, json_only=False)
        if not isinstance(raw, dict):
            raise Invalid('The body must be {"apiKey", "version", "logs": [...]}.', "wrong_type")
        key = raw.get("apiKey")
        if key is not None and not isinstance(key, str):
            raise Invalid("apiKey must be a string.", "wrong_type", field="apiKey")
        # Absent, null or "": the key of the `authorization` header, as the CMS may send it.
        key = key or wcp_key_from_request(request)
        refused = shape_refusal(key)
        if refused is not None:
            return _wcp_message(refused.status, refused.message)
        throttled = http.throttled(key, wcp=True)
        if throttled is not None:
            return throttled
        times = _log_times(raw.get("logs"), now)
    except Invalid as invalid:
        return _wcp_message(invalid.status, invalid.message)
    if not times:
        refused = http.key_refusal(key, now=now)
        if refused is not None:
            return _wcp_message(refused.status, refused.message)
        return _wcp_message(200, "ok", counted=0)
    readings = services.telemetry_readings(
        logs_created_on=times, batch_digest=services.telemetry_digest(raw["logs"])
    )
    try:
        result = record(plaintext=key, readings=readings, now=now, source=ReadingSource.TELEMETRY)
    except DataError:  # a total past BIGINT: retrying cannot help (as the native API says)
        return _wcp_message(400, http.OUT_OF_RANGE)
    except DatabaseError:
        return http.unavailable(wcp=True)
    if not isinstance(result, Recorded):
        return _wcp_message(result.status, result.message)
    metrics.accepted("telemetry", len(times))
    counted = sum(o.counted for o in result.outcomes)
    return _wcp_message(200, "ok", counted=counted, duplicate=counted == 0)
