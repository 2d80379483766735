"""Arguments, the app's environment, and the bench's databases."""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parents[2]

TARGETS = {"single_rps": 1500.0, "single_p99_ms": 50.0, "batch_rps": 25000.0}


# --- configuration ------------------------------------------------------------------------
def parse_args(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        description=(sys.modules["bench.ingest_bench"].__doc__),
        formatter_class=argparse.RawTextHelpFormatter,
    )
    p.add_argument(
        "--database-url",
        default=os.environ.get("BENCH_DATABASE_URL")
        or os.environ.get("DATABASE_URL")
        or "postgres://postgres@127.0.0.1:5432/cp",
    )
    p.add_argument("--port", type=int, default=int(os.environ.get("BENCH_PORT", "8290")))
    p.add_argument("--clients", type=int, default=8)
    p.add_argument(
        "--client",
        choices=("wire", "http.client"),
        default="wire",
        help="wire: pre-serialized requests on raw sockets, epoll loops in --client-processes"
        " processes (bench/wire.py); http.client: one thread per client"
        " (tools.fleet.transport)",
    )
    p.add_argument(
        "--client-processes", type=int, default=1, help="processes the wire clients share"
    )
    p.add_argument("--single-readings", type=int, default=30_000)
    p.add_argument("--batch-readings", type=int, default=300_000)
    p.add_argument("--batch-size", type=int, default=1000)
    p.add_argument("--workers", type=int, default=int(os.environ.get("GUNICORN_WORKERS", "2")))
    p.add_argument("--worker-class", default=os.environ.get("GUNICORN_WORKER_CLASS", "gthread"))
    p.add_argument("--threads", type=int, default=int(os.environ.get("GUNICORN_THREADS", "4")))
    p.add_argument(
        "--record-single",
        type=int,
        default=600,
        help="requests per client recorded for the raw bound",
    )
    p.add_argument(
        "--record-batch", type=int, default=4, help="batches per client recorded for the raw bound"
    )
    p.add_argument("--skip-raw", action="store_true", help="skip the raw database bound")
    p.add_argument("--profile", type=Path, help="cProfile each gunicorn worker into this folder")
    p.add_argument(
        "--gunicorn-config",
        type=Path,
        default=ROOT / "controlpanel" / "gunicorn.conf.py",
        help="gunicorn config file (default: the production one)",
    )
    p.add_argument(
        "--settings",
        default="controlpanel.settings",
        help="DJANGO_SETTINGS_MODULE of the served app (controlpanel.settings_ingest: the"
        " ingest-only service)",
    )
    p.add_argument("--keep", action="store_true", help="keep the bench databases afterwards")
    p.add_argument("--strict", action="store_true", help="exit 2 when a target is missed")
    p.add_argument("--seed", type=int, default=20261124)
    return p.parse_args(argv)


def db_url(base: str, name: str) -> str:
    parts = urlsplit(base)
    return urlunsplit(parts._replace(path=f"/{name}"))


def app_env(database_url: str, **extra: str) -> dict[str, str]:
    env = {
        **os.environ,
        "DATABASE_URL": database_url,
        "DEBUG": "0",
        "SECRET_KEY": os.environ.get(
            "SECRET_KEY", "bench-only-secret-key-0123456789abcdefghijklmnop"
        ),
        "ALLOWED_HOSTS": "127.0.0.1,localhost,testserver",
        "SECURE_SSL_REDIRECT": "0",
        "LOG_LEVEL": "WARNING",
        # Connections live through a phase, so their backends' CPU can be read at its end
        # (production's 60 s reconnects cost nothing measurable).
        "CONN_MAX_AGE": "3600",
        "DJANGO_SETTINGS_MODULE": "controlpanel.settings",
        "PYTHONUNBUFFERED": "1",
    }
    env.update(extra)
    return env


def manage(database_url: str, *args: str) -> str:
    out = subprocess.run(
        [sys.executable, str(ROOT / "manage.py"), *args],
        cwd=ROOT,
        env=app_env(database_url),
        capture_output=True,
        text=True,
    )
    if out.returncode != 0:
        sys.exit(f"manage.py {' '.join(args)} failed:\n{out.stdout}\n{out.stderr}")
    return out.stdout


# --- databases ----------------------------------------------------------------------------
def admin_connection(base: str):
    import psycopg

    return psycopg.connect(db_url(base, "postgres"), autocommit=True)


def recreate(base: str, name: str, template: str | None = None) -> None:
    with admin_connection(base) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"' + (f' TEMPLATE "{template}"' if template else ""))


def settle(base: str) -> None:
    """CHECKPOINT once the set-up is written (migrations, provisioning, the template
    copies): otherwise the measured phase shares the disk with the flush of the set-up's
    dirty pages, and its commits wait on WAL fsyncs for work that is not its own (seen:
    ~13 % of the wall time idle, 1,470-1,500 single readings/s against 1,560-1,580
    without the copies). Needs superuser or pg_checkpoint; skipped with a note if not."""
    import psycopg

    try:
        with admin_connection(base) as conn:
            conn.execute("CHECKPOINT")
    except psycopg.Error as error:
        print(f"  (no CHECKPOINT before the load: {error})", flush=True)


def drop(base: str, *names: str) -> None:
    with admin_connection(base) as conn:
        for name in names:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
