"""A cursor for the few statements that carry whole columns as array parameters."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

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
    import psycopg

    connection.ensure_connection()
    raw = psycopg.Cursor(connection.connection)
    # _prepare_cursor wraps it exactly as connection.cursor() wraps its own cursors.
    with connection._prepare_cursor(raw) as cursor:
        yield cursor
