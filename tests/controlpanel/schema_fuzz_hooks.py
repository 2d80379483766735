"""schemathesis hooks of the schema fuzzing test (loaded by SCHEMATHESIS_HOOKS).

The ingest operations have constraints JSON Schema cannot express, documented in their
descriptions (metering/openapi.py): a reading's time lies in a window relative to its
receipt, a usage read covers at most MAX_BUCKETS buckets with `from` before `to`, and the
calls counted in an hour stay below 2^63 (BIGINT). A case schemathesis means to be valid is
moved inside those documented limits, so
`positive_data_acceptance` holds the server to every other input the schema allows; invalid
cases are sent as generated.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import schemathesis
from schemathesis import GenerationMode

# Well inside the window (5 minutes ahead, RETENTION_DAYS=400 back) at any time of the run.
EARLIEST = dt.timedelta(days=399)
LATEST = dt.timedelta(minutes=1)
MAX_RANGE = {"hour": dt.timedelta(days=31), "day": dt.timedelta(days=399)}
# A thousand readings of this many calls still total below 2^63.
MAX_CALLS = 2**53


def _parse(value: Any) -> dt.datetime | None:
    if not isinstance(value, str):
        return None
    try:
        parsed = dt.datetime.fromisoformat(value)
        return parsed.astimezone(dt.UTC) if parsed.tzinfo else None
    except (ValueError, OverflowError):
        return None


def _iso(at: dt.datetime) -> str:
    return at.isoformat().replace("+00:00", "Z")


def _inside(at: dt.datetime, now: dt.datetime) -> dt.datetime:
    return at if now - EARLIEST <= at <= now - LATEST else now - dt.timedelta(hours=1)


def _reading(reading: Any, now: dt.datetime) -> None:
    if isinstance(reading, dict):
        if type(reading.get("api_calls")) is int:
            reading["api_calls"] = min(reading["api_calls"], MAX_CALLS)
        at = _parse(reading.get("observed_at"))
        if at is not None:
            reading["observed_at"] = _iso(_inside(at, now))


def _logs(body: Any, now: dt.datetime) -> None:
    logs = body.get("logs") if isinstance(body, dict) else None
    for log in logs if isinstance(logs, list) else []:
        created = log.get("createdOn") if isinstance(log, dict) else None
        if type(created) is int:
            at = dt.datetime.fromtimestamp(min(created, 2**40) / 1000, tz=dt.UTC)
            log["createdOn"] = int(_inside(at, now).timestamp() * 1000)


def _range(query: dict[str, Any], now: dt.datetime) -> None:
    to = _parse(query.get("to"))
    start = _parse(query.get("from"))
    end = to or now
    if end.year < 2:  # no day before it to start from
        query["to"] = _iso(end := now)
    longest = MAX_RANGE.get(query.get("granularity", "hour"), MAX_RANGE["hour"])
    if start is not None and not (end - longest < start < end):
        query["from"] = _iso(end - dt.timedelta(days=1))


@schemathesis.hook
def map_case(context: Any, case: Any) -> Any:
    if case.meta is None or case.meta.generation.mode != GenerationMode.POSITIVE:
        return case
    now = dt.datetime.now(dt.UTC)
    path, method = case.operation.path, case.operation.method.upper()
    if path == "/api/v1/usage" and method == "POST":
        _reading(case.body, now)
    elif path == "/api/v1/usage/batch" and isinstance(case.body, dict):
        readings = case.body.get("readings")
        for reading in readings if isinstance(readings, list) else []:
            _reading(reading, now)
    elif path == "/telemetry":
        _logs(case.body, now)
    elif path == "/api/v1/usage" and method == "GET" and case.query:
        _range(case.query, now)
    return case
