"""bench/soak: mixed traffic at a fixed rate for a bounded time, with the jobs running.

    bench/soak                      5 minutes (DATABASE_URL's server, else an embedded one)
    bench/soak --duration 60        a shorter run; -h lists the rates

Creates its own database (`<name>_soak` next to DATABASE_URL's; without DATABASE_URL an
embedded PostgreSQL under a scratch DATA_DIR), migrates, provisions a fleet organization
(tools.fleet: 26 environments with keys), starts the app under gunicorn (the production
config, no worker recycling) and a Celery worker with beat (the compliance jobs every few
seconds), then sends at once, each at its fixed rate until the time is up:

- single native readings and batches of 100: simulated fleets (bench/ingest's phases,
  sized to the rates) whose totals are known ahead (tools.fleet.plan);
- WCP license fetch bursts (every container of an environment at the same second);
- WCP seat +1 then -1 (the gauge must end where it started);
- the dashboard of the fleet organization, signed in as its owner (the web UI);
- the CMS deploy hook's GraphQL GetEnvironment with an apiKey.

It prints per kind requests, requests/s, p50/p99 and errors; whether the totals are exact
(every environment's API calls, seats and tenants as the counting rules say, and the seat
gauge back at its start); the jobs run and failed; and the web workers' resident memory
after the warm-up and at the end. Exit status 1 when a request or a job failed, a total
differs, or the workers' memory grew by 10 % or more. See bench/README.md.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import http.client
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from urllib.parse import urlsplit

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.ingest_bench.config import app_env, db_url, drop, recreate  # noqa: E402
from bench.ingest_bench.fleet import build, specs  # noqa: E402
from bench.ingest_bench.server import children, gunicorn, rss, stop  # noqa: E402
from tools.fleet.run import compare, fetch_totals, totals_window  # noqa: E402
from tools.fleet.transport import (  # noqa: E402
    HttpTransport,
    LaneStats,
    Response,
    SendStats,
    send_lanes,
    send_one,
)

MEMORY_GROWTH_LIMIT = 10.0  # percent
GET_ENVIRONMENT = (
    "query GetEnvironment($apiKey: String) { projects { getEnvironment(apiKey: $apiKey) "
    "{ id status org { id } project { id } } } }"
)
# The jobs, often enough that each runs several times in a short soak.
JOB_INTERVALS = {
    "COMPLIANCE_EVALUATE_EVERY": "15",
    "COMPLIANCE_NOTIFY_EVERY": "10",
    "COMPLIANCE_GAPS_EVERY": "30",
    "COMPLIANCE_CLOSE_EVERY": "30",
    "COMPLIANCE_REMINDERS_EVERY": "60",
    "COMPLIANCE_RETENTION_EVERY": "60",
}


def parse_args(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        description=__doc__.split("\n")[0], formatter_class=argparse.RawTextHelpFormatter
    )
    p.add_argument("--duration", type=float, default=300.0, help="seconds of traffic")
    p.add_argument("--database-url", default=os.environ.get("DATABASE_URL", ""))
    p.add_argument("--port", type=int, default=int(os.environ.get("BENCH_PORT", "8390")))
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--threads", type=int, default=4)
    p.add_argument("--single-rate", type=float, default=20.0, help="single readings/s")
    p.add_argument("--batch-rate", type=float, default=0.5, help="batches of 100/s")
    p.add_argument("--seat-rate", type=float, default=4.0, help="seat +1/-1 requests/s")
    p.add_argument("--dashboard-rate", type=float, default=1.0, help="dashboard reads/s")
    p.add_argument("--graphql-rate", type=float, default=4.0, help="GetEnvironment calls/s")
    p.add_argument("--burst-every", type=float, default=10.0, help="seconds between bursts")
    p.add_argument("--burst-size", type=int, default=16, help="license fetches per burst")
    p.add_argument("--lanes", type=int, default=4, help="client lanes per native fleet")
    p.add_argument("--warmup", type=float, default=0.1, help="share of the run before RSS")
    p.add_argument("--keep", action="store_true", help="keep the soak database")
    p.add_argument("--seed", type=int, default=20261202)
    args = p.parse_args(argv)
    # What bench.ingest_bench's gunicorn() and fleet specs read.
    args.settings = "controlpanel.settings"
    args.worker_class = "gthread"
    args.gunicorn_config = ROOT / "controlpanel" / "gunicorn.conf.py"
    args.profile = None
    args.clients = args.lanes
    args.batch_size = 100
    args.single_readings = max(1, round(args.single_rate * args.duration))
    args.batch_readings = max(1, round(args.batch_rate * 100 * args.duration))
    return args


# --- traffic ------------------------------------------------------------------------------
LANES = threading.Lock()


def lane(kind: SendStats) -> LaneStats:
    """A thread's own stats within its kind (merged by SendStats for the report)."""
    stats = LaneStats()
    with LANES:
        kind.lanes.append(stats)
    return stats


