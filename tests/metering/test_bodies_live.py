"""Request bodies over a real socket, under gunicorn as in production
(controlpanel.bodies): chunked bodies are read (within the 1 MiB limit), a body shorter
than its Content-Length is refused with a 400 and writes nothing."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

from metering.models import UsageReading
from tests.processes import chunked, gunicorn_process, http_exchange, process_env

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

PORTS = range(8600, 8700)  # the perf area's live-server ports


@contextmanager
def gunicorn() -> Iterator[int]:
    env = process_env(ALLOWED_HOSTS="127.0.0.1,localhost,testserver", LOG_LEVEL="WARNING")
    with gunicorn_process(PORTS, env=env) as port:
        yield port


def _head(path: str, key: str, *headers: str, content_type: str = "application/json") -> str:
    lines = [f"POST {path} HTTP/1.1", "Host: testserver", f"Content-Type: {content_type}"]
    lines += [f"Authorization: {key}", *headers, "Connection: close"]
    return "\r\n".join(lines) + "\r\n"


def test_chunked_bodies_are_read_and_the_size_limit_still_applies(tenant):
    reading = json.dumps({"instance": "web-1", "boot": "b", "api_calls": 5}).encode()
    logs = [{"error": None, "executionDuration": 3, "functionName": "f", "createdOn": 0}]
    with gunicorn() as port:
        accepted = http_exchange(
            port,
            _head("/api/v1/usage", f"Bearer {tenant.api_key}", "Transfer-Encoding: chunked"),
            chunked(reading),
        )
        big = json.dumps({"readings": [json.loads(reading)] * 30_000}).encode()
        assert len(big) > 1024 * 1024
        too_large = http_exchange(
            port,
            _head("/api/v1/usage/batch", f"Bearer {tenant.api_key}", "Transfer-Encoding: chunked"),
            chunked(big, 65536),
        )
        # The CMS's 2022 client: raw key, text/plain, chunked telemetry; sent twice (a
        # retry), it counts once.
        logs[0]["createdOn"] = int(time.time() * 1000) - 60_000
        batch = json.dumps({"apiKey": tenant.api_key, "version": "5", "logs": logs}).encode()
        head = _head(
            "/telemetry",
            tenant.api_key,
            "Transfer-Encoding: chunked",
            content_type="text/plain;charset=UTF-8",
        )
        telemetry = http_exchange(port, head, chunked(batch))
        retried = http_exchange(port, head, chunked(batch))
    assert accepted == (
        202,
        {"counted": {"api_calls": 5}, "duplicate": False, "reset": False, "late": False},
    )
    assert too_large == (
        413,
        {"message": "The body is larger than 1 MiB; send smaller batches.", "code": "too_large"},
    )
    assert telemetry == (200, {"message": "ok", "counted": 1, "duplicate": False})
    assert retried == (200, {"message": "ok", "counted": 0, "duplicate": True})
    counted = UsageReading.objects.filter(environment=tenant.production)
    assert sorted(counted.values_list("counted_api_calls", flat=True)) == [0, 1, 5]


def test_a_body_shorter_than_its_content_length_is_refused_and_writes_nothing(tenant):
    reading = json.dumps({"instance": "web-1", "boot": "b", "api_calls": 5}).encode()
    with gunicorn() as port:
        truncated = http_exchange(
            port,
            _head(
                "/api/v1/usage", f"Bearer {tenant.api_key}", f"Content-Length: {len(reading) + 10}"
            ),
            reading,
            close_write=True,
        )
        whole = http_exchange(
            port,
            _head("/api/v1/usage", f"Bearer {tenant.api_key}", f"Content-Length: {len(reading)}"),
            reading,
        )
    assert truncated == (
        400,
        {
            "message": f"The body is shorter than its Content-Length ({len(reading)} of "
            f"{len(reading) + 10} bytes); send it whole.",
            "code": "truncated_body",
        },
    )
    assert whole[0] == 202
    assert UsageReading.objects.filter(environment=tenant.production).count() == 1
