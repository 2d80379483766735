"""HTTP entry points of ingest: the native usage API and the CMS client's (WCP) protocol.

Plain function views on purpose: the hot path checks the key's shape before any I/O,
then makes one database round trip (`metering.ingest`). No DRF machinery, no session,
no CSRF (API keys, not cookies, authenticate these requests).
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

from django.conf import settings
from django.core.exceptions import RequestDataTooBig
from django.db import DatabaseError, DataError
from django.http import HttpRequest, HttpResponse
from django.http.request import RawPostDataException
from django.utils import timezone
from django.views.decorators.csrf import csrf_exempt

from accounts.models import SEATS, TENANTS
from accounts.selectors import API_KEY_SHAPE, api_key_check
from accounts.wcp import WcpRefusal, wcp_authenticate, wcp_key_from_request
from metering import ingest, selectors, services
from metering.counting import CountOverflow, Outcome
from metering.models import ReadingSource
from metering.readings import (
    FUTURE_SKEW,
    Invalid,
    parse_batch,
    parse_reading,
    parse_timestamp,
)
from metering.throttle import throttle_retry_after

MAX_BODY = 1024 * 1024
# Each count is below 2^63, but an hour's sum of them may not be.
OUT_OF_RANGE = "These counts would take a total beyond 2^63; nothing was recorded."
RETRY_AFTER_SECONDS = 5


def _json(status: int, body: Any, headers: dict[str, str] | None = None) -> HttpResponse:
    response = HttpResponse(
        json.dumps(body, separators=(",", ":")), status=status, content_type="application/json"
    )
    for name, value in (headers or {}).items():
        response[name] = value
    return response


def _error(status: int, message: str, code: str, **extra: Any) -> HttpResponse:
    headers = extra.pop("headers", None)
    return _json(status, {"message": message, "code": code, **extra}, headers)


def _unavailable(wcp: bool = False) -> HttpResponse:
    message = "Usage storage is unavailable; retry shortly."
    body = {"message": message} if wcp else {"message": message, "code": "unavailable"}
    return _json(503, body, {"Retry-After": str(RETRY_AFTER_SECONDS)})


def _bearer(request: HttpRequest) -> str:
    raw = request.META.get("HTTP_AUTHORIZATION", "").strip()
    if not raw:
        return ""
    scheme, _, value = raw.partition(" ")
    # A non-Bearer value is reported as malformed by the shape check.
    return value.strip() if scheme.lower() == "bearer" else raw


def _body(request: HttpRequest, *, json_only: bool) -> Any:
    """The decoded JSON body, or Invalid naming what is wrong with it."""
    length = request.META.get("CONTENT_LENGTH") or "0"
    if length.isdigit() and int(length) > MAX_BODY:
        raise Invalid("The body is larger than 1 MiB; send smaller batches.", "too_large", 413)
    content_type = request.META.get("CONTENT_TYPE", "").split(";")[0].strip().lower()
    if json_only and content_type != "application/json":
        raise Invalid(
            "Send the body as JSON with Content-Type: application/json.",
            "unsupported_media_type",
            415,
        )
    try:
        body = request.body
    except (RequestDataTooBig, RawPostDataException):
        raise Invalid(
            "The body is larger than 1 MiB; send smaller batches.", "too_large", 413
        ) from None
    if len(body) > MAX_BODY:
        raise Invalid("The body is larger than 1 MiB; send smaller batches.", "too_large", 413)
    try:
        return json.loads(body)
    except (ValueError, UnicodeDecodeError):
        raise Invalid("The body is not valid JSON.", "invalid_json") from None


def _outcome(o: Outcome) -> dict[str, Any]:
    return {
        "counted": {"api_calls": o.counted},
        "duplicate": o.duplicate,
        "reset": o.reset,
        "late": o.late,
    }


def _throttled(key: str, *, wcp: bool = False) -> HttpResponse | None:
    """Per-key abuse protection (429 + Retry-After); only for keys of a valid shape."""
    match = API_KEY_SHAPE.match(key)
    retry_after = throttle_retry_after(match.group(1)) if match else None
    if retry_after is None:
        return None
    message = f"Too many requests for this API key; retry in {retry_after} s."
    body = {"message": message} if wcp else {"message": message, "code": "throttled"}
    return _json(429, body, {"Retry-After": str(retry_after)})


def _refusal(refused: ingest.Refused) -> HttpResponse:
    return _error(refused.status, refused.message, refused.problem.value)


def _post_usage(request: HttpRequest, *, single: bool) -> HttpResponse:
    key = _bearer(request)
    refused = ingest.key_shape_problem(key)
    if refused is not None:
        return _refusal(refused)
    throttled = _throttled(key)
    if throttled is not None:
        return throttled
    now = timezone.now()
    try:
        raw = _body(request, json_only=True)
        retention = settings.RETENTION_DAYS
        if single:
            readings = [parse_reading(raw, now=now, retention_days=retention)]
        else:
            readings = parse_batch(raw, now=now, retention_days=retention)
    except Invalid as invalid:
        try:
            # A bad key is the first thing to fix: say so rather than judging the body.
            refused = ingest.key_refusal(key, now=now)
        except DatabaseError:
            return _unavailable()
        if refused is not None:
            return _refusal(refused)
        return _json(invalid.status, invalid.body())
    try:
        result = ingest.record(plaintext=key, readings=readings, now=now, single=single)
    except (DataError, CountOverflow):
        return _error(400, OUT_OF_RANGE, "out_of_range")
    except DatabaseError:
        return _unavailable()
    if isinstance(result, ingest.Refused):
        return _refusal(result)
    if single:
        return _json(202, _outcome(result.outcomes[0]))
    return _json(
        202,
        {
            "results": [_outcome(o) for o in result.outcomes],
            "counted": {"api_calls": sum(o.counted for o in result.outcomes)},
        },
    )


def _get_usage(request: HttpRequest) -> HttpResponse:
    key = _bearer(request)
    refused = ingest.key_shape_problem(key)
    if refused is not None:
        return _refusal(refused)
    check = api_key_check(key)
    if not check.ok:
        return _refusal(ingest.Refused(check.problem, check.message))  # type: ignore[arg-type]
    assert check.api_key is not None
    now = timezone.now()
    try:
        granularity = request.GET.get("granularity", "hour")
        if granularity not in ("hour", "day"):
            raise Invalid(
                "granularity must be hour or day.", "bad_granularity", field="granularity"
            )
        to = parse_timestamp(request.GET["to"], field="to") if request.GET.get("to") else now
        start = (
            parse_timestamp(request.GET["from"], field="from")
            if request.GET.get("from")
            else to - dt.timedelta(days=1)
        )
        summary = selectors.usage_summary(
            environment=check.api_key.environment, start=start, end=to, granularity=granularity
        )
    except Invalid as invalid:
        return _json(invalid.status, invalid.body())
    return _json(200, summary)


@csrf_exempt
def usage(request: HttpRequest) -> HttpResponse:
    """POST one reading; GET the environment's usage."""
    if request.method == "POST":
        return _post_usage(request, single=True)
    if request.method == "GET":
        return _get_usage(request)
    return _error(405, "Use POST to send a reading or GET to read usage.", "method_not_allowed")


