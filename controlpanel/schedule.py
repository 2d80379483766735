"""Every periodic job, in one place.

Each entry expires after about 1.5x its interval, so a backlog after an outage does not
replay the same job many times over: the next tick does the work anyway.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings


def _every(seconds: int, task: str, **kwargs: Any) -> dict[str, Any]:
    return {
        "task": task,
        "schedule": float(seconds),
        "options": {"expires": seconds * 1.5},
        **kwargs,
    }


def beat_schedule() -> dict[str, dict[str, Any]]:
    return {
        "heartbeat": _every(60, "controlpanel.heartbeat"),
        # --- compliance (intervals in settings: COMPLIANCE_*_EVERY) ---
        "compliance-evaluate": _every(
            settings.COMPLIANCE_EVALUATE_EVERY, "metering.compliance.evaluate"
        ),
        "compliance-send-notifications": _every(
            settings.COMPLIANCE_NOTIFY_EVERY, "metering.compliance.send_notifications"
        ),
        "compliance-reporting-gaps": _every(
            settings.COMPLIANCE_GAPS_EVERY, "metering.compliance.reporting_gaps"
        ),
        "compliance-close-periods": _every(
            settings.COMPLIANCE_CLOSE_EVERY, "metering.compliance.close_periods"
        ),
        "compliance-expiry-reminders": _every(
            settings.COMPLIANCE_REMINDERS_EVERY, "metering.compliance.expiry_reminders"
        ),
        "compliance-retention": _every(
            settings.COMPLIANCE_RETENTION_EVERY, "metering.compliance.retention"
        ),
        # The raw readings' monthly partitions, made months ahead (metering.partitions).
        "compliance-partitions": _every(
            settings.COMPLIANCE_PARTITIONS_EVERY, "metering.compliance.partitions"
        ),
    }
