"""Ingest's Prometheus metrics (served at /metrics by controlpanel.metrics).

The hot path pays one histogram observation and one counter increment per request, on
children bound once here (a `labels()` lookup per request would cost more than both);
refusals, rarer, look their child up by reason. bench/README.md has the A/B figure.
"""

from __future__ import annotations

import json
from time import perf_counter

from django.http import HttpResponse
from prometheus_client import Counter, Histogram

ENDPOINTS = ("usage", "usage_batch", "telemetry")

READINGS_ACCEPTED = Counter(
    "controlpanel_ingest_readings_accepted",
    "Readings accepted by ingest (a telemetry log is one reading), by endpoint.",
    ["endpoint"],
)
REQUESTS_REFUSED = Counter(
    "controlpanel_ingest_requests_refused",
    "Ingest requests refused, by endpoint and reason: the answer's `code` (native API) "
    "or its HTTP status (the CMS's telemetry, whose answers carry a message only).",
    ["endpoint", "reason"],
)
REQUEST_SECONDS = Histogram(
    "controlpanel_ingest_request_seconds",
    "Time to answer one ingest request (accepted or refused), by endpoint.",
    ["endpoint"],
    buckets=(0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0),
)

_ACCEPTED = {endpoint: READINGS_ACCEPTED.labels(endpoint) for endpoint in ENDPOINTS}
_SECONDS = {endpoint: REQUEST_SECONDS.labels(endpoint) for endpoint in ENDPOINTS}


def accepted(endpoint: str, readings: int) -> None:
    _ACCEPTED[endpoint].inc(readings)


def _reason(response: HttpResponse) -> str:
    try:
        code = json.loads(response.content).get("code")
    except (ValueError, AttributeError):
        code = None
    return code if isinstance(code, str) else str(response.status_code)


def answered(endpoint: str, response: HttpResponse, started: float) -> HttpResponse:
    """Observe the request's time, and its refusal if it was one (any status >= 400)."""
    _SECONDS[endpoint].observe(perf_counter() - started)
    if response.status_code >= 400:
        REQUESTS_REFUSED.labels(endpoint, _reason(response)).inc()
    return response
