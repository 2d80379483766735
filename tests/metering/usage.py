"""Helpers shared by the metering tests."""

from __future__ import annotations

from metering.models import UsageGauge, UsageReading, UsageRollup, UsageSeries


def post_usage(client, key: str | None, body, *, batch: bool = False, **extra):
    headers = {} if key is None else {"HTTP_AUTHORIZATION": f"Bearer {key}"}
    path = "/api/v1/usage/batch" if batch else "/api/v1/usage"
    return client.post(path, body, content_type="application/json", **headers, **extra)


def usage_rows() -> dict[str, int]:
    return {
        "series": UsageSeries.objects.count(),
        "readings": UsageReading.objects.count(),
        "rollups": UsageRollup.objects.count(),
        "gauges": UsageGauge.objects.count(),
    }


NOTHING = {"series": 0, "readings": 0, "rollups": 0, "gauges": 0}
