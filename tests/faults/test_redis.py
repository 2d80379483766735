"""Redis (cache, broker, results) stopped, and frozen with SIGSTOP, under a running web
service and Celery worker: ingest and license fetches go on at their usual pace (the
cache-backed paths degrade: the throttle fails open, the license is signed without the
cache), `/readyz` says 503 within 3 s, and once Redis is back the worker runs jobs again.

A frozen Redis is the hard case: it accepts connections (the kernel does) and never
answers, so only the clients' socket timeouts (REDIS_TIMEOUT) bound the wait."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from itertools import count

import httpx
import pytest
from celery import Celery

from tests.faults.stack import Postgres, app_env, freeze, provision, thaw, web
from tests.metering.compliance.live import PrivateRedis
from tests.processes import celery_process

pytestmark = pytest.mark.slow

# Far below what the suite's machine needs (a few ms each); far above REDIS_TIMEOUT.
GENEROUS = 1.0
calls = count(1)


def timed(request: Callable[[], httpx.Response]) -> tuple[httpx.Response, float]:
    started = time.monotonic()
    response = request()
    return response, time.monotonic() - started


@pytest.fixture
def served(pg: Postgres, redis_server: PrivateRedis) -> Iterator[tuple[str, str, str]]:
    """gunicorn and a worker on the stack, the throttle counting every request in Redis;
    yields (base URL, API key, license path)."""
    env = app_env(pg, redis_server, USAGE_THROTTLE_REQUESTS="1000")
    (environment,) = provision(env, count=1, run_id=f"redis{next(calls)}")
    org, project, _ = environment.label.split("/")
    license_path = f"/orgs/{org}/projects/{project}/license"
    # One web process, warmed up by the first calls, so what is timed is the fault alone.
    with (
        web(env, workers=1) as base,
        celery_process("worker", "--pool=solo", "--loglevel=WARNING", env=env),
    ):
        assert_serves(base, environment.key, license_path)
        yield base, environment.key, license_path


def round_trip(redis: PrivateRedis, value: str) -> None:
    """A task enqueued now runs on the stack's worker (polled through its result)."""
    app = Celery(broker=redis.url, backend=redis.url)
    assert app.send_task("controlpanel.ping", args=[value]).get(timeout=60) == value


def assert_serves(base: str, key: str, license_path: str) -> None:
    """Readings accepted and licenses fetched, each within GENEROUS seconds."""
    total = 1000 * next(calls)
    with httpx.Client(base_url=base, timeout=30) as client:
        for step in range(3):
            reading = {"instance": "i", "boot": "b", "api_calls": total + step}
            pushed, took = timed(
                lambda r=reading: client.post(
                    "/api/v1/usage", json=r, headers={"Authorization": f"Bearer {key}"}
                )
            )
            assert pushed.status_code == 202, pushed.text
            assert took < GENEROUS
            fetched, took = timed(lambda: client.get(license_path, headers={"Authorization": key}))
            assert fetched.status_code == 200, fetched.text
            assert fetched.json()["license"]
            assert took < GENEROUS


def assert_degrades(base: str, key: str, license_path: str) -> None:
    assert_serves(base, key, license_path)
    with httpx.Client(base_url=base, timeout=30) as client:
        ready, took = timed(lambda: client.get("/readyz"))
    assert ready.status_code == 503
    assert ready.json()["failing"] == ["broker"]
    assert ready.headers["Retry-After"].isdigit()
    assert took < 3


def test_a_stopped_redis_slows_nothing_and_jobs_resume_when_it_is_back(served, redis_server):
    base, key, license_path = served
    round_trip(redis_server, "before")
    redis_server.stop()
    try:
        assert_degrades(base, key, license_path)
    finally:
        redis_server.start()
    round_trip(redis_server, "after a restart")


def test_a_frozen_redis_slows_nothing_and_jobs_resume_when_it_thaws(served, redis_server):
    base, key, license_path = served
    round_trip(redis_server, "before")
    freeze(redis_server)
    try:
        assert_degrades(base, key, license_path)
    finally:
        thaw(redis_server)
    round_trip(redis_server, "after the freeze")
    with httpx.Client(base_url=base, timeout=30) as client:
        assert client.get("/readyz").status_code == 200
