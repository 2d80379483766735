"""The compliance jobs through a real Celery worker and beat, against Redis and
PostgreSQL, when the worker is killed in the middle of an evaluation: the rerun gives the
same flag and no duplicate notification. (Usage pushed over HTTP and a Redis outage:
test_outage.py.)"""

from __future__ import annotations

import datetime as dt
import os
import signal
import subprocess
import threading

import pytest
from django.db import connection, transaction
from django.utils import timezone

from metering.compliance.models import FlagEvent, Notification, OverageFlag
from metering.compliance.services import webhook_endpoint_create
from tests.conftest import make_tenant
from tests.metering.compliance.hooks import receiver
from tests.metering.compliance.usage import add_calls
from tests.processes import celery_process, process_env, wait_until

pytestmark = [
    pytest.mark.slow,
    pytest.mark.redis,
    pytest.mark.django_db(transaction=True),
]


class Log:
    """Collects a process's output lines (so the pipe never fills up)."""

    def __init__(self, proc: subprocess.Popen) -> None:
        self.lines: list[str] = []
        self._thread = threading.Thread(target=self._read, args=(proc,), daemon=True)
        self._thread.start()

    def _read(self, proc: subprocess.Popen) -> None:
        for raw in proc.stdout:
            self.lines.append(raw.decode(errors="replace"))

    def count(self, text: str) -> int:
        return sum(text in line for line in list(self.lines))


def env(tmp_path):
    return process_env(
        COMPLIANCE_EVALUATE_EVERY="1",
        COMPLIANCE_NOTIFY_EVERY="1",
        COMPLIANCE_GAPS_EVERY="3600",
        COMPLIANCE_CLOSE_EVERY="3600",
        COMPLIANCE_REMINDERS_EVERY="3600",
        COMPLIANCE_RETENTION_EVERY="3600",
    )


def beat(tmp_path):
    return celery_process(
        "beat",
        "--loglevel=WARNING",
        "--schedule",
        str(tmp_path / "beat-schedule"),
        env=env(tmp_path),
    )


def worker(tmp_path, name: str):
    return celery_process(
        "worker",
        "--pool=solo",
        "--loglevel=INFO",
        "--purge",
        "-n",
        f"{name}@%h",
        env=env(tmp_path),
    )


def over_the_limit(hook_url: str):
    now = timezone.now()
    t = make_tenant(
        "acme",
        starts_on=now.date() - dt.timedelta(days=3),
        ends_on=now.date() + dt.timedelta(days=300),
        api_calls_per_period=1000,
    )
    webhook_endpoint_create(organization=t.organization, url=hook_url, created_by=t.owner)
    add_calls(t.production, now, 850)  # warning (80 %), not exceeded
    return t


def delivered_once_each(t, hook) -> bool:
    rows = list(Notification.objects.values_list("recipient", "status"))
    expected = {t.owner.email, t.admin.email, hook.url}
    return (
        sorted(r for r, _ in rows) == sorted(expected)
        and {s for _, s in rows} == {"sent"}
        and len(hook.received) == 1
    )


def assert_exactly_one_flag_and_one_message_per_recipient(t, hook):
    assert list(OverageFlag.objects.values_list("metric", "level", "value", "limit")) == [
        ("api_calls", "warning", 850, 1000)
    ]
    assert FlagEvent.objects.count() == 1
    assert sorted(Notification.objects.values_list("recipient", "status", "attempts")) == sorted(
        [(t.owner.email, "sent", 1), (t.admin.email, "sent", 1), (hook.url, "sent", 1)]
    )
    assert [r["json"]["type"] for r in hook.received] == ["flag.raised"]


def _blocked_evaluation_pid() -> int | None:
    """The PostgreSQL backend of a worker stuck inserting flags behind our lock."""
    with connection.cursor() as cursor:
        # Activity statistics are a per-transaction snapshot: refresh it on each poll.
        cursor.execute("SELECT pg_stat_clear_snapshot()")
        cursor.execute(
            "SELECT pid FROM pg_stat_activity WHERE datname = current_database() "
            "AND wait_event_type = 'Lock' AND query LIKE '%%INSERT INTO \"metering_overageflag\"%%'"
        )
        row = cursor.fetchone()
    return row[0] if row else None


def test_a_worker_killed_mid_evaluation_leaves_no_trace_and_the_rerun_notifies_once(
    tmp_path, settings
):
    settings.WEBHOOK_ALLOW_HTTP = True
    with receiver() as hook:
        t = over_the_limit(hook.url)
        with beat(tmp_path):
            # Hold the flag table so the evaluation stops in the middle of its transaction.
            with transaction.atomic():
                with connection.cursor() as cursor:
                    cursor.execute('LOCK TABLE "metering_overageflag" IN EXCLUSIVE MODE')
                with worker(tmp_path, "doomed") as doomed:
                    Log(doomed)
                    backend = wait_until(_blocked_evaluation_pid, timeout=90)
                    os.kill(doomed.pid, signal.SIGKILL)
                    doomed.wait(timeout=30)
                # The killed worker's session would roll back at its next write; end it
                # now rather than wait for that.
                with connection.cursor() as cursor:
                    cursor.execute("SELECT pg_terminate_backend(%s)", [backend])
            assert (OverageFlag.objects.count(), Notification.objects.count()) == (0, 0)
            with worker(tmp_path, "w2") as w:
                log = Log(w)
                wait_until(lambda: delivered_once_each(t, hook), timeout=90)
                runs = log.count("metering.compliance.evaluate[")
                wait_until(
                    lambda: log.count("metering.compliance.evaluate[") >= runs + 4, timeout=60
                )
        assert_exactly_one_flag_and_one_message_per_recipient(t, hook)
