"""Extra gunicorn config for `bench/ingest --profile DIR`: cProfile every worker from fork
to exit and write DIR/worker-<pid>.prof (read with `python -m pstats`). cProfile sees
only the thread that enables it: profile with `--worker-class sync`."""

import cProfile
import os
import time
from pathlib import Path

# Everything of the production config (bind, workers, worker class...), plus the hooks.
_base = Path(__file__).resolve().parent.parent / "controlpanel" / "gunicorn.conf.py"
exec(compile(_base.read_text(), str(_base), "exec"))

_profiles: dict[int, cProfile.Profile] = {}


def post_fork(server, worker):
    # CPU time, not wall time: on a shared box, waiting for a core is not the app's cost.
    profile = cProfile.Profile(time.process_time)
    _profiles[os.getpid()] = profile
    profile.enable()


def worker_exit(server, worker):
    profile = _profiles.pop(os.getpid(), None)
    if profile is not None:
        profile.disable()
        profile.dump_stats(
            os.path.join(os.environ["BENCH_PROFILE_DIR"], f"worker-{os.getpid()}.prof")
        )
