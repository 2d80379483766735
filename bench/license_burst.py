"""Burst benchmark of the license endpoint: every CMS container refetches its license at
the same wall-clock minute.

    DATABASE_URL=postgres://... REDIS_URL=redis://... .venv/bin/python bench/license_burst.py

By default it creates a throw-away organization with `--environments` environments (each
with its own API key) in the configured database, starts gunicorn on `--port`, and fires
`--rounds` bursts of environments x containers simultaneous GETs, through `--concurrency`
client threads with keep-alive connections. Round 1 meets a cold cache (one license is
signed per environment); later rounds are what the CMS sees every 5 minutes. A last phase
restarts gunicorn with LICENSE_CACHE_SECONDS=0 (sign on every request) for comparison.
It prints requests/s and p50/p95/p99 latency per phase, errors, and the licenses recorded,
after a baseline burst against /healthz (no I/O) that shows the harness's own ceiling.

Against a running server instead: --url URL --org ORG --project PROJECT --key KEY [--key ...]
(no setup, no gunicorn, no uncached phase).
"""

from __future__ import annotations

import argparse
import os
import secrets
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q / 100 * len(ordered)) - 1))
    return ordered[index]


class Burst:
    def __init__(self, base_url: str, path: str, keys: list[str], containers: int, threads: int):
        self.url = f"{base_url}{path}"
        self.keys = keys
        self.containers = containers
        self.threads = threads
        self.local = threading.local()

    def _client(self) -> httpx.Client:
        if not hasattr(self.local, "client"):
            self.local.client = httpx.Client(timeout=30)
        return self.local.client

    def _one(self, key: str) -> tuple[float, int]:
        start = time.perf_counter()
        try:
            response = self._client().get(self.url, headers={"authorization": key})
            status = response.status_code
            if status == 200 and self.url.endswith("/license") and "token" not in response.json():
                status = -1
        except httpx.HTTPError:
            status = 0
        return time.perf_counter() - start, status

    def run(self, rounds: int) -> tuple[list[float], list[int], float]:
        latencies: list[float] = []
        statuses: list[int] = []
        elapsed = 0.0
        requests = [key for key in self.keys for _ in range(self.containers)]
        with ThreadPoolExecutor(max_workers=self.threads) as pool:
            for _ in range(rounds):
                start = time.perf_counter()
                for latency, status in pool.map(self._one, requests):
                    latencies.append(latency)
                    statuses.append(status)
                elapsed += time.perf_counter() - start
        return latencies, statuses, elapsed


def report(name: str, latencies: list[float], statuses: list[int], elapsed: float) -> None:
    errors = sum(1 for s in statuses if s != 200)
    ms = [v * 1000 for v in latencies]
    print(
        f"{name:<28} {len(ms):>6} req  {len(ms) / elapsed:>8.0f} req/s  "
        f"p50 {statistics.median(ms):6.1f} ms  p95 {percentile(ms, 95):6.1f} ms  "
        f"p99 {percentile(ms, 99):6.1f} ms  errors {errors}"
    )


# --- self-hosted mode ------------------------------------------------------------------------
def setup_django() -> None:
    sys.path.insert(0, str(ROOT))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "controlpanel.settings")
    os.environ.setdefault("SECRET_KEY", secrets.token_urlsafe(50))
    os.environ.setdefault("SECURE_SSL_REDIRECT", "0")
    import logging

    import django

    django.setup()
    logging.getLogger("httpx").setLevel(logging.WARNING)


def create_fleet(environments: int) -> tuple[str, str, list[str]]:
    from accounts.models import EnvironmentKind
    from accounts.services.api_keys import api_key_issue
    from accounts.services.organizations import (
        contract_activate,
        environment_create,
        organization_create,
        project_create,
    )

    slug = f"bench-{secrets.token_hex(4)}"
    organization = organization_create(slug=slug, name="License burst")
    today = __import__("datetime").date.today()
    contract_activate(
        organization=organization,
        plan="bench",
        starts_on=today.replace(day=1),
        ends_on=today.replace(year=today.year + 1),
        seats_per_environment=25,
        tenants_per_environment=5,
        audit_logs=True,
    )
    project = project_create(organization=organization, slug="site", name="Site")
    envs = [project.environments.get(kind=EnvironmentKind.PRODUCTION)]
    envs += [
        environment_create(project=project, name=f"ci-{i}", kind=EnvironmentKind.CICD)
        for i in range(environments - 1)
    ]
    return slug, "site", [api_key_issue(environment=e).plaintext for e in envs]


