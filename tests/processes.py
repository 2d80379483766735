"""Real processes for integration tests: a Celery worker (and beat) on the test's broker
and database. Waiting is by polling with a deadline, never by a fixed sleep."""

from __future__ import annotations

import http.client
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from urllib.parse import quote

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
    env["DATABASE_URL"] = database_url(connection.settings_dict)
    env.update(extra)
    return env


def database_url(db: dict) -> str:
    """A DATABASE_URL for the database of these Django settings: TCP, or the Unix socket
    folder of the embedded server (django-environ's `postgres://user@/<folder>/name`)."""
    credentials = quote(db["USER"]) + (f":{quote(db['PASSWORD'])}" if db["PASSWORD"] else "")
    if db["HOST"].startswith("/"):
        return f"postgres://{credentials}@/{quote(db['HOST'], safe='')}/{db['NAME']}"
    return f"postgres://{credentials}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"


def stop(proc: subprocess.Popen) -> None:
    """Terminate a child process, killing it if it does not stop within 20 s."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def free_port(ports: range) -> int:
    """The first port of `ports` nobody listens on (each test area has its own range)."""
    for port in ports:
        with socket.socket() as s:
            # As gunicorn binds: a port whose last connections wait in TIME_WAIT (a server
            # just stopped) is free again; one with a listener is not.
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError(f"no free port in {ports.start}-{ports.stop - 1}")


def _healthy(port: int) -> bool:
    try:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
        conn.request("GET", "/healthz")
        return conn.getresponse().status == 200
    except OSError:
        return False


@contextmanager
def gunicorn_process(
    ports: range,
    *,
    workers: int = 1,
    threads: int = 1,
    env: dict[str, str] | None = None,
    args: tuple[str, ...] = (),
) -> Iterator[int]:
    """The app under gunicorn (gthread), as in production, on the test's database; yields
    its port once /healthz answers. `args` go to gunicorn's command line."""
    port = free_port(ports)
    cmd = [sys.executable, "-m", "gunicorn", "controlpanel.wsgi:application"]
    cmd += ["--bind", f"127.0.0.1:{port}", "--worker-class", "gthread"]
    cmd += ["--workers", str(workers), "--threads", str(threads), *args]
    # Output to a file, not a pipe nobody reads: a server logging more than a pipe holds
    # (64 KiB) would block on its next log line.
    with tempfile.TemporaryFile() as output:
        proc = subprocess.Popen(
            cmd,
            cwd=ROOT,
            env=env or process_env(ALLOWED_HOSTS="127.0.0.1,localhost", LOG_LEVEL="WARNING"),
            stdout=output,
            stderr=subprocess.STDOUT,
        )
        try:
            wait_until(lambda: proc.poll() is not None or _healthy(port), timeout=60)
            if proc.poll() is not None:
                output.seek(0)
                raise AssertionError(output.read().decode(errors="replace"))
            yield port
        finally:
            stop(proc)


@contextmanager
def celery_process(*args: str, env: dict[str, str] | None = None) -> Iterator[subprocess.Popen]:
    cmd = [sys.executable, "-m", "celery", "-A", "controlpanel", *args]
    proc = subprocess.Popen(
        cmd, cwd=ROOT, env=env or process_env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT
    )
    try:
        yield proc
    finally:
        stop(proc)


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


def http_exchange(
    port: int, head: str, body: bytes, *, close_write: bool = False
) -> tuple[int, dict]:
    """Send a request as raw bytes; the status and the JSON body of the answer."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(head.encode() + b"\r\n" + body)
        if close_write:
            sock.shutdown(socket.SHUT_WR)  # the client stops sending: the body ends short
        answer = b""
        while b"\r\n\r\n" not in answer or len(answer) < _length(answer):
            part = sock.recv(65536)
            if not part:
                break
            answer += part
    status = int(answer.split(b" ", 2)[1])
    return status, json.loads(answer.split(b"\r\n\r\n", 1)[1])


def _length(answer: bytes) -> int:
    head, _, _ = answer.partition(b"\r\n\r\n")
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            return len(head) + 4 + int(value)
    return len(answer) + 1


def chunked(data: bytes, size: int = 7) -> bytes:
    chunks = [data[i : i + size] for i in range(0, len(data), size)]
    return b"".join(b"%x\r\n%s\r\n" % (len(c), c) for c in chunks) + b"0\r\n\r\n"