@csrf_exempt
def usage_batch(request: HttpRequest) -> HttpResponse:
    """POST up to 1,000 readings, validated whole."""
    if request.method != "POST":
        return _error(405, "Use POST.", "method_not_allowed")
    return _post_usage(request, single=False)


# --- the CMS client's protocol (WCP) ---------------------------------------------------------
def _wcp_message(status: int, message: str, **extra: Any) -> HttpResponse:
    return _json(status, {"message": message, **extra})


def _wcp_refusal(refusal: WcpRefusal) -> HttpResponse:
    return _wcp_message(refusal.status, refusal.message)


def _gauge_view(request: HttpRequest, org_id: str, project_id: str, metric: str) -> HttpResponse:
    if request.method != "POST":
        return _wcp_message(405, "Use POST.")
    key = wcp_key_from_request(request)
    throttled = _throttled(key, wcp=True)
    if throttled is not None:
        return throttled
    caller = wcp_authenticate(key, org_slug=org_id, project_slug=project_id)
    if isinstance(caller, WcpRefusal):
        return _wcp_refusal(caller)
    try:
        raw = _body(request, json_only=False)
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
        return _unavailable(wcp=True)
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
def package_seats(request: HttpRequest, org_id: str, project_id: str) -> HttpResponse:
    return _gauge_view(request, org_id, project_id, SEATS)


@csrf_exempt
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
        at = dt.datetime.fromtimestamp(created / 1000, tz=dt.UTC)
        if at > now + FUTURE_SKEW:
            raise Invalid(
                f"logs[{i}].createdOn is in the future; check the clock.",
                "timestamp_in_future",
                index=i,
            )
        if at < now - dt.timedelta(days=settings.RETENTION_DAYS):
            raise Invalid(
                f"logs[{i}].createdOn is older than the retention window.",
                "timestamp_too_old",
                index=i,
            )
        times.append(at)
    return times


@csrf_exempt
def telemetry(request: HttpRequest) -> HttpResponse:
    """WCP telemetry: each log is one API call at its `createdOn`. Nothing else from the
    batch (errors, durations, function names, version) is stored."""
    if request.method != "POST":
        return _wcp_message(405, "Use POST.")
    now = timezone.now()
    try:
        raw = _body(request, json_only=False)
        if not isinstance(raw, dict):
            raise Invalid('The body must be {"apiKey", "version", "logs": [...]}.', "wrong_type")
        key = raw.get("apiKey") or wcp_key_from_request(request)
        if not isinstance(key, str):
            key = ""
        refused = ingest.key_shape_problem(key)
        if refused is not None:
            return _wcp_message(refused.status, refused.message)
        throttled = _throttled(key, wcp=True)
        if throttled is not None:
            return throttled
        times = _log_times(raw.get("logs"), now)
    except Invalid as invalid:
        return _wcp_message(invalid.status, invalid.message)
    if not times:
        refused = ingest.key_refusal(key, now=now)
        if refused is not None:
            return _wcp_message(refused.status, refused.message)
        return _wcp_message(200, "ok", counted=0)
    readings = services.telemetry_readings(
        logs_created_on=times, batch_digest=services.telemetry_digest(raw["logs"])
    )
    try:
        result = ingest.record(
            plaintext=key, readings=readings, now=now, source=ReadingSource.TELEMETRY
        )
    except DatabaseError:
        return _unavailable(wcp=True)
    if isinstance(result, ingest.Refused):
        return _wcp_message(result.status, result.message)
    counted = sum(o.counted for o in result.outcomes)
    return _wcp_message(200, "ok", counted=counted, duplicate=counted == 0)
