"""Recording readings: the orchestration of the hot path.

A request's readings (one, or a batch) are written by ONE statement
(`metering.ingest.postgres.write.WRITE`), which also checks the key, so an accepted
request is one round trip and one transaction; a refused key writes nothing and the same
row says why. Only a request with readings that carry no boot reads the series heads
first (rule 3, `metering.counting.generations`, needs them). The key's last use is
written by accounts (`api_key_touch`) after the commit, about once a minute per key.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass

import psycopg
from django.db import OperationalError, connection, transaction

from accounts.selectors.api_keys import KeyProblem, key_params, key_problem, key_shape_problem
from accounts.services.api_keys import api_key_touch
from accounts.services.last_use import last_use_due
from metering.counting import Outcome, Reading, generations
from metering.ingest.postgres import write
from metering.models import ReadingSource


@dataclass(frozen=True)
class Recorded:
    outcomes: list[Outcome]


@dataclass(frozen=True)
class Refused:
    problem: KeyProblem

    @property
    def status(self) -> int:
        return self.problem.status

    @property
    def message(self) -> str:
        return self.problem.message


def shape_refusal(plaintext: str | None) -> Refused | None:
    """Refusals that need no I/O: no key, or not a key's shape."""
    problem = key_shape_problem(plaintext)
    return None if problem is None else Refused(problem)


RETRIES = 3
_RETRYABLE = (psycopg.errors.DeadlockDetected, psycopg.errors.SerializationFailure)


def _connection_lost() -> bool:
    raw = connection.connection
    return not connection.in_atomic_block and (raw is None or raw.closed)


def record(
    *,
    plaintext: str,
    readings: Sequence[Reading],
    now: dt.datetime,
    source: str = ReadingSource.NATIVE,
) -> Recorded | Refused:
    """Authenticate `plaintext` (of a key's shape: `shape_refusal` first) and record
    `readings` (validated) for its environment. Nothing is written when the key is
    refused."""
    for attempt in range(RETRIES):
        try:
            return _record(plaintext, readings, now, source)
        except OperationalError as exc:
            if attempt + 1 == RETRIES:
                raise
            if isinstance(exc.__cause__, _RETRYABLE):
                # The statement was rolled back whole, so trying again is safe (see the
                # lock order in metering.ingest.postgres.write).
                continue
            if _connection_lost():
                # A persistent connection the server dropped (Django checks connections
                # between requests only when an error was seen). Even if the lost
                # statement had committed, replaying cumulative readings counts nothing
                # twice.
                connection.close()
                continue
            raise
    raise AssertionError("unreachable")


def _record(
    plaintext: str, readings: Sequence[Reading], now: dt.datetime, source: str
) -> Recorded | Refused:
    key = key_params(plaintext, now)
    boot_less = sorted({r.instance for r in readings if not r.boot})
    heads = write.heads(key, boot_less) if boot_less else {}
    row, outcomes = write.write(
        key=key, readings=readings, generations=generations(readings, heads), now=now, source=source
    )
    problem = key_problem(row)
    if problem is not None:
        return Refused(problem)
    assert row is not None
    if last_use_due(row.last_used_at, now):
        key_id = row.key_id
        transaction.on_commit(lambda: api_key_touch(api_key_id=key_id, at=now))
    return Recorded(outcomes)
