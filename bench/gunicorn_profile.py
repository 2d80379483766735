"""Extra gunicorn config for `bench/ingest --profile DIR`: cProfile every worker from fork
to exit and write DIR/worker-<pid>.prof (read with `python -m pstats`)."""

import cProfile
import os

_profiles: dict[int, cProfile.Profile] = {}


def post_fork(server, worker):
    profile = cProfile.Profile()
    _profiles[os.getpid()] = profile
    profile.enable()


def worker_exit(server, worker):
    profile = _profiles.pop(os.getpid(), None)
    if profile is not None:
        profile.disable()
        profile.dump_stats(
            os.path.join(os.environ["BENCH_PROFILE_DIR"], f"worker-{os.getpid()}.prof")
        )