def paced(
    rate: float, step: Callable[[int], object], *, until: float, count: int | None = None
) -> None:
    """Call step(0), step(1), ... at `rate` per second from now: `count` times, or until
    the monotonic clock reaches `until`. A late step runs at once (no catching up by
    bursts beyond what fell behind)."""
    start = time.monotonic()
    i = 0
    while count is None or i < count:
        at = start + i / rate
        if count is None and at >= until:
            return
        delay = at - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        step(i)
        i += 1


def call(
    transport: HttpTransport,
    stats: LaneStats,
    method: str,
    path: str,
    *,
    headers: dict[str, str],
    body: bytes | None = None,
    ok: Callable[[Response], bool] = lambda r: r.status == 200,
) -> Response | None:
    started = time.perf_counter()
    try:
        resp = transport.request(method, path, "", body, headers=headers)
    except (http.client.HTTPException, OSError) as exc:
        stats.errors.append(f"{method} {path}: {type(exc).__name__}: {exc}")
        return None
    elapsed = time.perf_counter() - started
    if not ok(resp):
        stats.errors.append(f"{method} {path} -> {resp.status} {json.dumps(resp.body)[:200]}")
        return None
    stats.requests += 1
    stats.latencies.append(elapsed)
    return resp


def _license_ok(resp: Response) -> bool:
    return resp.status == 200 and "license" in (resp.body or {})


def _environment_ok(resp: Response) -> bool:
    found = (resp.body or {}).get("data", {}) or {}
    environment = (found.get("projects") or {}).get("getEnvironment") or {}
    return resp.status == 200 and environment.get("status") == "enabled"


# --- processes ----------------------------------------------------------------------------
@contextlib.contextmanager
def celery(env: dict[str, str], log: Path) -> Iterator[subprocess.Popen]:
    cmd = [sys.executable, "-m", "celery", "-A", "controlpanel", "worker", "--beat"]
    cmd += ["--loglevel", "INFO", "--concurrency", "1"]
    with open(log, "w") as out:
        proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 60
        while "ready." not in log.read_text():
            if proc.poll() is not None or time.monotonic() > deadline:
                sys.exit(f"the Celery worker did not start; see {log}")
            time.sleep(0.2)
        yield proc
    finally:
        stop(proc)


def database(args: argparse.Namespace, data_dir: Path) -> tuple[str, Callable[[], object]]:
    """The soak database's URL and how to be done with it (drop it unless --keep; the
    embedded server stops when nothing else uses it)."""
    if args.database_url:
        name = (urlsplit(args.database_url).path.lstrip("/") or "cp") + "_soak"
        recreate(args.database_url, name)

        def done() -> None:
            if not args.keep:
                drop(args.database_url, name)

        return db_url(args.database_url, name), done
    from controlpanel import embedded_db

    pgdata = data_dir / "postgres"
    return embedded_db.use(pgdata), lambda: embedded_db.release(pgdata)


def workers_rss(master: int) -> dict[int, int]:
    return {pid: rss(pid) for pid in children(master)}


# --- the run ------------------------------------------------------------------------------
def main(argv: list[str]) -> int:
    args = parse_args(argv)
    data_dir = Path(tempfile.mkdtemp(prefix="bench-soak-"))
    try:
        return soak(args, data_dir)
    finally:
        if not args.keep:
            shutil.rmtree(data_dir, ignore_errors=True)


