"""The folder of prometheus-client's multiprocess mode under gunicorn (its hooks in
controlpanel/gunicorn.conf.py).

Every gunicorn worker writes its counters and histograms to files named after its pid
in PROMETHEUS_MULTIPROC_DIR, and a scrape sums all of them (controlpanel.metrics).
Workers are replaced every GUNICORN_MAX_REQUESTS requests: a dead worker's counts must
stay in the sums, so its files are folded into one `<type>_archive.db` per type, and the
folder holds the live workers' files and two more however long the service has run.

Runs in the gunicorn master, with no Django; prometheus-client is imported only once
PROMETHEUS_MULTIPROC_DIR is set (it reads it at import, and workers forked from the
master inherit what the master imported).
"""

from __future__ import annotations

import fcntl
import logging
import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

log = logging.getLogger("gunicorn.error")

VARIABLE = "PROMETHEUS_MULTIPROC_DIR"
# A fold changes two files (the archive, then the dead worker's); scrapes read under a
# shared lock of this file and folds hold it exclusively, so no scrape sees a worker's
# counts twice or not at all (a counter that went back would read as a reset).
LOCK = "fold.lock"
# The metric types this project's web processes write (no gauges: those are collectors
# reading the database at scrape time).
FOLDED = ("counter", "histogram")


def prepare(*, bind: str) -> Path:
    """At gunicorn's start, before any worker: the folder, emptied (counts start at zero,
    as a single process's would). Unless PROMETHEUS_MULTIPROC_DIR names one, it is
    DATA_DIR/metrics/<listening address>: two gunicorns on one host (web and ingest) never
    share one, and a restart of either empties only its own."""
    default_data = Path(__file__).resolve().parent.parent / "var"
    data_dir = Path(os.environ.get("DATA_DIR", default_data))
    name = "".join(c if c.isalnum() else "_" for c in bind)
    path = Path(os.environ.setdefault(VARIABLE, str(data_dir / "metrics" / name)))
    shutil.rmtree(path, ignore_errors=True)
    path.mkdir(parents=True)
    return path


def fold(pid: int) -> None:
    """Add the dead worker `pid`'s values to the archive files and remove its own; the
    gunicorn master calls this as each worker exits, and nothing else writes the archives.
    It never raises (an error in a gunicorn hook stops the master): a file it could not
    fold stays, counted as before."""
    from prometheus_client import multiprocess

    path = Path(os.environ[VARIABLE])
    try:
        multiprocess.mark_process_dead(pid, str(path))
        with _locked(path, fcntl.LOCK_EX):
            for kind in FOLDED:
                dead = path / f"{kind}_{pid}.db"
                if dead.exists():
                    _add_to(path / f"{kind}_archive.db", dead)
                    os.remove(dead)
    except Exception:
        log.exception("could not fold the metrics of worker %s", pid)


def _add_to(archive_path: Path, dead_path: Path) -> None:
    from prometheus_client.mmap_dict import MmapedDict

    dead = MmapedDict(str(dead_path), read_mode=True)
    archive = MmapedDict(str(archive_path))
    try:
        for key, value, timestamp in dead.read_all_values():
            total, _ = archive.read_value(key)
            archive.write_value(key, total + value, timestamp)
    finally:
        archive.close()
        dead.close()


@contextmanager
def reading(path: str) -> Iterator[None]:
    """Hold while reading the folder's files (a scrape)."""
    with _locked(Path(path), fcntl.LOCK_SH):
        yield


@contextmanager
def _locked(path: Path, mode: int) -> Iterator[None]:
    with open(path / LOCK, "a") as lock:
        fcntl.flock(lock, mode)
        yield  # closing the file releases the lock
