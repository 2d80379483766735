"""Usage-ingest benchmark: the app under gunicorn on PostgreSQL, 8 concurrent clients.

    bench/ingest [--single-readings N] [--batch-readings N] [--workers W] ...

Creates its own databases (`<name>_bench`, `_bench_rec`, `_bench_raw` next to
DATABASE_URL's database), migrates, provisions environments, starts gunicorn, pushes a
simulated fleet (tools.fleet: restarts, duplicates, late readings, heartbeats, gauges)
as single readings then as batches, checks the server's totals are exact, and measures
the raw database bound: the same SQL statements the app ran (recorded in-process on a
copy of the database) replayed through psycopg by as many connections. See
bench/README.md. Exit status: 0 when totals are exact and nothing failed, 1 otherwise
(and 2 with --strict when a target is missed).
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import multiprocessing
import os
import pickle
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

TARGETS = {"single_rps": 1500.0, "single_p99_ms": 50.0, "batch_rps": 25000.0}


# --- configuration ------------------------------------------------------------------------
def parse_args(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument(
        "--database-url",
        default=os.environ.get("BENCH_DATABASE_URL")
        or os.environ.get("DATABASE_URL")
        or "postgres://postgres@127.0.0.1:5432/cp",
    )
    p.add_argument("--port", type=int, default=int(os.environ.get("BENCH_PORT", "8290")))
    p.add_argument("--clients", type=int, default=8)
    p.add_argument(
        "--client",
        choices=("wire", "http.client"),
        default="wire",
        help="wire: pre-serialized requests on raw sockets, epoll loops in --client-processes"
        " processes (bench/wire.py); http.client: one thread per client"
        " (tools.fleet.transport)",
    )
    p.add_argument(
        "--client-processes", type=int, default=1, help="processes the wire clients share"
    )
    p.add_argument("--single-readings", type=int, default=30_000)
    p.add_argument("--batch-readings", type=int, default=300_000)
    p.add_argument("--batch-size", type=int, default=1000)
    p.add_argument("--workers", type=int, default=int(os.environ.get("GUNICORN_WORKERS", "2")))
    p.add_argument("--worker-class", default=os.environ.get("GUNICORN_WORKER_CLASS", "gthread"))
    p.add_argument("--threads", type=int, default=int(os.environ.get("GUNICORN_THREADS", "4")))
    p.add_argument(
        "--record-single",
        type=int,
        default=600,
        help="requests per client recorded for the raw bound",
    )
    p.add_argument(
        "--record-batch", type=int, default=4, help="batches per client recorded for the raw bound"
    )
    p.add_argument("--skip-raw", action="store_true", help="skip the raw database bound")
    p.add_argument("--profile", type=Path, help="cProfile each gunicorn worker into this folder")
    p.add_argument(
        "--gunicorn-config",
        type=Path,
        default=ROOT / "controlpanel" / "gunicorn.conf.py",
        help="gunicorn config file (default: the production one)",
    )
    p.add_argument("--keep", action="store_true", help="keep the bench databases afterwards")
    p.add_argument("--strict", action="store_true", help="exit 2 when a target is missed")
    p.add_argument("--seed", type=int, default=20261124)
    return p.parse_args(argv)


def db_url(base: str, name: str) -> str:
    parts = urlsplit(base)
    return urlunsplit(parts._replace(path=f"/{name}"))


def app_env(database_url: str, **extra: str) -> dict[str, str]:
    env = {
        **os.environ,
        "DATABASE_URL": database_url,
        "DEBUG": "0",
        "SECRET_KEY": os.environ.get(
            "SECRET_KEY", "bench-only-secret-key-0123456789abcdefghijklmnop"
        ),
        "ALLOWED_HOSTS": "127.0.0.1,localhost,testserver",
        "SECURE_SSL_REDIRECT": "0",
        "LOG_LEVEL": "WARNING",
        # Connections live through a phase, so their backends' CPU can be read at its end
        # (production's 60 s reconnects cost nothing measurable).
        "CONN_MAX_AGE": "3600",
        "DJANGO_SETTINGS_MODULE": "controlpanel.settings",
        "PYTHONUNBUFFERED": "1",
    }
    env.update(extra)
    return env


def manage(database_url: str, *args: str) -> str:
    out = subprocess.run(
        [sys.executable, str(ROOT / "manage.py"), *args],
        cwd=ROOT,
        env=app_env(database_url),
        capture_output=True,
        text=True,
    )
    if out.returncode != 0:
        sys.exit(f"manage.py {' '.join(args)} failed:\n{out.stdout}\n{out.stderr}")
    return out.stdout


# --- databases ----------------------------------------------------------------------------
def admin_connection(base: str):
    import psycopg

    return psycopg.connect(db_url(base, "postgres"), autocommit=True)


def recreate(base: str, name: str, template: str | None = None) -> None:
    with admin_connection(base) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"' + (f' TEMPLATE "{template}"' if template else ""))


def settle(base: str) -> None:
    """CHECKPOINT once the set-up is written (migrations, provisioning, the template
    copies): otherwise the measured phase shares the disk with the flush of the set-up's
    dirty pages, and its commits wait on WAL fsyncs for work that is not its own (seen:
    ~13 % of the wall time idle, 1,470-1,500 single readings/s against 1,560-1,580
    without the copies). Needs superuser or pg_checkpoint; skipped with a note if not."""
    import psycopg

    try:
        with admin_connection(base) as conn:
            conn.execute("CHECKPOINT")
    except psycopg.Error as error:
        print(f"  (no CHECKPOINT before the load: {error})", flush=True)


def drop(base: str, *names: str) -> None:
    with admin_connection(base) as conn:
        for name in names:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


# --- the fleet ----------------------------------------------------------------------------
def specs(args: argparse.Namespace, end: dt.datetime) -> dict[str, dict]:
    """Single and batch phases on disjoint environments. Sized so each phase sends about
    the asked number of readings (one per instance per simulated minute, ~5 % duplicates)."""
    single_envs, single_instances = 16, 8
    batch_envs, batch_instances = 8, 50
    per_minute = 1.05
    return {
        "single": {
            "environments": single_envs,
            "instances": single_instances,
            "minutes": max(
                1, round(args.single_readings / (single_envs * single_instances * per_minute))
            ),
            "seed": args.seed,
            "run_id": "single",
            "lanes": args.clients,
            "batch": False,
            "end": end.isoformat(),
            "env_offset": 0,
        },
        "batch": {
            "environments": batch_envs,
            "instances": batch_instances,
            "minutes": max(
                1, round(args.batch_readings / (batch_envs * batch_instances * per_minute))
            ),
            "seed": args.seed + 1,
            "run_id": "batch",
            "lanes": args.clients,
            "batch": True,
            "batch_size": args.batch_size,
            "end": end.isoformat(),
            "env_offset": single_envs,
        },
    }


def build(spec: dict):
    from tools.fleet.plan import FleetSpec, build_plan

    fields = {k: v for k, v in spec.items() if k != "env_offset"}
    fields["end"] = dt.datetime.fromisoformat(spec["end"])
    return build_plan(FleetSpec(**fields))


# --- the server ---------------------------------------------------------------------------
@contextlib.contextmanager
def gunicorn(args: argparse.Namespace, database_url: str):
    env = app_env(
        database_url,
        GUNICORN_BIND=f"127.0.0.1:{args.port}",
        GUNICORN_WORKERS=str(args.workers),
        GUNICORN_WORKER_CLASS=args.worker_class,
        GUNICORN_THREADS=str(args.threads),
        GUNICORN_MAX_REQUESTS="0",
    )
    config = args.gunicorn_config.resolve()
    cmd = [
        sys.executable,
        "-m",
        "gunicorn",
        "controlpanel.wsgi:application",
        "--config",
        str(config),
    ]
    if args.profile:
        args.profile.mkdir(parents=True, exist_ok=True)
        env["BENCH_PROFILE_DIR"] = str(args.profile.resolve())
        cmd[-1] = str(ROOT / "bench" / "gunicorn_profile.py")  # includes the production config
    log = open(Path(tempfile.gettempdir()) / f"bench-gunicorn-{args.port}.log", "w")  # noqa: SIM115
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 60
        import http.client

        while True:
            if proc.poll() is not None:
                sys.exit(f"gunicorn exited ({proc.returncode}); see {log.name}")
            try:
                conn = http.client.HTTPConnection("127.0.0.1", args.port, timeout=2)
                conn.request("GET", "/healthz")
                if conn.getresponse().status == 200:
                    break
            except OSError:
                pass
            if time.monotonic() > deadline:
                sys.exit(f"gunicorn did not answer /healthz within 60 s; see {log.name}")
            time.sleep(0.2)
        yield proc
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()


# --- where the CPU goes -------------------------------------------------------------------
TICK = os.sysconf("SC_CLK_TCK")


def _cpu(pid: int) -> float:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / TICK  # utime + stime


def _children(ppid: int) -> list[int]:
    out = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1]) == ppid:
                    out.append(int(entry.name))
            except (OSError, IndexError, ValueError):
                continue
    return out


def cpu_snapshot(base: str, database: str, master: int) -> dict[str, dict[int, float]]:
    """CPU seconds so far of the gunicorn master and workers, of the PostgreSQL backends
    serving the bench database, and of this process (the clients)."""
    with admin_connection(base) as conn:
        backends = [
            pid
            for (pid,) in conn.execute(
                "SELECT pid FROM pg_stat_activity WHERE datname = %s", [database]
            ).fetchall()
        ]
    return {
        "app": {pid: _cpu(pid) for pid in [master, *_children(master)]},
        "postgres": {pid: _cpu(pid) for pid in backends},
        "clients": {os.getpid(): time.process_time()},
    }


def cpu_delta(before: dict, after: dict) -> dict[str, float]:
    return {
        group: sum(v - before[group].get(pid, 0.0) for pid, v in after[group].items())
        for group in after
    }


# --- recording and replaying the SQL --------------------------------------------------------
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


# --- main -----------------------------------------------------------------------------------
def main(argv: list[str]) -> int:
    if argv[:1] == ["_record"]:
        record(Path(argv[1]), Path(argv[2]), Path(argv[3]), json.loads(argv[4]))
        return 0
    args = parse_args(argv)
    from bench.wire import WireClients, wire_lanes
    from tools.fleet.run import FleetEnvironment, compare, fetch_totals, totals_window
    from tools.fleet.transport import HttpTransport, send_lanes

    base_name = urlsplit(args.database_url).path.lstrip("/") or "cp"
    main_db, rec_db, raw_db = (
        f"{base_name}_bench",
        f"{base_name}_bench_rec",
        f"{base_name}_bench_raw",
    )
    main_url = db_url(args.database_url, main_db)
    work = Path(tempfile.mkdtemp(prefix="bench-ingest-"))
    print(
        f"databases {main_db} (+ _rec, _raw); gunicorn {args.workers} x {args.worker_class}"
        f" ({args.threads} threads) on 127.0.0.1:{args.port}; {args.clients} clients ({args.client})",
        flush=True,
    )

    recreate(args.database_url, main_db)
    manage(main_url, "migrate", "--noinput")
    phases = specs(args, dt.datetime.now(dt.UTC).replace(microsecond=0) - dt.timedelta(seconds=30))
    n_envs = sum(s["environments"] for s in phases.values())
    keys_file = work / "keys.json"
    manage(
        main_url,
        "simulate_fleet",
        "--provision",
        "--environments",
        str(n_envs),
        "--run-id",
        "bench",
        "--keys-file",
        str(keys_file),
    )
    environments = [FleetEnvironment(k, v) for k, v in json.loads(keys_file.read_text()).items()]
    if not args.skip_raw:
        recreate(args.database_url, rec_db, template=main_db)
        recreate(args.database_url, raw_db, template=main_db)
        unlink_series(db_url(args.database_url, raw_db))
    settle(args.database_url)

    print("building plans ...", flush=True)
    plans = {phase: build(spec) for phase, spec in phases.items()}
    failures: list[str] = []
    results: dict[str, dict] = {}
    with gunicorn(args, main_url) as server:
        transport = HttpTransport(f"http://127.0.0.1:{args.port}")
        for phase, plan in plans.items():
            offset = phases[phase]["env_offset"]
            keys = [e.key for e in environments[offset : offset + plan.spec.environments]]
            payloads = [[r.payload() for r in lane] for lane in plan.lanes]
            window = totals_window(plan)
            baselines = [fetch_totals(transport, k, window) for k in keys]
            print(
                f"{phase}: sending {plan.readings_count():,} readings in {plan.requests_count():,} requests ...",
                flush=True,
            )
            if args.client == "wire":  # serialized and forked before the clock starts
                clients = WireClients(
                    "127.0.0.1",
                    args.port,
                    wire_lanes("127.0.0.1", args.port, plan.lanes, keys, payloads),
                    args.client_processes,
                )
            cpu_before = cpu_snapshot(args.database_url, main_db, server.pid)
            if args.client == "wire":
                run = clients.run()
                stats = run.stats
            else:
                stats = send_lanes(transport, plan.lanes, keys, payloads=payloads)
            cpu = cpu_delta(cpu_before, cpu_snapshot(args.database_url, main_db, server.pid))
            if args.client == "wire":
                cpu["clients"] += run.cpu_seconds  # the client processes, first request to last
            final = send_lanes(transport, plan.final, keys)
            checks = [
                compare(
                    environments[offset + i].label,
                    plan.expected[i],
                    baselines[i],
                    fetch_totals(transport, k, window),
                )
                for i, k in enumerate(keys)
            ]
            errors = stats.errors + final.errors
            problems = [f"{c.label}: {p}" for c in checks for p in c.problems]
            failures += errors[:5] + problems
            results[phase] = {
                "readings": stats.readings,
                "requests": stats.requests,
                "seconds": stats.seconds,
                "rps": stats.readings_per_second,
                "p50": stats.percentile(50) * 1000,
                "p95": stats.percentile(95) * 1000,
                "p99": stats.percentile(99) * 1000,
                "errors": len(errors),
                "retries": stats.retries + final.retries,
                "expected": plan.expected_overall(),
                "server": sum(c.server.api_calls for c in checks),
                "exact": not problems,
                "said": stats.counted + final.counted,
                "cpu_us": {g: v / max(1, stats.readings) * 1e6 for g, v in cpu.items()},
            }
            r = results[phase]
            print(
                f"  {r['readings']:,} readings in {r['seconds']:.2f} s = {r['rps']:,.0f} readings/s; "
                f"p50 {r['p50']:.1f} ms p95 {r['p95']:.1f} ms p99 {r['p99']:.1f} ms; "
                f"{r['errors']} errors, {r['retries']} retries; totals "
                f"{'exact' if r['exact'] else 'WRONG'} ({r['server']:,} of {r['expected']:,} expected)",
                flush=True,
            )
            print(
                "  CPU per reading: "
                + ", ".join(f"{g} {v:,.0f} us" for g, v in r["cpu_us"].items())
                + f"; wall per reading on {os.cpu_count()} cores: "
                f"{r['seconds'] / max(1, r['readings']) * 1e6 * (os.cpu_count() or 1):,.0f} us"
                f" (load average now {os.getloadavg()[0]:.1f})",
                flush=True,
            )
        transport.close()

    if not args.skip_raw:
        print("raw bound: recording the app's SQL in-process on a copy ...", flush=True)
        spec_file, rec_file = work / "specs.json", work / "recorded.pickle"
        spec_file.write_text(json.dumps(phases))
        samples = {"single": args.record_single, "batch": args.record_batch}
        out = subprocess.run(
            [
                sys.executable,
                __file__,
                "_record",
                str(spec_file),
                str(keys_file),
                str(rec_file),
                json.dumps(samples),
            ],
            cwd=ROOT,
            env=app_env(db_url(args.database_url, rec_db)),
            capture_output=True,
            text=True,
        )
        if out.returncode != 0:
            sys.exit(f"recording failed:\n{out.stdout}\n{out.stderr}")
        recorded = pickle.loads(rec_file.read_bytes())
        for phase in plans:
            statements = sum(len(s) for lane in recorded[phase] for _, s in lane)
            requests = sum(len(lane) for lane in recorded[phase])
            readings, seconds, pg_cpu = replay(
                db_url(args.database_url, raw_db), recorded[phase], recorded["_session"]
            )
            raw_rps = readings / seconds if seconds else 0.0
            results[phase].update(
                raw_rps=raw_rps, raw_readings=readings, statements=statements / max(1, requests)
            )
            print(
                f"  {phase}: {readings:,} readings ({requests:,} requests, {statements / max(1, requests):.1f} "
                f"statements each) in {seconds:.2f} s = {raw_rps:,.0f} readings/s; "
                f"postgres CPU {pg_cpu / max(1, readings) * 1e6:,.0f} us per reading",
                flush=True,
            )

    print()
    print("RESULTS (readings/s, latency of one request)")
    for phase, r in results.items():
        raw = r.get("raw_rps")
        ratio = (
            f"; HTTP = {r['rps'] / raw:.0%} of the raw database bound ({raw:,.0f} readings/s)"
            if raw
            else ""
        )
        print(
            f"  {phase:6}: {r['rps']:>9,.0f} readings/s  p50 {r['p50']:6.1f} ms  p95 {r['p95']:6.1f} ms  "
            f"p99 {r['p99']:6.1f} ms  errors {r['errors']}{ratio}"
        )
        # What the code costs, whatever else the box runs: CPU per reading of all parts,
        # and the rate the cores could sustain if they did nothing else.
        cpu_total = sum(r["cpu_us"].values())
        print(
            f"          CPU {cpu_total:,.0f} us per reading ("
            + ", ".join(f"{g} {v:,.0f}" for g, v in r["cpu_us"].items())
            + f"): CPU-bound ceiling on {os.cpu_count()} idle cores "
            f"{(os.cpu_count() or 1) * 1e6 / max(cpu_total, 1e-9):,.0f} readings/s"
        )
    exact = all(r["exact"] for r in results.values())
    print(
        f"  totals: {'exact' if exact else 'WRONG'} "
        + ", ".join(f"{p} {r['server']:,}/{r['expected']:,}" for p, r in results.items())
    )
    missed = []
    if results["single"]["rps"] < TARGETS["single_rps"]:
        missed.append(
            f"single {results['single']['rps']:,.0f} < {TARGETS['single_rps']:,.0f} readings/s"
        )
    if results["single"]["p99"] > TARGETS["single_p99_ms"]:
        missed.append(
            f"single p99 {results['single']['p99']:.1f} > {TARGETS['single_p99_ms']:.0f} ms"
        )
    if results["batch"]["rps"] < TARGETS["batch_rps"]:
        missed.append(
            f"batch {results['batch']['rps']:,.0f} < {TARGETS['batch_rps']:,.0f} readings/s"
        )
    print("  targets: " + ("all met" if not missed else "MISSED: " + "; ".join(missed)))
    for failure in failures[:20]:
        print(f"  FAILURE {failure}")

    if not args.keep:
        drop(args.database_url, main_db, rec_db, raw_db)
    if failures or not exact:
        return 1
    return 2 if missed and args.strict else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
