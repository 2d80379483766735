"""The Celery app. The whole beat schedule lives in `controlpanel.schedule`."""

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "controlpanel.settings")

app = Celery("controlpanel")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


@app.on_after_finalize.connect
def _install_schedule(sender: Celery, **kwargs: object) -> None:
    from controlpanel.schedule import beat_schedule

    sender.conf.beat_schedule = beat_schedule()


@app.task(name="controlpanel.ping")
def ping(value: str = "pong") -> str:
    """Round trip used by /readyz-style checks and the worker integration test."""
    return value
