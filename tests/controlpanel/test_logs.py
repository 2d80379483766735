"""LOG_FORMAT=json: every log record one JSON line; one line per request (route, status,
duration, the organization and environment a URL names) and one per job run (task,
duration, outcome). Never an IP address, a user name or a key: the telemetry promise."""

from __future__ import annotations

import json
import logging

import pytest
from django.conf import settings
from django.test import override_settings

from controlpanel.logs import JsonFormatter
from controlpanel.models import JobRun
from tests.controlpanel.test_settings import run

pytestmark = pytest.mark.django_db

REQUEST_LOGGING = {"MIDDLEWARE": ["controlpanel.logs.RequestLogMiddleware", *settings.MIDDLEWARE]}


def _lines(caplog, logger: str) -> list[dict]:
    formatter = JsonFormatter()
    return [json.loads(formatter.format(r)) for r in caplog.records if r.name == logger]


def test_one_json_line_per_request_with_route_status_duration_and_ids(client, tenant, caplog):
    environment = tenant.production
    client.force_login(tenant.owner)
    org = tenant.organization.slug
    project = tenant.project.slug
    with override_settings(**REQUEST_LOGGING), caplog.at_level(logging.INFO):
        client.get(f"/{org}/")
        client.post(
            f"/{org}/projects/{project}/environments/{environment.id}/keys",
            REMOTE_ADDR="203.0.113.9",
        )
        client.post(
            "/api/v1/usage",
            {"instance": "a", "api_calls": 1},
            "application/json",
            HTTP_AUTHORIZATION=f"Bearer {tenant.api_key}",
            REMOTE_ADDR="203.0.113.9",
        )
        client.get(f"/orgs/{org}/projects/{project}/license?token=secret-in-a-query")
    lines = _lines(caplog, "controlpanel.requests")

    assert [(line["method"], line["view"], line["status"]) for line in lines] == [
        ("GET", "web:dashboard", 200),
        ("POST", "web:key-issue", 200),
        ("POST", "usage", 202),
        ("GET", "wcp-license", 401),
    ]
    dashboard, keys, usage, license_fetch = lines
    assert dashboard["route"] == "<slug:org>/"
    assert dashboard["org"] == org
    assert (keys["org"], keys["environment"]) == (org, environment.id)
    assert usage["route"] == "api/v1/usage"
    assert "org" not in usage
    assert license_fetch["org"] == org
    for line in lines:
        assert set(line) >= {"time", "level", "logger", "message", "duration_ms"}
        assert isinstance(line["duration_ms"], float) and line["duration_ms"] >= 0
        text = json.dumps(line)
        for private in ("203.0.113.9", "127.0.0.1", tenant.owner.email, tenant.api_key, "secret"):
            assert private not in text


def test_log_format_json_makes_every_line_json_and_logs_requests_first(tmp_path):
    code = (
        "import django, logging; from django.conf import settings as s; django.setup(); "
        "print(s.MIDDLEWARE[0]); "
        "logging.getLogger('controlpanel.x').warning('hello %s', 'there', "
        "extra={'fields': {'task': 't', 'duration_ms': 1.5}})"
    )
    env = {"DEBUG": "1", "DATA_DIR": str(tmp_path), "LOG_FORMAT": "json"}
    env["DATABASE_URL"] = "postgres://u:p@db.internal:5432/cp"
    out = run(env, code)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "controlpanel.logs.RequestLogMiddleware"
    line = json.loads(out.stderr.strip().splitlines()[-1])
    assert line["message"] == "hello there"
    assert (line["level"], line["logger"]) == ("WARNING", "controlpanel.x")
    assert (line["task"], line["duration_ms"]) == ("t", 1.5)

    text = run({**env, "LOG_FORMAT": "text"}, code)
    assert text.stdout.strip() == "controlpanel.edges.ApiErrorsMiddleware"
    assert text.stderr.strip().splitlines()[-1] == "hello there"
    refused = run({**env, "LOG_FORMAT": "xml"}, code)
    assert "LOG_FORMAT must be text or json" in refused.stderr


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_a_worker_logs_one_json_line_per_job_run_and_counts_it_in_a_row():
    from controlpanel.celery import app
    from controlpanel.tasks import heartbeat
    from tests.processes import celery_process, process_env, wait_until

    env = process_env(LOG_FORMAT="json", LOG_LEVEL="INFO")
    # --quiet: no start-up banner (plain text).
    with celery_process("--quiet", "worker", "--pool=solo", env=env) as worker:
        assert heartbeat.delay().get(timeout=60) is None
        # ping takes one argument: the run fails (send_task checks no signature).
        failed = app.send_task("controlpanel.ping", args=["a", "b"])
        wait_until(lambda: failed.ready(), timeout=60)
        wait_until(lambda: JobRun.objects.filter(name="controlpanel.ping").exists())
    output = worker.stdout.read().decode()

    lines = [raw for raw in output.splitlines() if raw.strip()]
    # Every line is JSON but the notice Celery prints as it stops.
    assert [raw for raw in lines if not raw.startswith("{")] == [
        "worker: Warm shutdown (MainProcess)"
    ]
    records = [json.loads(raw) for raw in lines if raw.startswith("{")]
    jobs = [record for record in records if record["logger"] == "controlpanel.jobs"]
    assert [(j["task"], j["outcome"]) for j in jobs] == [
        ("controlpanel.heartbeat", "success"),
        ("controlpanel.ping", "failure"),
    ]
    assert all(isinstance(j["duration_ms"], float) for j in jobs)
    rows = {r.name: (r.runs, r.failures, r.last_outcome) for r in JobRun.objects.all()}
    assert rows == {
        "controlpanel.heartbeat": (1, 0, "success"),
        "controlpanel.ping": (1, 1, "failure"),
    }
