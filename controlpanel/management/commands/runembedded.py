"""Run the web server, a Celery worker and Celery beat together (`make run`).

One process group: Ctrl-C (SIGINT) or SIGTERM stops all three cleanly, and if one of
them dies the others are stopped too, so nothing is left running half-alive.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandParser


class Command(BaseCommand):
    help = "Start web + Celery worker + Celery beat on the embedded defaults."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--host", default="127.0.0.1")
        parser.add_argument("--port", type=int, default=8000)

    def handle(self, *args: Any, host: str, port: int, **options: Any) -> None:
        python = sys.executable
        manage = str(settings.BASE_DIR / "manage.py")
        celery = [python, "-m", "celery", "-A", "controlpanel"]
        commands = {
            "web": [python, manage, "runserver", f"{host}:{port}", "--noreload"],
            # solo pool: one process is plenty for the embedded broker and SQLite.
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
        procs = {name: subprocess.Popen(cmd, env=env) for name, cmd in commands.items()}
        self.stdout.write(
            f"Control Panel on http://{host}:{port}/ (admin: /admin/, API docs: /api/docs/)\n"
            f"worker and beat running on {settings.CELERY_BROKER_URL.split('://')[0]}://; "
            "Ctrl-C stops everything."
        )
        stopping = False

        def stop(signum: int, frame: object) -> None:
            nonlocal stopping
            stopping = True

        signal.signal(signal.SIGINT, stop)
        signal.signal(signal.SIGTERM, stop)
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
        sys.exit(exit_code)
