"""The Celery app. The whole beat schedule lives in `controlpanel.schedule`."""

import os

from celery import Celery
from celery.signals import setup_logging

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "controlpanel.settings")

app = Celery("controlpanel")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


@app.on_after_finalize.connect
def _install_schedule(sender: Celery, **kwargs: object) -> None:
    from controlpanel.schedule import beat_schedule

    sender.conf.beat_schedule = beat_schedule()


def _django_logging(**kwargs: object) -> None:
    """The worker logs as Django's LOGGING says (JSON lines) instead of Celery's format."""
    from django.conf import settings

    from controlpanel.logs import configure

    configure(settings.LOGGING)


if os.environ.get("LOG_FORMAT") == "json":
    # Celery configures logging itself unless someone receives this signal.
    setup_logging.connect(_django_logging, weak=False)


@app.task(name="controlpanel.ping")
def ping(value: str = "pong") -> str:
    """Round trip used by /readyz-style checks and the worker integration test."""
    return value
