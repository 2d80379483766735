"""The fast lane under a real gunicorn (as in production): what goes over the wire is
what Django's handler answers for the same request, and readings are recorded."""

from __future__ import annotations

import http.client
import json
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from django.core.handlers.wsgi import WSGIHandler

from metering.models import UsageReading
from tests.metering.wsgi_lane import call, connections_kept, environ
from tests.processes import gunicorn_process, process_env

PORTS = range(8600, 8700)  # the perf area's live-server ports
SERVER_HEADERS = {"date", "server", "connection"}  # added by gunicorn either way


@contextmanager
def gunicorn() -> Iterator[int]:
    env = process_env(ALLOWED_HOSTS="127.0.0.1,localhost,testserver", LOG_LEVEL="WARNING")
    with gunicorn_process(PORTS, env=env) as port:
        yield port


def _post(port: int, path: str, body: str, headers: dict[str, str]):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    conn.request("POST", path, body=body, headers={"Host": "testserver", **headers})
    response = conn.getresponse()
    kept = [(k, v) for k, v in response.getheaders() if k.lower() not in SERVER_HEADERS]
    return f"{response.status} {response.reason}", kept, response.read()


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_gunicorn_serves_the_lane_with_djangos_answers(tenant):
    good = json.dumps({"instance": "web-1", "api_calls": 5})
    json_type = {"Content-Type": "application/json"}
    with gunicorn() as port:
        accepted = _post(
            port, "/api/v1/usage", good, {**json_type, "Authorization": f"Bearer {tenant.api_key}"}
        )
        repeat = _post(
            port,
            "/api/v1/usage/batch",
            json.dumps({"readings": [json.loads(good)]}),
            {**json_type, "Authorization": f"Bearer {tenant.api_key}"},
        )
        refused = _post(port, "/api/v1/usage", good, json_type)
        wrong_type = _post(
            port, "/api/v1/usage", good, {"Content-Type": "text/plain", "Authorization": "x"}
        )
    assert accepted[0] == "202 Accepted"
    assert json.loads(accepted[2]) == {
        "counted": {"api_calls": 5},
        "duplicate": False,
        "reset": False,
        "late": False,
    }
    assert json.loads(repeat[2])["results"][0]["duplicate"] is True
    assert UsageReading.objects.filter(environment=tenant.production).count() == 2
    # Refusals need no database: Django's handler, in this process, answers the same.
    for answer, extra, content_type in (
        (refused, {}, "application/json"),
        (wrong_type, {"HTTP_AUTHORIZATION": "x"}, "text/plain"),
    ):
        with connections_kept():
            django = call(
                WSGIHandler(), environ("/api/v1/usage", good, content_type=content_type, **extra)
            )
        assert answer == django
        assert answer[0] == "401 Unauthorized"
