"""Run the Control Panel on the embedded defaults (`make run`): migrate, load the demo data,
then the web server, a Celery worker and Celery beat together.

One process owns the whole run, database server included: Ctrl-C (SIGINT) or SIGTERM stops
the three processes and then the embedded PostgreSQL server (unless another process, such
as a test run, still uses it), and if one of the three dies the others are stopped too, so
nothing is left running half-alive.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from typing import Any

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandParser


class Command(BaseCommand):
    help = "Migrate, load the demo data, then run web + Celery worker + Celery beat."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--host", default="127.0.0.1")
        parser.add_argument("--port", type=int, default=8000)
        parser.add_argument("--no-demo", action="store_true", help="skip loading demo data")

    def handle(self, *args: Any, host: str, port: int, no_demo: bool, **options: Any) -> None:
        # Until the supervisor loop runs, SIGTERM interrupts like Ctrl-C, so a stop during
        # the migration still reaches the `finally` that lets go of the database server.
        signal.signal(signal.SIGTERM, signal.default_int_handler)
        exit_code = 0
        try:
            call_command("migrate", interactive=False, verbosity=1)
            if not no_demo:
                call_command("demo", url=f"http://{host}:{port}")
            exit_code = self._supervise(host, port)
        except KeyboardInterrupt:
            exit_code = 130
        finally:
            self._release_database()
        sys.exit(exit_code)

    def _supervise(self, host: str, port: int) -> int:
        python = sys.executable
        manage = str(settings.BASE_DIR / "manage.py")
        celery = [python, "-m", "celery", "-A", "controlpanel"]
        commands = {
            "web": [python, manage, "runserver", f"{host}:{port}", "--noreload"],
            # solo pool: one process is plenty for the embedded broker.
            "worker": [*celery, "worker", "--pool=solo", "--loglevel=INFO"],
            "beat": [
                *celery,
                "beat",
                "--loglevel=INFO",
                "--schedule",
                settings.CELERY_BEAT_SCHEDULE_FILENAME,
            ],
        }
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        stopping = False

        def stop(signum: int, frame: object) -> None:
            nonlocal stopping
            stopping = True

        signal.signal(signal.SIGINT, stop)
        signal.signal(signal.SIGTERM, stop)
        procs = {name: subprocess.Popen(cmd, env=env) for name, cmd in commands.items()}
        self.stdout.write(
            f"Control Panel on http://{host}:{port}/ (admin: /admin/, API docs: /api/docs/)\n"
            f"worker and beat running on {settings.CELERY_BROKER_URL.split('://')[0]}://; "
            "Ctrl-C stops everything."
        )
        exit_code = 0
        while not stopping:
            for name, proc in procs.items():
                if proc.poll() is not None:
                    self.stderr.write(f"{name} exited with {proc.returncode}; stopping the rest")
                    exit_code = proc.returncode or 1
                    stopping = True
                    break
            else:
                time.sleep(0.5)  # a supervisor's poll interval, not a test wait
        for proc in procs.values():
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + 15
        for proc in procs.values():
            try:
                proc.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        return exit_code

    def _release_database(self) -> None:
        if "DATABASE_URL" in os.environ:
            return  # a server of its own: not ours to stop
        from django.db import connections

        from controlpanel import embedded_db

        connections.close_all()
        if embedded_db.release(settings.EMBEDDED_POSTGRES_DIR):
            self.stdout.write("embedded PostgreSQL stopped")
        else:
            self.stdout.write("embedded PostgreSQL left running: another process uses it")
