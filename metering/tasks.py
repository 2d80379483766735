"""Celery tasks of metering: adapters that call one service each.

The compliance jobs are idempotent (unique keys and conditional updates), so they are
`acks_late`: a worker killed mid-run leaves the message to be redelivered and rerun.
"""

from __future__ import annotations

from celery import shared_task

from metering.compliance import jobs


def _run(name: str) -> str:
    return jobs.run(name).summary()


@shared_task(name="metering.compliance.evaluate", acks_late=True)
def evaluate_contracts() -> str:
    return _run("evaluate")


@shared_task(name="metering.compliance.send_notifications", acks_late=True)
def send_notifications() -> str:
    return _run("send")


@shared_task(name="metering.compliance.reporting_gaps", acks_late=True)
def detect_reporting_gaps() -> str:
    return _run("gaps")


@shared_task(name="metering.compliance.close_periods", acks_late=True)
def close_periods() -> str:
    return _run("close-periods")


@shared_task(name="metering.compliance.expiry_reminders", acks_late=True)
def send_expiry_reminders() -> str:
    return _run("reminders")


@shared_task(name="metering.compliance.retention", acks_late=True)
def prune_readings() -> str:
    return _run("retention")


@shared_task(name="metering.compliance.partitions", acks_late=True)
def ensure_partitions() -> str:
    return _run("partitions")