def soak(args: argparse.Namespace, data_dir: Path) -> int:
    os.environ["DATA_DIR"] = str(data_dir)
    os.environ["STATIC_ROOT"] = str(data_dir / "static")  # DEBUG=0 serves collected files
    url, dispose = database(args, data_dir)
    env = app_env(url, **JOB_INTERVALS)
    os.environ.update(env)
    import django

    django.setup()
    from django.conf import settings
    from django.core.management import call_command
    from django.db import connection
    from django.test import Client

    from accounts.models import User
    from metering.models import UsageGauge
    from tools.fleet.run import provision_environments

    print(
        f"soak: {args.duration:.0f} s on {connection.settings_dict['NAME']}; gunicorn"
        f" {args.workers} x gthread ({args.threads} threads), a Celery worker with beat; per"
        f" second: {args.single_rate:g} single readings, {args.batch_rate * 100:g} readings in"
        f" batches, {args.burst_size} license fetches every {args.burst_every:g} s,"
        f" {args.seat_rate:g} seat steps, {args.dashboard_rate:g} dashboard reads,"
        f" {args.graphql_rate:g} GetEnvironment calls",
        flush=True,
    )
    call_command("migrate", verbosity=0)
    call_command("collectstatic", verbosity=0, interactive=False)
    phases = specs(args, dt.datetime.now(dt.UTC).replace(microsecond=0) - dt.timedelta(seconds=30))
    fleet = sum(s["environments"] for s in phases.values())
    environments = provision_environments(count=fleet + 2, run_id="soak")
    org, project, _ = environments[fleet].label.split("/")
    wcp_key = environments[fleet].key
    browser = Client()
    browser.force_login(User.objects.get(email="fleet-soak@example.com"))
    cookie = f"{settings.SESSION_COOKIE_NAME}={browser.cookies[settings.SESSION_COOKIE_NAME].value}"
    plans = {phase: build(spec) for phase, spec in phases.items()}
    connection.close()

    kinds = {
        n: SendStats([], 0.0)
        for n in ("single", "batch", "license", "seats", "dashboard", "graphql")
    }
    seats_net = [0]
    failures: list[str] = []
    with gunicorn(args, url) as server, celery(env, data_dir / "celery.log"):
        base = f"http://127.0.0.1:{args.port}"
        transport = HttpTransport(base)
        windows = {phase: totals_window(plan) for phase, plan in plans.items()}
        keys = {
            phase: [
                e.key for e in environments[s["env_offset"] :][: plans[phase].spec.environments]
            ]
            for phase, s in phases.items()
        }
        baselines = {
            phase: [fetch_totals(transport, k, windows[phase]) for k in keys[phase]]
            for phase in plans
        }
        started = time.monotonic()
        until = started + args.duration
        license_path = f"/orgs/{org}/projects/{project}/license"
        seats_path = f"/orgs/{org}/projects/{project}/package/seats"
        wcp = {"Authorization": wcp_key, "Content-Type": "text/plain;charset=UTF-8"}

        def fleet_lane(phase: str, index: int) -> Callable[[], None]:
            requests = plans[phase].lanes[index]
            rate = len(requests) / args.duration
            stats = lane(kinds[phase])
            payloads = [r.payload() for r in requests]
            phase_keys = keys[phase]

            def step(i: int) -> None:
                request = requests[i]
                send_one(transport, request, payloads[i], phase_keys[request.env], stats)

            return lambda: paced(rate, step, until=until, count=len(requests))

        def seats() -> None:
            stats = lane(kinds["seats"])

            def step(i: int) -> None:
                operation = "increment" if i % 2 == 0 else "decrement"
                body = json.dumps({"operation": operation}).encode()
                if call(transport, stats, "POST", seats_path, headers=wcp, body=body):
                    seats_net[0] += 1 if operation == "increment" else -1

            paced(args.seat_rate, step, until=until)

        def dashboard() -> None:
            stats = lane(kinds["dashboard"])
            headers = {"Cookie": cookie, "Accept": "text/html"}
            paced(
                args.dashboard_rate,
                lambda i: call(transport, stats, "GET", f"/{org}/", headers=headers),
                until=until,
            )

        def graphql() -> None:
            stats = lane(kinds["graphql"])
            keys_of_all = [e.key for e in environments]
            headers = {"Content-Type": "application/json"}

            def step(i: int) -> None:
                variables = {"apiKey": keys_of_all[i % len(keys_of_all)]}
                body = json.dumps({"query": GET_ENVIRONMENT, "variables": variables}).encode()
                call(
                    transport,
                    stats,
                    "POST",
                    "/graphql",
                    headers=headers,
                    body=body,
                    ok=_environment_ok,
                )

            paced(args.graphql_rate, step, until=until)

        def bursts() -> None:
            def fetch() -> None:
                stats = lane(kinds["license"])
                call(HttpTransport(base), stats, "GET", license_path, headers=wcp, ok=_license_ok)

            def burst(i: int) -> None:
                threads = [threading.Thread(target=fetch) for _ in range(args.burst_size)]
                for t in threads:
                    t.start()
                for t in threads:
                    t.join()

            paced(1 / args.burst_every, burst, until=until)

        targets = [fleet_lane(p, i) for p in plans for i in range(len(plans[p].lanes))]
        targets += [seats, dashboard, graphql, bursts]
        threads = [threading.Thread(target=t, daemon=True) for t in targets]
        for t in threads:
            t.start()
        time.sleep(max(1.0, args.duration * args.warmup))  # the workers' caches fill first
        rss_start = workers_rss(server.pid)
        for t in threads:
            t.join()
        elapsed = time.monotonic() - started
        rss_end = workers_rss(server.pid)
        for kind in kinds.values():
            kind.seconds = elapsed
        checks = []
        for phase, plan in plans.items():
            kinds[phase].lanes += send_lanes(transport, plan.final, keys[phase]).lanes
            for i, key in enumerate(keys[phase]):
                after = fetch_totals(transport, key, windows[phase])
                checks.append(
                    compare(f"{phase} e{i}", plan.expected[i], baselines[phase][i], after)
                )
        jobs_log = (data_dir / "celery.log").read_text()

    gauge = UsageGauge.objects.filter(
        environment__project__organization__slug=org,
        environment__project__slug=project,
        environment__kind="production",
        metric="seats",
    ).values_list("value", flat=True)
    seats_gauge = next(iter(gauge), None)
    connection.close()
    dispose()

    # --- report -------------------------------------------------------------------------
    total_requests = sum(k.requests for k in kinds.values())
    print(
        f"{'kind':<10} {'requests':>9} {'req/s':>7} {'readings/s':>10} {'p50 ms':>8} "
        f"{'p99 ms':>8} {'errors':>7}"
    )
    for name, kind in kinds.items():
        print(
            f"{name:<10} {kind.requests:>9,} {kind.requests / elapsed:>7.1f} "
            f"{kind.readings / elapsed:>10.1f} {kind.percentile(50) * 1000:>8.1f} "
            f"{kind.percentile(99) * 1000:>8.1f} {len(kind.errors):>7}"
        )
        failures += [f"{name}: {e}" for e in kind.errors[:5]]
    errors = sum(len(k.errors) for k in kinds.values())
    print(f"{'all':<10} {total_requests:>9,} {total_requests / elapsed:>7.1f} in {elapsed:.1f} s")
    expected = sum(c.expected.api_calls for c in checks)
    counted = sum(c.server.api_calls for c in checks if c.server)
    problems = [f"{c.label}: {p}" for c in checks for p in c.problems]
    if kinds["seats"].requests and seats_gauge != seats_net[0]:
        problems.append(f"seats gauge {seats_gauge}, sent net {seats_net[0]:+d}")
    print(
        f"totals: sent {expected:,} API calls over {len(checks)} environments, the database "
        f"counted {counted:,}; seat gauge {seats_gauge} for a net {seats_net[0]:+d}: "
        + ("exact" if not problems else f"{len(problems)} DIFFER")
    )
    failures += problems
    succeeded = jobs_log.count(" succeeded in ")
    failed = jobs_log.count(" raised unexpected") + jobs_log.count("ERROR/")
    print(f"jobs (worker + beat): {succeeded} task runs succeeded, {failed} failed")
    if failed:
        failures.append(f"{failed} job failures; see the worker's log")
    start_mib, end_mib = sum(rss_start.values()) / 2**20, sum(rss_end.values()) / 2**20
    growth = (end_mib - start_mib) / start_mib * 100 if start_mib else float("inf")
    print(
        f"web workers' RSS ({len(rss_start)} workers): {start_mib:.1f} MiB after the warm-up,"
        f" {end_mib:.1f} MiB at the end: {growth:+.1f} %"
    )
    if set(rss_start) != set(rss_end):
        failures.append("a web worker was replaced during the run")
    if growth >= MEMORY_GROWTH_LIMIT:
        failures.append(f"the web workers' memory grew by {growth:.1f} % (limit 10 %)")
    for failure in failures:
        print(f"FAIL {failure}")
    print("soak: " + ("FAILED" if failures or errors else "passed"))
    return 1 if failures or errors else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
