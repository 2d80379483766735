"""Every periodic job, in one place.

Each entry expires after about 1.5x its interval, so a backlog after an outage does not
replay the same job many times over: the next tick does the work anyway.
"""

from __future__ import annotations

from typing import Any


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
    }
