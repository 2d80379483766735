"""GET /metrics: Prometheus' text format, for the token or an allowed network only; the
counts of ingest, license fetches and GraphQL, and what the database knows (outbox,
open flags, job runs) read at scrape time."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest
from django.utils import timezone
from prometheus_client.parser import text_string_to_metric_families

from controlpanel.models import JobRun, job_run_finished
from metering.compliance.models import Channel, Notification, NotificationStatus, OverageFlag

pytestmark = pytest.mark.django_db

TOKEN = "metrics-token-for-the-tests-0123456789"
READING = {"instance": "web-1", "boot": "b", "api_calls": 7}


@pytest.fixture
def scrape(client, settings):
    settings.METRICS_TOKEN = TOKEN

    def scrape() -> dict[tuple[str, tuple], float]:
        response = client.get("/metrics", HTTP_AUTHORIZATION=f"Bearer {TOKEN}")
        assert response.status_code == 200
        assert response["Content-Type"].startswith("text/plain; version=")
        return _samples(response.content.decode())

    return scrape


def _samples(text: str) -> dict[tuple[str, tuple], float]:
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def _delta(before: dict, after: dict, name: str, **labels: str) -> float:
    key = (name, tuple(sorted(labels.items())))
    return after.get(key, 0.0) - before.get(key, 0.0)


# --- who may scrape ---------------------------------------------------------------------
def test_metrics_are_off_until_a_token_or_a_network_is_configured(client, settings):
    settings.METRICS_TOKEN, settings.METRICS_ALLOWED_NETWORKS = "", []
    response = client.get("/metrics")
    assert response.status_code == 404
    assert "METRICS_TOKEN" in response.json()["message"]


@pytest.mark.parametrize(
    "authorization", ["", f"Bearer {TOKEN}x", f"Bearer {TOKEN[:-1]}", TOKEN, "Bearer é"]
)
def test_a_wrong_or_missing_token_is_refused(client, settings, authorization):
    settings.METRICS_TOKEN = TOKEN
    response = client.get("/metrics", HTTP_AUTHORIZATION=authorization)
    assert response.status_code == 403
    assert response.json()["code"] == "forbidden"
    assert b"controlpanel_" not in response.content


def test_the_token_is_accepted(client, settings):
    settings.METRICS_TOKEN = TOKEN
    response = client.get("/metrics", HTTP_AUTHORIZATION=f"bearer {TOKEN}")
    assert response.status_code == 200
    assert b"# TYPE controlpanel_ingest_request_seconds histogram" in response.content


@pytest.mark.parametrize(
    ("networks", "address", "status"),
    [
        (["10.0.0.0/8", "127.0.0.0/8"], "127.0.0.1", 200),
        (["10.1.2.0/24"], "10.1.2.9", 200),
        (["10.1.2.0/24"], "10.1.3.9", 403),
        (["fd00::/8"], "fd00::1", 200),
        (["fd00::/8"], "192.168.0.1", 403),
    ],
)
def test_an_allowed_network_needs_no_token(client, settings, networks, address, status):
    settings.METRICS_TOKEN, settings.METRICS_ALLOWED_NETWORKS = "", networks
    # X-Forwarded-For never counts: only the connection's own address.
    response = client.get("/metrics", REMOTE_ADDR=address, HTTP_X_FORWARDED_FOR="127.0.0.1")
    assert response.status_code == status


def test_metrics_are_not_redirected_to_https(client, settings):
    """Prometheus scrapes the services over the internal network, in plain HTTP."""
    settings.SECURE_SSL_REDIRECT = True
    settings.METRICS_TOKEN = TOKEN
    response = client.get("/metrics", HTTP_AUTHORIZATION=f"Bearer {TOKEN}")
    assert response.status_code == 200


# --- what the processes counted -----------------------------------------------------------
def test_ingest_counts_readings_accepted_and_requests_refused_by_reason(client, tenant, scrape):
    before = scrape()
    bearer = {"HTTP_AUTHORIZATION": f"Bearer {tenant.api_key}"}
    post = client.post
    assert post("/api/v1/usage", READING, "application/json", **bearer).status_code == 202
    batch = {"readings": [READING, {**READING, "instance": "web-2"}, READING]}
    assert post("/api/v1/usage/batch", batch, "application/json", **bearer).status_code == 202
    assert post("/api/v1/usage", READING, "application/json").status_code == 401
    bad = {**READING, "api_calls": -1}
    assert post("/api/v1/usage", bad, "application/json", **bearer).status_code == 400
    as_text = {"data": json.dumps(READING), "content_type": "text/plain", **bearer}
    assert post("/api/v1/usage", **as_text).status_code == 415
    telemetry = {"apiKey": tenant.api_key, "version": "5.40.0", "logs": [{"createdOn": 0}]}
    assert post("/telemetry", json.dumps(telemetry), "text/plain").status_code == 400
    logs = [{"createdOn": int(timezone.now().timestamp() * 1000) - i} for i in range(4)]
    telemetry["logs"] = logs
    assert post("/telemetry", json.dumps(telemetry), "text/plain").status_code == 200
    after = scrape()

    accepted = "controlpanel_ingest_readings_accepted_total"
    assert _delta(before, after, accepted, endpoint="usage") == 1
    assert _delta(before, after, accepted, endpoint="usage_batch") == 3
    assert _delta(before, after, accepted, endpoint="telemetry") == 4
    refused = "controlpanel_ingest_requests_refused_total"
    assert _delta(before, after, refused, endpoint="usage", reason="missing") == 1
    assert _delta(before, after, refused, endpoint="usage", reason="unsupported_media_type") == 1
    usage_refusals = [key for key in after if key[0] == refused and ("endpoint", "usage") in key[1]]
    assert sum(after[key] - before.get(key, 0) for key in usage_refusals) == 3
    assert _delta(before, after, refused, endpoint="telemetry", reason="400") == 1
    seconds = "controlpanel_ingest_request_seconds_count"
    assert _delta(before, after, seconds, endpoint="usage") == 4
    assert _delta(before, after, seconds, endpoint="usage_batch") == 1
    assert _delta(before, after, seconds, endpoint="telemetry") == 2


def test_license_fetches_are_counted_by_outcome(client, tenant, scrape):
    before = scrape()
    path = f"/orgs/{tenant.organization.slug}/projects/{tenant.project.slug}/license"
    assert client.get(path, HTTP_AUTHORIZATION=tenant.api_key).status_code == 200
    assert client.get(path, HTTP_AUTHORIZATION=tenant.api_key).status_code == 200
    assert client.get(path).status_code in (401, 403)
    after = scrape()
    fetches = "controlpanel_license_fetches_total"
    assert _delta(before, after, fetches, outcome="served") == 2
    assert _delta(before, after, fetches, outcome="refused") == 1
    assert _delta(before, after, fetches, outcome="unavailable") == 0


def test_graphql_operations_are_counted_by_the_clis_names_only(client, scrape):
    before = scrape()
    get_user = {"query": "query GetUser { users { getCurrentUser { id email } } }"}
    assert client.post("/graphql", get_user, "application/json").status_code == 200
    generate = {"query": "mutation GenerateUserPat { users { generateUserPat } }"}
    assert client.post("/graphql", generate, "application/json").status_code == 200
    invented = {"query": "query Invented123 { __typename }"}
    client.post("/graphql", invented, "application/json")
    client.post("/graphql", "{", "application/json")
    after = scrape()
    operations = "controlpanel_graphql_operations_total"
    assert _delta(before, after, operations, operation="GetUser", outcome="refused") == 1
    assert _delta(before, after, operations, operation="GenerateUserPat", outcome="ok") == 1
    assert _delta(before, after, operations, operation="other", outcome="ok") == 1
    assert _delta(before, after, operations, operation="other", outcome="refused") == 1
    assert not any("Invented123" in str(labels) for _, labels in after)


# --- what the database knows, at scrape time ----------------------------------------------
def test_outbox_flags_and_job_runs_come_from_the_database(tenant, scrape):
    now = timezone.now()
    for i, age in enumerate((600, 30)):
        Notification.objects.create(
            organization=tenant.organization,
            topic=f"event:{i}",
            channel=Channel.EMAIL,
            recipient="owner@acme.example",
            subject="s",
            created_at=now - dt.timedelta(seconds=age),
        )
    Notification.objects.create(
        organization=tenant.organization,
        topic="event:9",
        channel=Channel.EMAIL,
        recipient="owner@acme.example",
        subject="s",
        status=NotificationStatus.SENT,
        created_at=now - dt.timedelta(days=3),
    )
    contract = tenant.organization.contracts.get()
    flags = [("seats", "warning", None), ("tenants", "warning", None), ("seats", "exceeded", now)]
    for metric, level, resolved in flags:
        OverageFlag.objects.create(
            contract=contract,
            organization=tenant.organization,
            metric=metric,
            scope="organization",
            level=level,
            period_start=now - dt.timedelta(days=1),
            value=900,
            limit=1000,
            resolved_at=resolved,
        )
    job_run_finished(name="metering.compliance.evaluate", finished=now, seconds=1.5, succeeded=True)
    job_run_finished(
        name="metering.compliance.evaluate", finished=now, seconds=0.5, succeeded=False
    )

    samples = scrape()

    assert samples[("controlpanel_outbox_pending", ())] == 2
    assert 600 <= samples[("controlpanel_outbox_oldest_pending_age_seconds", ())] < 660
    assert samples[("controlpanel_flags_open", (("level", "warning"),))] == 2
    assert samples[("controlpanel_flags_open", (("level", "exceeded"),))] == 0
    assert samples[("controlpanel_flags_open", (("level", "reporting_gap"),))] == 0
    task = (("task", "metering.compliance.evaluate"),)
    assert samples[("controlpanel_job_runs_total", (("outcome", "success"), *task))] == 1
    assert samples[("controlpanel_job_runs_total", (("outcome", "failure"), *task))] == 1
    assert samples[("controlpanel_job_duration_seconds_count", task)] == 2
    assert samples[("controlpanel_job_duration_seconds_sum", task)] == 2.0
    assert samples[("controlpanel_job_last_success_timestamp_seconds", task)] == now.timestamp()
    row = JobRun.objects.get()
    assert (row.runs, row.failures, row.last_outcome, row.last_seconds) == (2, 1, "failure", 0.5)
    assert row.last_succeeded_at == now


def test_the_database_figures_cost_a_fixed_number_of_queries(
    tenant, scrape, django_assert_num_queries
):
    scrape()
    with django_assert_num_queries(4):
        scrape()


# --- under gunicorn, as deployed --------------------------------------------------------------
@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_the_ingest_service_sums_every_workers_counts_across_worker_restarts(tenant):
    """Two workers, each replaced every 3 requests: the scrape still sums every reading
    (prometheus-client's multiprocess mode, dead workers' files folded into archives)."""
    import httpx

    from tests.processes import gunicorn_process, process_env

    env = process_env(
        DJANGO_SETTINGS_MODULE="controlpanel.settings_ingest",
        ALLOWED_HOSTS="127.0.0.1,localhost",
        LOG_LEVEL="WARNING",
        METRICS_TOKEN=TOKEN,
    )
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    args = ("--config", "controlpanel/gunicorn.conf.py", "--max-requests", "3")
    # sync workers: a gthread worker that reaches its limit resets the connections it
    # had accepted and not yet read, which a client would have to retry.
    args += ("--max-requests-jitter", "0", "--worker-class", "sync")
    with gunicorn_process(range(8750, 8800), workers=2, env=env, args=args) as port:
        base = f"http://127.0.0.1:{port}"
        bearer = {"Authorization": f"Bearer {tenant.api_key}"}
        for i in range(20):
            reading = {**READING, "api_calls": i + 1}
            answer = httpx.post(f"{base}/api/v1/usage", json=reading, headers=bearer)
            assert answer.status_code == 202
        httpx.post(f"{base}/api/v1/usage", json=READING)  # no key: refused
        scraped = httpx.get(f"{base}/metrics", headers={"Authorization": f"Bearer {TOKEN}"})
        folder = next(Path(env["DATA_DIR"]).glob("metrics/*"))
        files = sorted(p.name for p in folder.glob("*.db"))
    assert scraped.status_code == 200
    samples = _samples(scraped.text)
    accepted = ("controlpanel_ingest_readings_accepted_total", (("endpoint", "usage"),))
    assert samples[accepted] == 20
    refused = (("endpoint", "usage"), ("reason", "missing"))
    assert samples[("controlpanel_ingest_requests_refused_total", refused)] == 1
    assert samples[("controlpanel_ingest_request_seconds_count", (("endpoint", "usage"),))] == 21
    # The lean service serves its own counts only: the database's figures are web's.
    assert not any(name.startswith("controlpanel_outbox") for name, _ in samples)
    # 22 requests made at least 6 workers: the live ones' files and the archives remain.
    assert "counter_archive.db" in files and "histogram_archive.db" in files
    assert len(files) <= 2 + 2 * 2, files
