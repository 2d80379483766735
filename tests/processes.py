"""Real processes for integration tests: a Celery worker (and beat) on the test's broker
and database. Waiting is by polling with a deadline, never by a fixed sleep."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from django.conf import settings
from django.db import connection

ROOT = settings.BASE_DIR


def process_env(**extra: str) -> dict[str, str]:
    """The environment a child process needs to share this test's settings, broker,
    and (when the test uses a transactional database) the test database."""
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "controlpanel.settings_test",
        "DATA_DIR": str(settings.DATA_DIR),
        "PYTHONUNBUFFERED": "1",
    }
    db = connection.settings_dict
    if db["ENGINE"].endswith("postgresql"):
        env["DATABASE_URL"] = (
            f"postgres://{db['USER']}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"
        )
    else:
        env["DATABASE_URL"] = f"sqlite:///{db['NAME']}"
    env.update(extra)
    return env


@contextmanager
def celery_process(*args: str, env: dict[str, str] | None = None) -> Iterator[subprocess.Popen]:
    cmd = [sys.executable, "-m", "celery", "-A", "controlpanel", *args]
    proc = subprocess.Popen(
        cmd, cwd=ROOT, env=env or process_env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT
    )
    try:
        yield proc
    finally:
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def wait_until(
    predicate: Callable[[], object], *, timeout: float = 60, every: float = 0.2
) -> object:
    """Poll `predicate` until it returns something truthy; fail after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout}s")
        time.sleep(every)
