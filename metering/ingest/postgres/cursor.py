"""How the hot statements are run: prepared once per connection with generic plans, so a
request pays neither for parsing nor for planning; parameters and results in binary."""

from __future__ import annotations

import datetime as dt
import re
import weakref
from collections.abc import Iterable, Sequence
from typing import Any

import psycopg
from django.db import DEFAULT_DB_ALIAS, connections
from django.db.backends.base.base import BaseDatabaseWrapper
from django.db.backends.utils import CursorWrapper
from psycopg.types.array import ListBinaryDumper


class _PreparedCursor(psycopg.RawCursor):
    """Server-side binding, prepared once per connection: the hot statements are planned
    once instead of on every request (Django turns automatic preparation off). Results
    come in binary: loading binary timestamps costs less than parsing ISO text. A raw
    cursor: the statements come with PostgreSQL's own placeholders (`Statement`)."""

    def __init__(self, connection: psycopg.Connection, **kwargs: Any) -> None:
        super().__init__(connection, **kwargs)
        # The statements' arrays go in binary too: psycopg dumps a list element by
        # element in Python, ~1.3 us per element as text, ~0.25 us in binary. This
        # cursor only.
        self.adapters.register_dumper(list, ListBinaryDumper)

    def execute(self, query, params=None, *, prepare=None, binary=None):
        return super().execute(query, params, prepare=True, binary=True)


_CURSORS: weakref.WeakKeyDictionary[psycopg.Connection, _PreparedCursor] = (
    weakref.WeakKeyDictionary()
)


def django_cursor(conn: BaseDatabaseWrapper, raw: psycopg.Cursor[Any]) -> CursorWrapper:
    """`raw` wrapped as `conn.cursor()` wraps its own cursors: errors map to django.db
    errors, execute wrappers run, and queries are logged when the connection logs them."""
    conn.validate_thread_sharing()
    # django-stubs types the argument as a CursorWrapper; Django takes the DB-API cursor.
    wrap = conn.make_debug_cursor if conn.queries_logged else conn.make_cursor
    return wrap(raw)  # type: ignore[arg-type]


def hot_cursor() -> CursorWrapper:
    """This thread's connection's prepared cursor, wrapped by Django (so errors map to
    django.db errors and tests can count queries). Kept open: it is reused."""
    conn = connections[DEFAULT_DB_ALIAS]
    conn.ensure_connection()
    raw_connection = conn.connection
    raw = _CURSORS.get(raw_connection)
    if raw is None or raw.closed:
        # Plan the prepared hot statements once: a custom plan per execution costs more
        # than running them. Only our prepared statements are affected (Django binds
        # parameters client-side, so its queries are never prepared).
        raw_connection.execute("SET plan_cache_mode = force_generic_plan")
        # Django sets the threshold to None (never prepare) for the sake of poolers in
        # transaction mode; its own cursors bind client-side and never prepare anyway.
        raw_connection.prepare_threshold = 0
        raw = _CURSORS[raw_connection] = _PreparedCursor(raw_connection)
    return django_cursor(conn, raw)


# Array parameters. psycopg dumps a list element by element in Python (~0.8 us per label
# or integer in binary, ~57 us for a list of NULLs, which it cannot type); a PostgreSQL
# array literal built with str.join and cast in SQL costs ~0.01-0.4 us per element. Binary
# lists stay the cheaper way for timestamps (formatting them as text costs more).
def labels_array(values: Sequence[str]) -> str:
    """An array literal of labels (`metering.readings.LABEL_SHAPE`: no quote, backslash,
    comma or space can occur, but a quote would end the element, so it is refused)."""
    literal = '{"' + '","'.join(values) + '"}'
    if literal.count('"') != 2 * len(values) or "\\" in literal:
        raise ValueError("a label holds a quote or a backslash")
    return literal


def ints_array(values: Iterable[int | None]) -> str:
    return "{" + ",".join(["NULL" if v is None else str(int(v)) for v in values]) + "}"


def times_array(values: Sequence[dt.datetime | None]) -> list[dt.datetime | None] | str:
    if any(v is not None for v in values):
        return list(values)  # binary (ListBinaryDumper)
    return "{" + ",".join(["NULL"] * len(values)) + "}"


def _compact(sql: str) -> str:
    """One line, single spaces: fewer bytes to send and to hash for the prepared-statement
    lookup on every execution. SQL comments (`--` to the end of the line) go first."""
    sql = re.sub(r"--[^\n]*", "", sql)
    sql = re.sub(r"\s+", " ", sql).strip()
    return re.sub(r" ?(<=|>=|=|<|>|\+|-|,|\(|\)) ?", r"\1", sql)


_NAMED = re.compile(r"%\((\w+)\)s")


class Statement:
    """A hot statement, written with named placeholders (`%(name)s`, as Django's cursors
    take them, so SQL fragments of other modules embed as they are) and sent with
    PostgreSQL's own (`$1`, `$2`, ...) through a raw cursor: psycopg passes it on as it
    is. A regular cursor would parse the placeholders out of the text on every execution
    (cached only for statements under 4 KiB)."""

    __slots__ = ("names", "sql")

    def __init__(self, sql: str) -> None:
        names: list[str] = []

        def number(match: re.Match[str]) -> str:
            if match.group(1) not in names:
                names.append(match.group(1))
            return f"${names.index(match.group(1)) + 1}"

        self.sql = _NAMED.sub(number, _compact(sql))
        self.names = tuple(names)

    def run(self, params: dict[str, Any]) -> list[tuple[Any, ...]]:
        """Execute on this thread's prepared cursor; all the rows."""
        cursor = hot_cursor()
        cursor.execute(self.sql, [params[name] for name in self.names])
        return cursor.fetchall()
