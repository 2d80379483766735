"""`make run`'s command on the embedded defaults: it migrates, serves with worker and beat
running, and SIGTERM (or Ctrl-C) stops all of them and the embedded database server."""

from __future__ import annotations

import http.client
import json
import os
import signal
import subprocess
import sys

import psutil
import pytest
from django.conf import settings

from tests.processes import free_port, stop, wait_until

pytestmark = pytest.mark.slow


def readyz(port: int) -> dict | None:
    try:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
        conn.request("GET", "/readyz")
        response = conn.getresponse()
        return json.loads(response.read()) if response.status == 200 else None
    except OSError:
        return None


def test_runembedded_serves_and_sigterm_stops_everything_with_the_database(embedded_data_dir):
    port = free_port(range(18600, 18700))
    keep = ("PATH", "HOME", "LANG")
    env = {k: v for k, v in os.environ.items() if k in keep}
    env |= {"DJANGO_SETTINGS_MODULE": "controlpanel.settings", "DEBUG": "1"}
    env |= {"DATA_DIR": str(embedded_data_dir), "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen(
        [sys.executable, "manage.py", "runembedded", "--port", str(port), "--no-demo"],
        cwd=settings.BASE_DIR,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        ready = wait_until(lambda: proc.poll() is not None or readyz(port), timeout=120)
        assert proc.poll() is None, proc.stdout.read().decode()
        assert ready["checks"] == {"database": "ok", "broker": "ok"}
        pgdata = embedded_data_dir / "postgres"
        postmaster = int((pgdata / "postmaster.pid").read_text().split()[0])
        children = psutil.Process(proc.pid).children()
        commands = sorted(" ".join(c.cmdline()[1:4]) for c in children)
        assert commands == [
            "-m celery -A",
            "-m celery -A",
            f"{settings.BASE_DIR / 'manage.py'} runserver 127.0.0.1:{port}",
        ]

        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=60)
    finally:
        stop(proc)
    output = proc.stdout.read().decode()
    assert proc.returncode == 0, output
    assert "embedded PostgreSQL stopped" in output
    assert not any(child.is_running() for child in children)
    assert not (pgdata / "postmaster.pid").exists()
    # pg_ctl returns once the postmaster removed its pid file, just before it exits.
    wait_until(lambda: not psutil.pid_exists(postmaster), timeout=10)
