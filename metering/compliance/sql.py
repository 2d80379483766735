"""A cursor for the few statements that carry whole columns as array parameters."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
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


def id_clauses(column: str, ids: Sequence[int]) -> Iterator[tuple[str, list]]:
    """(WHERE clause, its parameters) selecting rows whose `column` is in `ids`: on
    PostgreSQL one clause with one array parameter (for `array_cursor`), on SQLite one
    per 2,000 ids (it allows 32,766 placeholders a statement)."""
    if connection.vendor == "postgresql":
        yield f"{column} = ANY(%b)", [list(ids)]
        return
    for i in range(0, len(ids), 2000):
        chunk = list(ids[i : i + 2000])
        yield f"{column} IN ({', '.join(['%s'] * len(chunk))})", chunk


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
