"""Parsing and validation of native usage readings: pure, no database.

Everything a client can get wrong is named precisely (`code`, `field`, `index`) so an
integrator can fix it from the response alone. Unknown fields are refused rather than
ignored: we promise to store counts only, so nothing unexpected may slip into storage.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from typing import Any

from metering.counting import Reading

MAX_BATCH = 1000
MAX_COUNT = 2**63 - 1  # BIGINT
FUTURE_SKEW = dt.timedelta(minutes=5)
# The instants a timestamp may name: usage happens after 1970, and the buckets around any
# instant (a day either side) stay within what datetime can hold.
EARLIEST = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
LATEST = dt.datetime(9999, 1, 1, tzinfo=dt.UTC)
LABEL_MAX = 128
# Instance and boot labels: container ids, host names, uuids, function names. No spaces,
# no quotes, nothing that reads like personal data in an address or a sentence.
LABEL_SHAPE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:@/+=-]{0,127}$")
FIELDS = frozenset({"instance", "boot", "observed_at", "api_calls", "seats", "tenants"})


@dataclass(frozen=True)
class Invalid(Exception):
    """A request the client can fix. Rendered as `{"message", "code", "index"?, "field"?}`."""

    message: str
    code: str
    status: int = 400
    field: str | None = None
    index: int | None = None

    def body(self) -> dict[str, Any]:
        out: dict[str, Any] = {"message": self.message, "code": self.code}
        if self.index is not None:
            out["index"] = self.index
        if self.field is not None:
            out["field"] = self.field
        return out


def _where(index: int | None) -> str:
    return "" if index is None else f"reading {index}: "


def _count(raw: dict[str, Any], field: str, index: int | None, *, required: bool) -> int | None:
    if field not in raw or raw[field] is None:
        if required:
            raise Invalid(
                f"{_where(index)}{field} is required.", "required", field=field, index=index
            )
        return None
    value = raw[field]
    # bool is a subclass of int in Python: refuse `true` as a count explicitly.
    if type(value) is not int:
        kind = {bool: "a boolean", float: "a number with a fraction", str: "a string"}.get(
            type(value), type(value).__name__
        )
        raise Invalid(
            f"{_where(index)}{field} must be a whole number, not {kind}.",
            "wrong_type",
            field=field,
            index=index,
        )
    if value < 0:
        raise Invalid(
            f"{_where(index)}{field} must not be negative.", "negative", field=field, index=index
        )
    if value > MAX_COUNT:
        raise Invalid(
            f"{_where(index)}{field} must be below 2^63.", "too_large", field=field, index=index
        )
    return value


def _label(raw: dict[str, Any], field: str, index: int | None, *, required: bool) -> str:
    if field not in raw or raw[field] is None:
        if required:
            raise Invalid(
                f"{_where(index)}{field} is required.", "required", field=field, index=index
            )
        return ""
    value = raw[field]
    if not isinstance(value, str):
        raise Invalid(
            f"{_where(index)}{field} must be a string.", "wrong_type", field=field, index=index
        )
    if not value:
        raise Invalid(
            f"{_where(index)}{field} must not be empty.", "empty", field=field, index=index
        )
    if len(value) > LABEL_MAX:
        raise Invalid(
            f"{_where(index)}{field} must be at most {LABEL_MAX} characters.",
            "too_long",
            field=field,
            index=index,
        )
    if not LABEL_SHAPE.match(value):
        raise Invalid(
            f"{_where(index)}{field} may hold only letters, digits and . _ : @ / + = - "
            "and must start with a letter or digit.",
            "bad_characters",
            field=field,
            index=index,
        )
    return value


def parse_timestamp(value: Any, *, field: str, index: int | None = None) -> dt.datetime:
    if not isinstance(value, str):
        raise Invalid(
            f"{_where(index)}{field} must be an ISO 8601 string.",
            "wrong_type",
            field=field,
            index=index,
        )
    try:
        parsed = dt.datetime.fromisoformat(value)
    except ValueError:
        raise Invalid(
            f"{_where(index)}{field} is not an ISO 8601 timestamp (e.g. 2026-11-22T10:05:00Z).",
            "bad_timestamp",
            field=field,
            index=index,
        ) from None
    if parsed.tzinfo is None or parsed.utcoffset() is None:
        raise Invalid(
            f"{_where(index)}{field} must carry a time zone (e.g. a trailing Z).",
            "timestamp_without_zone",
            field=field,
            index=index,
        )
    try:
        at = parsed.astimezone(dt.UTC)
    except OverflowError:  # e.g. 0001-01-01T00:00:00+01:00: before year 1 in UTC
        at = None
    if at is None or not EARLIEST <= at < LATEST:
        raise Invalid(
            f"{_where(index)}{field} is out of range: send an instant from 1970 to 9998.",
            "timestamp_out_of_range",
            field=field,
            index=index,
        )
    return at


def check_time_window(
    at: dt.datetime, *, now: dt.datetime, retention_days: int, field: str, index: int | None
) -> None:
    if at > now + FUTURE_SKEW:
        raise Invalid(
            f"{_where(index)}{field} is more than 5 minutes in the future; check the clock.",
            "timestamp_in_future",
            field=field,
            index=index,
        )
    if at < now - dt.timedelta(days=retention_days):
        raise Invalid(
            f"{_where(index)}{field} is older than the {retention_days}-day retention window.",
            "timestamp_too_old",
            field=field,
            index=index,
        )


def parse_reading(
    raw: Any, *, now: dt.datetime, retention_days: int, index: int | None = None
) -> Reading:
    if not isinstance(raw, dict):
        raise Invalid(f"{_where(index)}a reading must be a JSON object.", "wrong_type", index=index)
    unknown = sorted(set(raw) - FIELDS)
    if unknown:
        raise Invalid(
            f"{_where(index)}unknown field {unknown[0]!r}; allowed: {', '.join(sorted(FIELDS))}.",
            "unknown_field",
            field=unknown[0],
            index=index,
        )
    instance = _label(raw, "instance", index, required=True)
    boot = _label(raw, "boot", index, required=False)
    api_calls = _count(raw, "api_calls", index, required=True)
    seats = _count(raw, "seats", index, required=False)
    tenants = _count(raw, "tenants", index, required=False)
    sent = raw.get("observed_at")
    if sent is None:
        observed_at, observed_sent = now, False
    else:
        observed_at = parse_timestamp(sent, field="observed_at", index=index)
        check_time_window(
            observed_at, now=now, retention_days=retention_days, field="observed_at", index=index
        )
        observed_sent = True
    assert api_calls is not None
    return Reading(
        instance=instance,
        boot=boot,
        observed_at=observed_at,
        api_calls=api_calls,
        seats=seats,
        tenants=tenants,
        observed_sent=observed_sent,
    )


def parse_batch(raw: Any, *, now: dt.datetime, retention_days: int) -> list[Reading]:
    """A batch is validated whole: the first bad reading refuses all of it."""
    if not isinstance(raw, dict):
        raise Invalid('The body must be a JSON object {"readings": [...]}.', "wrong_type")
    unknown = sorted(set(raw) - {"readings"})
    if unknown:
        raise Invalid(
            f'unknown field {unknown[0]!r}; a batch is {{"readings": [...]}}.',
            "unknown_field",
            field=unknown[0],
        )
    readings = raw.get("readings")
    if not isinstance(readings, list):
        raise Invalid("readings must be a list of readings.", "wrong_type", field="readings")
    if not readings:
        raise Invalid("readings must hold at least one reading.", "empty", field="readings")
    if len(readings) > MAX_BATCH:
        raise Invalid(
            f"A batch holds at most {MAX_BATCH} readings; this one has {len(readings)}.",
            "too_many_readings",
            field="readings",
        )
    return [
        parse_reading(r, now=now, retention_days=retention_days, index=i)
        for i, r in enumerate(readings)
    ]
