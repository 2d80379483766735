"""Structured logs (LOG_FORMAT=json): every record as one JSON line, and one line per
request from `RequestLogMiddleware` (jobs: controlpanel.job_runs).

What a line may hold is what the telemetry promise allows: routes, statuses, durations
and the organization and environment a URL names. Never an IP address, a user name, an
email address, a query string or a body.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import logging.config
from collections.abc import Callable
from time import perf_counter
from typing import Any

from django.http import HttpRequest, HttpResponse

requests_log = logging.getLogger("controlpanel.requests")

# URL keywords that name an organization or an environment (slugs and ids, never people).
ORGANIZATION_KWARGS = ("org", "org_id")
ENVIRONMENT_KWARGS = ("env_id",)


def configure(config: dict[str, Any]) -> None:
    """LOGGING_CONFIG: Django's dictConfig, and under LOG_FORMAT=json Python's warnings
    as log records too, so that every line the process writes is JSON."""
    logging.config.dictConfig(config)
    if config.get("handlers", {}).get("console", {}).get("formatter") == "json":
        logging.captureWarnings(True)


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, and a record's `fields`
    (passed as `extra={"fields": {...}}`) at the top level."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "time": dt.datetime.fromtimestamp(record.created, tz=dt.UTC).isoformat(
                timespec="milliseconds"
            ),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        fields = getattr(record, "fields", None)
        if isinstance(fields, dict):
            line.update(fields)
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return json.dumps(line, default=str, separators=(",", ":"))


def request_fields(request: HttpRequest, response: HttpResponse, seconds: float) -> dict:
    match = request.resolver_match
    kwargs = match.kwargs if match else {}
    fields: dict[str, Any] = {
        "method": request.method,
        # The route's pattern and name, not the path: a path may carry tokens.
        "route": match.route if match else None,
        "view": match.view_name if match else None,
        "status": response.status_code,
        "duration_ms": round(seconds * 1000, 2),
    }
    for name in ORGANIZATION_KWARGS:
        if name in kwargs:
            fields["org"] = kwargs[name]
    for name in ENVIRONMENT_KWARGS:
        if name in kwargs:
            fields["environment"] = kwargs[name]
    return fields


class RequestLogMiddleware:
    """One line per request, logged after the answer is made (settings add it when
    LOG_FORMAT=json, outermost, so the duration covers every other middleware)."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        started = perf_counter()
        response = self.get_response(request)
        fields = request_fields(request, response, perf_counter() - started)
        requests_log.info("%s %s", request.method, fields["route"], extra={"fields": fields})
        return response
