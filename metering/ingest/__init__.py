"""The ingest hot path: authenticate a key and record readings, in as few round trips as
the database allows.

On PostgreSQL a single reading is ONE statement (CTEs): it authenticates the key (prefix
and SHA-256 digest compared in SQL, revocation, expiry and the environment's status
checked), upserts the series returning what it counted, inserts the reading, upserts the
hourly and daily rollups and the gauges, and returns the key's `last_used_at`, which a
second statement moves when it is over a minute old (about once a minute per key). Only
when it returns no row does a second query name the refusal. A batch is a constant
number of statements (arrays through `unnest`), whatever its size.

The SQL lives in `metering.ingest.postgres`. Elsewhere (SQLite, the embedded mode)
`metering.services.readings_record` does the same work through the ORM; both share the
counting rules of `metering.counting`.

Race safety, in one place: the series upsert (`ON CONFLICT ... DO UPDATE`, unique key
`usage_series_unique`) sets `previous_highest = highest` from the locked row, so what a
push counted is exact however many pushes race; rollups and gauges are upserts on their
unique keys. Rows are locked in one order everywhere: series (by instance, boot,
generation), rollups (by metric, hour), gauges (by metric), then the API key (a single
reading's key in a statement of its own, after the reading's commit).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass

import psycopg
from django.conf import settings
from django.db import OperationalError, connection

from accounts.selectors.api_keys import API_KEY_SHAPE, KeyCheck, KeyProblem, api_key_check
from accounts.services.api_keys import api_key_touch
from metering import services
from metering.counting import Outcome, Reading
from metering.ingest import postgres
from metering.models import ReadingSource


@dataclass(frozen=True)
class Recorded:
    outcomes: list[Outcome]


@dataclass(frozen=True)
class Refused:
    problem: KeyProblem
    message: str

    @property
    def status(self) -> int:
        return 403 if self.problem is KeyProblem.ENVIRONMENT_DISABLED else 401


def key_shape_problem(plaintext: str | None) -> Refused | None:
    """Refusals that need no I/O: no key, or not a key's shape."""
    if not plaintext:
        return _refused(KeyCheck(None, KeyProblem.MISSING))
    if API_KEY_SHAPE.match(plaintext) is None:
        return _refused(KeyCheck(None, KeyProblem.MALFORMED))
    return None


def _refused(check: KeyCheck) -> Refused:
    assert check.problem is not None
    return Refused(check.problem, check.message)


def key_refusal(plaintext: str, *, now: dt.datetime | None = None) -> Refused | None:
    """The diagnostic query: why a key is refused, or None when it is fine."""
    check = api_key_check(plaintext, at=now)
    return None if check.ok else _refused(check)


RETRIES = 3
_RETRYABLE = (psycopg.errors.DeadlockDetected, psycopg.errors.SerializationFailure)


def _connection_lost() -> bool:
    raw = connection.connection
    return not connection.in_atomic_block and (raw is None or raw.closed)


def fast_path_enabled() -> bool:
    return connection.vendor == "postgresql" and settings.INGEST_SQL_FAST_PATH


def record(
    *,
    plaintext: str,
    readings: Sequence[Reading],
    now: dt.datetime,
    single: bool = False,
    source: str = ReadingSource.NATIVE,
) -> Recorded | Refused:
    """Authenticate `plaintext` and record `readings` (already validated) for its
    environment. Nothing is written when the key is refused."""
    for attempt in range(RETRIES):
        try:
            return _record(plaintext, readings, now, single, source)
        except OperationalError as exc:
            if attempt + 1 == RETRIES:
                raise
            if isinstance(exc.__cause__, _RETRYABLE):
                # Rows are locked in one order, so a deadlock needs an unusual mix of
                # writers (new rows inserted while others are locked); the work was rolled
                # back whole, so trying again is safe.
                continue
            if _connection_lost():
                # The hot path skips Django's per-request health check (a round trip):
                # a persistent connection the server dropped is replaced here instead.
                # Even if the lost statement had committed, replaying a cumulative
                # reading counts nothing twice.
                connection.close()
                continue
            raise
    raise AssertionError("unreachable")


def _record(
    plaintext: str, readings: Sequence[Reading], now: dt.datetime, single: bool, source: str
) -> Recorded | Refused:
    if fast_path_enabled():
        if single and len(readings) == 1 and source == ReadingSource.NATIVE:
            outcome = postgres.record_one(plaintext, readings[0], now)
            outcomes = None if outcome is None else [outcome]
        else:
            outcomes = postgres.record_batch(plaintext, readings, now, source)
        if outcomes is None:
            # The statement found no usable key: a second query says why.
            return key_refusal(plaintext, now=now) or Refused(
                KeyProblem.UNKNOWN, "The API key is not valid."
            )
        return Recorded(outcomes)
    check = api_key_check(plaintext, at=now)
    if not check.ok:
        return _refused(check)
    assert check.api_key is not None
    result = services.readings_record(
        environment=check.api_key.environment, readings=readings, now=now, source=source
    )
    api_key_touch(api_key=check.api_key, at=now)
    return Recorded(result)
