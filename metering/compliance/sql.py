"""A cursor for the few statements that carry whole columns as array parameters, and
those arrays packed in PostgreSQL's binary format."""

from __future__ import annotations

import datetime as dt
import struct
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from functools import cache
from typing import TypeVar

from django.db import connection

from metering.ingest.postgres.cursor import django_cursor


@contextmanager
def array_cursor() -> Iterator:
    """A Django cursor (query logging and counting, execute wrappers) over a
    server-side-binding psycopg cursor: array parameters travel as parameters rather than
    being quoted into the SQL text. With tens of thousands of flags per array, quoting the
    literals and parsing them back took most of a mass raise's time (bench/overage). Array
    placeholders are written `%b` (psycopg's binary format: no text escaping at all)."""
    connection.ensure_connection()
    raw = _unprepared_cursor_class()(connection.connection)
    for packed_type, dumper in _packed_dumpers().items():
        raw.adapters.register_dumper(packed_type, dumper)
    with django_cursor(connection, raw) as cursor:
        yield cursor


@cache
def _unprepared_cursor_class() -> type:
    import psycopg

    class UnpreparedCursor(psycopg.Cursor):
        # Never a named prepared statement (psycopg prepares a query run 5 times on one
        # connection): safe behind a transaction-pooling PgBouncer, like Django's own cursors.
        def execute(self, query, params=None, *, prepare=None, binary=None):
            return super().execute(query, params, prepare=False, binary=binary)

    return UnpreparedCursor


# --- packed arrays ---------------------------------------------------------------------------
# psycopg dumps a list parameter element by element in Python (~0.6 us each); a mass
# evaluation sends over a million elements (bench/overage). These build the same binary
# array (header, then per element its length and bytes) with `struct`, about 4x faster.
# Pass them to `array_cursor` as `%b` parameters.


class Int8Array(bytes):
    """A bigint[] parameter (elements may be None)."""


class TextArray(bytes):
    """A text[] parameter (elements may be None)."""


class TimestamptzArray(bytes):
    """A timestamptz[] parameter (aware datetimes, elements may be None)."""


class BoolArray(bytes):
    """A boolean[] parameter (elements may be None)."""


_INT4 = struct.Struct("!i")
_INT8_ELEMENT = struct.Struct("!iq")
_NULL = _INT4.pack(-1)
_PG_EPOCH = dt.datetime(2000, 1, 1, tzinfo=dt.UTC)
_MICROSECOND = dt.timedelta(microseconds=1)
_OIDS = {Int8Array: (20, 1016), TextArray: (25, 1009), TimestamptzArray: (1184, 1185)}
_OIDS[BoolArray] = (16, 1000)


_Array = TypeVar("_Array", bound=bytes)


def _array(kind: type[_Array], elements: list[bytes]) -> _Array:
    element_oid = _OIDS[kind][0]
    if not elements:
        return kind(struct.pack("!iiI", 0, 0, element_oid))
    has_null = 1 if _NULL in elements else 0
    header = struct.pack("!iiIii", 1, has_null, element_oid, len(elements), 1)
    return kind(header + b"".join(elements))


def int8_array(values: Iterable[int | None]) -> Int8Array:
    pack = _INT8_ELEMENT.pack
    return _array(Int8Array, [_NULL if v is None else pack(8, v) for v in values])


def _elements(values: Iterable, encode) -> list[bytes]:
    """Each value's element (length and bytes; NULL for None), a repeated value encoded
    once: columns of a few distinct metrics, levels, kinds and period bounds."""
    seen: dict = {None: _NULL}
    out = []
    for v in values:
        element = seen.get(v)
        if element is None:
            element = seen[v] = encode(v)
        out.append(element)
    return out


def _text(value: str) -> bytes:
    data = str(value).encode()
    return _INT4.pack(len(data)) + data


def _timestamptz(value: dt.datetime) -> bytes:
    if value.utcoffset() is None:
        raise ValueError(f"naive datetime in a timestamptz array: {value!r}")
    return _INT8_ELEMENT.pack(8, (value - _PG_EPOCH) // _MICROSECOND)


def text_array(values: Iterable[str | None]) -> TextArray:
    return _array(TextArray, _elements(values, _text))


def timestamptz_array(values: Iterable[dt.datetime | None]) -> TimestamptzArray:
    return _array(TimestamptzArray, _elements(values, _timestamptz))


def bool_array(values: Iterable[bool | None]) -> BoolArray:
    true, false = b"\x00\x00\x00\x01\x01", b"\x00\x00\x00\x01\x00"
    return _array(BoolArray, [_NULL if v is None else true if v else false for v in values])


@cache
def _packed_dumpers() -> dict[type, type]:
    from psycopg.adapt import Dumper
    from psycopg.pq import Format

    def dumper(array_oid: int) -> type:
        class PackedDumper(Dumper):
            format = Format.BINARY
            oid = array_oid

            def dump(self, obj: bytes) -> bytes:
                return obj

        return PackedDumper

    return {kind: dumper(array_oid) for kind, (_, array_oid) in _OIDS.items()}


def id_clause(column: str, ids: Sequence[int]) -> tuple[str, list]:
    """(WHERE clause, its parameters) selecting rows whose `column` is in `ids`: one array
    parameter (for `array_cursor`), however many ids."""
    return f"{column} = ANY(%b)", [int8_array(ids)]


def flag_context_joins(flag: str) -> str:
    """Joins from the flag table aliased `flag` to its organization `o` and, when it has
    one, its environment `e` and the environment's project `pr` (see FLAG_LABEL)."""
    from accounts.models import Environment, Organization, Project

    q = connection.ops.quote_name
    return (
        f"JOIN {q(Organization._meta.db_table)} o ON o.id = {flag}.organization_id "
        f"LEFT JOIN {q(Environment._meta.db_table)} e ON e.id = {flag}.environment_id "
        f"LEFT JOIN {q(Project._meta.db_table)} pr ON pr.id = e.project_id"
    )


# How people name an environment: `project/environment` (NULL for organization-wide flags).
FLAG_LABEL = "pr.slug || '/' || e.name"


def utc_isoformat(column: str) -> str:
    """SQL for what Python's isoformat() gives for a datetime column's value in UTC:
    `2026-11-24T08:05:00+00:00`, with `.ffffff` only when there are microseconds."""
    utc = f"({column} AT TIME ZONE 'UTC')"
    return (
        f"replace(CAST(date_trunc('second', {utc}) AS text), ' ', 'T') || "
        f"CASE WHEN date_trunc('second', {column}) = {column} THEN '' "
        f"ELSE to_char({utc}, '.US') END || '+00:00'"
    )
