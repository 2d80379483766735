"""gunicorn settings, overridable by environment (GUNICORN_WORKER_CLASS, GUNICORN_WORKERS,
GUNICORN_THREADS, ...).

Requests are parsed by gunicorn's C parser (the `gunicorn-h1c` package of the prod group),
which costs ~50-150 us less CPU per request than its Python parser
(GUNICORN_HTTP_PARSER=python chooses that one).

Clients (or a proxy) that keep connections alive need a threaded worker; on 2 cores
shared with PostgreSQL, what bench/ingest measures best for usage ingest is

    GUNICORN_WORKER_CLASS=gthread GUNICORN_WORKERS=2 GUNICORN_THREADS=4

workers x threads at least the connections kept busy at once (8 bench clients), as few
processes as keep the cores busy: each gthread worker's main thread polls its kept-alive
connections and hands every request to a pool thread and back, and fewer, fuller workers
handle more ready connections per wake-up (2 x 4 against 3 x 3: ~14 % less CPU per
single reading, app and database alike; see docs/ingest.md). Scale workers with cores.
So the default is `gthread`, one worker per core, 4 threads each (CMS instances keep
their connections alive; idle kept-alive connections wait in the worker's poller, not
in a thread, so slow or idle clients do not hold a worker as they would a `sync` one).
"""

import multiprocessing
import os

bind = os.environ.get("GUNICORN_BIND", "0.0.0.0:8000")
workers = int(os.environ.get("GUNICORN_WORKERS", multiprocessing.cpu_count()))
threads = int(os.environ.get("GUNICORN_THREADS", "4"))
worker_class = os.environ.get("GUNICORN_WORKER_CLASS", "gthread")
timeout = int(os.environ.get("GUNICORN_TIMEOUT", "30"))
keepalive = 5
http_parser = os.environ.get("GUNICORN_HTTP_PARSER", "fast")
if http_parser == "fast":
    # gunicorn checks only when parsing a request (and then fails every request): fail
    # here, at start, when the package is missing.
    import gunicorn_h1c  # noqa: F401
max_requests = int(os.environ.get("GUNICORN_MAX_REQUESTS", "10000"))
max_requests_jitter = 500
accesslog = "-" if os.environ.get("GUNICORN_ACCESS_LOG", "0") == "1" else None
errorlog = "-"


# /metrics sums what every worker counted: prometheus-client's multiprocess mode, in a
# folder of this server's own (controlpanel.metrics_files), set up before any worker starts.
def on_starting(server) -> None:
    from controlpanel import metrics_files

    metrics_files.prepare(bind=server.cfg.bind[0])


def child_exit(server, worker) -> None:
    from controlpanel import metrics_files

    metrics_files.fold(worker.pid)
