"""The raw database bound: the app's SQL recorded in-process, replayed through psycopg."""

from __future__ import annotations

import contextlib
import json
import multiprocessing
import pickle
import sys
import time
from pathlib import Path

from bench.ingest_bench.fleet import build
from bench.ingest_bench.server import _cpu


def record(spec_file: Path, keys_file: Path, out_file: Path, samples: dict[str, int]) -> None:
    """(Subprocess, Django set up on the recording database.) Push each lane's first
    requests in-process and keep, per request, every statement with its parameters and
    whether it ran inside a transaction."""
    import django

    django.setup()
    from django.db import connection

    from tools.fleet.transport import BATCH_PATH, USAGE_PATH, InProcessTransport

    keys = list(json.loads(keys_file.read_text()).values())
    transport = InProcessTransport()
    recorded: dict[str, list[list[list[tuple]]]] = {}
    current: list[tuple] = []

    import psycopg

    def wrapper(execute, sql, params, many, context):
        # Django binds client-side; the ingest hot path sends its statements with
        # PostgreSQL's own placeholders through a raw cursor, bound server-side and
        # prepared. The replay does each statement the same way.
        cursor = getattr(context["cursor"], "cursor", None)
        prepared = not isinstance(cursor, psycopg.ClientCursor)
        raw = isinstance(cursor, psycopg.RawCursor)
        current.append((sql, params, many, connection.in_atomic_block, prepared, raw))
        return execute(sql, params, many, context)

    for phase, spec in json.loads(spec_file.read_text()).items():
        plan = build(spec)
        offset = spec["env_offset"]
        lanes_out: list[list[list[tuple]]] = []
        for lane in plan.lanes:
            requests_out = []
            for request in lane[: samples[phase]]:
                current.clear()
                with connection.execute_wrapper(wrapper):
                    resp = transport.request(
                        "POST",
                        BATCH_PATH if request.batch else USAGE_PATH,
                        keys[offset + request.env],
                        request.payload(),
                    )
                if resp.status != 202:
                    sys.exit(f"recording: {resp.status} {resp.body}")
                requests_out.append((len(request.readings), list(current)))
            lanes_out.append(requests_out)
        recorded[phase] = lanes_out
    with connection.cursor() as cursor:  # session settings the app's statements ran with
        cursor.execute("SHOW plan_cache_mode")
        recorded["_session"] = {"plan_cache_mode": cursor.fetchone()[0]}
    out_file.write_bytes(pickle.dumps(recorded))


def _replay_lane(url: str, requests: list, session: dict, barrier, results) -> None:
    import psycopg

    try:
        with psycopg.connect(url, autocommit=True) as conn:
            for name, value in session.items():
                conn.execute(f"SET {name} = {value}")
            conn.prepare_threshold = 0
            client = psycopg.ClientCursor(conn)
            server = conn.cursor()
            native = psycopg.RawCursor(conn)
            barrier.wait()
            started = time.perf_counter()
            backend_cpu = _cpu(conn.info.backend_pid)
            readings = 0
            for count, statements in requests:
                in_tx = False
                for sql, params, many, atomic, prepared, raw in statements:
                    bound = native if raw else server
                    if atomic and not in_tx:
                        client.execute("BEGIN")
                        in_tx = True
                    elif not atomic and in_tx:
                        client.execute("COMMIT")
                        in_tx = False
                    if many:
                        (bound if prepared else client).executemany(sql, params)
                    elif prepared:
                        bound.execute(sql, params, prepare=True)
                    else:
                        client.execute(sql, params)
                if in_tx:
                    client.execute("COMMIT")
                readings += count
            seconds = time.perf_counter() - started
            results.put((readings, seconds, _cpu(conn.info.backend_pid) - backend_cpu, None))
    except Exception as exc:  # reported by the parent, which must not wait forever
        with contextlib.suppress(Exception):
            barrier.abort()
        results.put((0, 0.0, 0.0, f"{type(exc).__name__}: {exc}"))


def unlink_series(url: str) -> list[str]:
    """Drop the foreign keys to usage series in the replay database: the recorded
    statements carry the series ids the recording got, which concurrent replay assigns
    differently. (What is left out: one primary-key probe per reading.)"""
    import psycopg

    dropped = []
    with psycopg.connect(url, autocommit=True) as conn:
        rows = conn.execute(
            "SELECT conname, conrelid::regclass::text FROM pg_constraint "
            "WHERE contype = 'f' AND confrelid = 'metering_usageseries'::regclass"
        ).fetchall()
        for name, table in rows:
            conn.execute(f'ALTER TABLE {table} DROP CONSTRAINT "{name}"')
            dropped.append(f"{table}.{name}")
    return dropped


def replay(url: str, lanes: list, session: dict) -> tuple[int, float, float]:
    """The recorded statements, one process and connection per client lane, all at once."""
    ctx = multiprocessing.get_context("fork")
    barrier = ctx.Barrier(len(lanes))
    results = ctx.Queue()
    procs = [
        ctx.Process(target=_replay_lane, args=(url, lane, session, barrier, results))
        for lane in lanes
    ]
    for p in procs:
        p.start()
    got = [results.get(timeout=600) for _ in procs]
    for p in procs:
        p.join()
    problems = [e for *_, e in got if e]
    if problems:
        raise RuntimeError("replay failed: " + "; ".join(problems[:3]))
    return sum(g[0] for g in got), max(g[1] for g in got), sum(g[2] for g in got)
