"""A cursor for the few statements that carry whole columns as array parameters."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from functools import cache

from django.db import connection


@contextmanager
def array_cursor() -> Iterator:
    """On PostgreSQL, a Django cursor (query logging and counting, execute wrappers) over a
    server-side-binding psycopg cursor: array parameters travel as parameters rather than
    being quoted into the SQL text. With tens of thousands of flags per array, quoting the
    literals and parsing them back took most of a mass raise's time (bench/overage). Array
    placeholders are written `%b` (psycopg's binary format: no text escaping at all)."""
    if connection.vendor != "postgresql":
        with connection.cursor() as cursor:
            yield cursor
        return
    connection.ensure_connection()
    raw = _unprepared_cursor_class()(connection.connection)
    # _prepare_cursor wraps it exactly as connection.cursor() wraps its own cursors.
    with connection._prepare_cursor(raw) as cursor:
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
