"""The servers the fault tests start, stop, kill and freeze: an embedded PostgreSQL of
their own (controlpanel.embedded_db) and a redis-server of their own, never the machine's
shared ones; the app under gunicorn and Celery workers pointed at them.
Ports are this area's range (gunicorn 8900-8989, Redis 6430-6459)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from urllib.parse import unquote, urlsplit

import psutil
import psycopg

from controlpanel import embedded_db
from tests.metering.compliance.live import PrivateRedis
from tests.processes import ROOT, free_port, gunicorn_process, process_env, wait_until
from tools.fleet.run import FleetEnvironment, load_keys

WEB_PORTS = range(8900, 8990)
REDIS_PORTS = range(6430, 6460)


class Postgres:
    """An embedded PostgreSQL server in a temporary folder, held by this process."""

    def __init__(self) -> None:
        # Not under pytest's tmp_path (0700: the server's system user could not enter it;
        # tests/conftest.py's embedded_data_dir says why).
        self.root = Path(tempfile.mkdtemp(prefix="cp-faults-"))
        self.pgdata = self.root / "postgres"
        self.url = embedded_db.use(self.pgdata)
        self.socket_dir = unquote(urlsplit(self.url).path.split("/")[1])

    def pid(self) -> int:
        return int((self.pgdata / "postmaster.pid").read_text().split()[0])

    def connect(self) -> psycopg.Connection:
        return psycopg.connect(
            host=self.socket_dir, user=embedded_db.USER, dbname=embedded_db.DATABASE
        )

    def scalar(self, sql: str, params: tuple = ()) -> object:
        with self.connect() as conn:
            row = conn.execute(sql, params).fetchone()
        return row[0] if row else None

    def stop(self) -> None:
        """A clean shutdown (`pg_ctl stop`, fast mode: sessions are disconnected)."""
        assert embedded_db.release(self.pgdata), "the server was not stopped"

    def start(self) -> None:
        assert embedded_db.use(self.pgdata) == self.url

    def kill(self) -> None:
        """`kill -9` of the postmaster, as a crash would: no shutdown checkpoint, crash
        recovery on the next start. Returns once its backends have exited."""
        postmaster = psutil.Process(self.pid())
        backends = postmaster.children()
        os.kill(postmaster.pid, signal.SIGKILL)

        def dead(p: psutil.Process) -> bool:
            try:
                return p.status() == psutil.STATUS_ZOMBIE
            except psutil.NoSuchProcess:
                return True

        wait_until(lambda: all(dead(p) for p in [postmaster, *backends]), timeout=30)
        # The postmaster's parent here (PID 1 of the sandbox) may never reap it, and
        # PostgreSQL takes a lock file naming a zombie for a running server: remove the
        # lock files, as an operator does after a crash once the processes are gone.
        for lock in (self.pgdata / "postmaster.pid", Path(self.socket_dir) / ".s.PGSQL.5432.lock"):
            lock.unlink(missing_ok=True)
        # Let go of the dead server (its stop finds nothing to stop, or a zombie).
        with suppress(psutil.Error):
            embedded_db.release(self.pgdata)

    def close(self) -> None:
        with suppress(Exception):
            embedded_db.release(self.pgdata)


def app_env(postgres: Postgres, redis: PrivateRedis | None, **extra: str) -> dict[str, str]:
    """The environment of every process of the stack: its database, its Redis (broker,
    results and cache) or none (filesystem broker, local cache)."""
    env = process_env(
        DATABASE_URL=postgres.url,
        DATA_DIR=str(postgres.root / "data"),
        ALLOWED_HOSTS="127.0.0.1,localhost",
        LOG_LEVEL="WARNING",
        **extra,
    )
    for name in ("REDIS_URL", "CELERY_BROKER_URL", "CELERY_RESULT_BACKEND", "CACHE_URL"):
        env.pop(name, None)
    if redis is not None:
        env["REDIS_URL"] = redis.url
    return env


def manage(env: dict[str, str], *args: str) -> str:
    done = subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def provision(env: dict[str, str], *, count: int, run_id: str) -> list[FleetEnvironment]:
    """Fresh environments and keys in the stack's database (the fleet simulator's)."""
    keys = Path(env["DATA_DIR"]) / f"keys-{run_id}.json"
    manage(
        env,
        "simulate_fleet",
        "--provision",
        f"--environments={count}",
        f"--run-id={run_id}",
        f"--keys-file={keys}",
    )
    return load_keys(keys)


@contextmanager
def web(env: dict[str, str], *, workers: int = 2, threads: int = 4) -> Iterator[str]:
    with gunicorn_process(WEB_PORTS, workers=workers, threads=threads, env=env) as port:
        yield f"http://127.0.0.1:{port}"


def private_redis() -> PrivateRedis:
    server = PrivateRedis(port=free_port(REDIS_PORTS))
    server.start()
    return server


def freeze(redis: PrivateRedis) -> None:
    assert redis.proc is not None
    redis.proc.send_signal(signal.SIGSTOP)


def thaw(redis: PrivateRedis) -> None:
    assert redis.proc is not None
    redis.proc.send_signal(signal.SIGCONT)
