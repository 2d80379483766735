"""Live processes beyond Celery for the compliance integration tests: the web app
(runserver, so usage is pushed over real HTTP) and a private Redis that a test may stop.
Ports are this area's range (8500-8599, Redis 6395)."""

from __future__ import annotations

import shutil
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager

import httpx

from tests.processes import ROOT, free_port, stop, wait_until

REDIS_PORT = 6395


@contextmanager
def web_process(env: dict[str, str], ports: range = range(8571, 8600)) -> Iterator[str]:
    """The Django app on a free port of `ports`; yields its base URL once /healthz answers
    (from this process: a server another run left on the port cannot pass for it)."""
    env = {**env, "ALLOWED_HOSTS": "127.0.0.1"}
    port = free_port(ports)
    proc = subprocess.Popen(
        [sys.executable, "manage.py", "runserver", f"127.0.0.1:{port}", "--noreload"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}"

    def up() -> bool:
        assert proc.poll() is None, "the web process exited"
        try:
            return httpx.get(f"{base}/healthz", timeout=2).status_code == 200
        except httpx.HTTPError:
            return False

    try:
        wait_until(up, timeout=60)
        yield base
    finally:
        stop(proc)


class PrivateRedis:
    """A throwaway redis-server that the test may stop and start again."""

    def __init__(self, port: int | None = None) -> None:
        # A free port, kept across stop/start (the app under test is configured with it).
        self.port = port or free_port(range(REDIS_PORT, REDIS_PORT + 30))
        self.proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        binary = shutil.which("redis-server")
        assert binary, "redis-server is not installed"
        args = ["--port", str(self.port), "--bind", "127.0.0.1"]
        self.proc = subprocess.Popen(
            [binary, *args, "--save", "", "--appendonly", "no"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )

        def answers() -> bool:
            assert self.proc is not None and self.proc.poll() is None, "redis-server exited"
            try:
                import redis

                return bool(redis.Redis(port=self.port, socket_timeout=1).ping())
            except Exception:
                return False

        wait_until(answers, timeout=20)

    def stop(self) -> None:
        if self.proc is not None:
            stop(self.proc)
            self.proc = None


@contextmanager
def private_redis() -> Iterator[PrivateRedis]:
    server = PrivateRedis()
    server.start()
    try:
        yield server
    finally:
        server.stop()