def licenses_recorded(org_slug: str) -> int:
    from accounts.models import License

    return License.objects.filter(organization__slug=org_slug).count()


def start_gunicorn(port: int, workers: int, data_dir: str, **extra: str) -> subprocess.Popen:
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "controlpanel.settings",
        "GUNICORN_BIND": f"127.0.0.1:{port}",
        "GUNICORN_WORKERS": str(workers),
        "ALLOWED_HOSTS": "127.0.0.1,localhost",
        "DATA_DIR": data_dir,
        "DEBUG": "0",
        "LOG_LEVEL": "WARNING",
        **extra,
    }
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "gunicorn",
            "-c",
            "controlpanel/gunicorn.conf.py",
            "controlpanel.wsgi:application",
        ],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                return proc
        except httpx.HTTPError:
            time.sleep(0.2)
    proc.terminate()
    raise SystemExit(f"gunicorn did not start: {proc.stderr.read().decode()[-2000:]}")


def stop(proc: subprocess.Popen) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--url", help="a running Control Panel (skips setup)")
    parser.add_argument("--org")
    parser.add_argument("--project")
    parser.add_argument("--key", action="append", default=[])
    parser.add_argument("--environments", type=int, default=20)
    parser.add_argument("--containers", type=int, default=25, help="per environment")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--concurrency", type=int, default=32, help="client threads")
    parser.add_argument("--port", type=int, default=8300)
    parser.add_argument("--workers", type=int, default=4, help="gunicorn workers")
    args = parser.parse_args()

    if args.url:
        burst = Burst(
            args.url.rstrip("/"),
            f"/orgs/{args.org}/projects/{args.project}/license",
            args.key,
            args.containers,
            args.concurrency,
        )
        report("burst", *burst.run(args.rounds))
        return 0

    setup_django()
    from django.conf import settings

    org, project, keys = create_fleet(args.environments)
    path = f"/orgs/{org}/projects/{project}/license"
    base = f"http://127.0.0.1:{args.port}"
    db = settings.DATABASES["default"]["ENGINE"].rsplit(".", 1)[-1]
    print(
        f"license burst: {len(keys)} environments x {args.containers} containers "
        f"= {len(keys) * args.containers} requests per burst, {args.concurrency} client threads, "
        f"gunicorn {args.workers} workers, {db}, cache "
        f"{settings.CACHES['default']['BACKEND'].rsplit('.', 1)[-1]}, {os.cpu_count()} CPUs"
    )
    data_dir = tempfile.mkdtemp(prefix="license-burst-")
    try:
        server = start_gunicorn(args.port, args.workers, data_dir)
        try:
            # The harness's own ceiling: the same burst against /healthz (no I/O at all).
            floor = Burst(base, "/healthz", keys, args.containers, args.concurrency)
            report("baseline /healthz", *floor.run(args.rounds))
            burst = Burst(base, path, keys, args.containers, args.concurrency)
            before = licenses_recorded(org)
            report("cold cache (first burst)", *burst.run(1))
            cold = licenses_recorded(org) - before
            report(f"cached ({args.rounds} bursts)", *burst.run(args.rounds))
            warm = licenses_recorded(org) - before - cold
        finally:
            stop(server)
        print(
            f"licenses recorded: cold burst {cold} (environments: {len(keys)}), cached bursts {warm}"
        )

        server = start_gunicorn(args.port, args.workers, data_dir, LICENSE_CACHE_SECONDS="0")
        try:
            before = licenses_recorded(org)
            report("uncached (sign every time)", *burst.run(max(1, args.rounds // 2)))
            print(f"licenses recorded uncached: {licenses_recorded(org) - before}")
        finally:
            stop(server)
    finally:
        from accounts.models import Organization

        Organization.objects.filter(slug=org).delete()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
