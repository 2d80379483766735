"""The app under gunicorn, and where the CPU goes."""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.ingest_bench.config import ROOT, admin_connection, app_env


@contextlib.contextmanager
def gunicorn(args: argparse.Namespace, database_url: str):
    env = app_env(
        database_url,
        DJANGO_SETTINGS_MODULE=args.settings,
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
        stop(proc)
        log.close()


def stop(proc: subprocess.Popen) -> None:
    """SIGTERM, then SIGKILL if the process has not exited within 30 s."""
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


TICK = os.sysconf("SC_CLK_TCK")
PAGE = os.sysconf("SC_PAGE_SIZE")


def _cpu(pid: int) -> float:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / TICK  # utime + stime


def children(ppid: int) -> list[int]:
    out = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1]) == ppid:
                    out.append(int(entry.name))
            except (OSError, IndexError, ValueError):
                continue
    return out


def rss(pid: int) -> int:
    """Resident memory of a process in bytes (0 once it is gone)."""
    try:
        return int(Path(f"/proc/{pid}/statm").read_text().split()[1]) * PAGE
    except (OSError, IndexError, ValueError):
        return 0


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
        "app": {pid: _cpu(pid) for pid in [master, *children(master)]},
        "postgres": {pid: _cpu(pid) for pid in backends},
        "clients": {os.getpid(): time.process_time()},
    }


def cpu_delta(before: dict, after: dict) -> dict[str, float]:
    return {
        group: sum(v - before[group].get(pid, 0.0) for pid, v in after[group].items())
        for group in after
    }
