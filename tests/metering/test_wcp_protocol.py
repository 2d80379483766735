"""The existing CMS client's protocol: seat/tenant +1/-1 and telemetry, exactly as the
client sends them (raw `authorization` header, JSON as text/plain)."""

from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal

import pytest
import time_machine
from django.utils import timezone

from accounts.models import OverageMode
from accounts.services.api_keys import api_key_issue
from accounts.services.organizations import contract_end, environment_set_status
from metering.models import ReadingSource, UsageGauge, UsageReading, UsageRollup
from tests.factories import EnvironmentFactory
from tests.metering.usage import NOTHING, usage_rows

pytestmark = pytest.mark.django_db

TEXT = "text/plain;charset=UTF-8"
NOW = dt.datetime(2026, 11, 22, 10, 30, tzinfo=dt.UTC)


def _gauge_post(
    client, tenant, metric, operation, *, key=None, content_type=TEXT, org=None, project=None
):
    org = org or tenant.organization.slug
    project = project or tenant.project.slug
    return client.post(
        f"/orgs/{org}/projects/{project}/package/{metric}",
        json.dumps({"operation": operation}),
        content_type=content_type,
        HTTP_AUTHORIZATION=key if key is not None else tenant.api_key,
    )


def _gauge(tenant, metric):
    return UsageGauge.objects.get(environment=tenant.production, metric=metric).value


@pytest.mark.parametrize("metric", ["seats", "tenants"])
def test_increment_and_decrement_move_the_count(client, tenant, metric):
    assert _gauge_post(client, tenant, metric, "increment").status_code == 200
    response = _gauge_post(client, tenant, metric, "increment", content_type="application/json")
    assert response.status_code == 200
    assert response.json()["count"] == 2
    assert _gauge_post(client, tenant, metric, "decrement").json()["count"] == 1
    assert _gauge(tenant, metric) == 1
    readings = UsageReading.objects.order_by("id")
    source = ReadingSource.WCP_SEATS if metric == "seats" else ReadingSource.WCP_TENANTS
    assert [(r.source, getattr(r, metric)) for r in readings] == [
        (source, 1),
        (source, 2),
        (source, 1),
    ]
    rollup = UsageRollup.objects.get(metric=metric)
    assert (rollup.peak, rollup.last) == (2, 1)


def test_increment_beyond_a_blocking_limit_is_refused_naming_limit_and_usage(client, tenant):
    UsageGauge.objects.create(environment=tenant.production, metric="seats", value=10)
    response = _gauge_post(client, tenant, "seats", "increment")
    assert response.status_code == 403
    assert response.json() == {
        "message": "Cannot add a seat: the limit is 10 seats per environment and 10 are in "
        "use in production. Free a seat or ask for a higher limit."
    }
    assert _gauge(tenant, "seats") == 10
    assert UsageReading.objects.count() == 0


def test_allow_up_to_caps_at_the_factor_and_allow_has_no_cap(client, tenant):
    contract = tenant.organization.contracts.get()
    contract.tenants_overage = OverageMode.ALLOW_UP_TO
    contract.tenants_overage_factor = Decimal("1.5")  # 3 tenants -> cap 4
    contract.save()
    UsageGauge.objects.create(environment=tenant.production, metric="tenants", value=3)
    assert _gauge_post(client, tenant, "tenants", "increment").status_code == 200
    assert _gauge_post(client, tenant, "tenants", "increment").status_code == 403
    contract.tenants_overage, contract.tenants_overage_factor = OverageMode.ALLOW, None
    contract.save()
    for _ in range(3):
        assert _gauge_post(client, tenant, "tenants", "increment").status_code == 200
    assert _gauge(tenant, "tenants") == 7


def test_decrement_never_goes_below_zero(client, tenant):
    response = _gauge_post(client, tenant, "seats", "decrement")
    assert response.status_code == 200
    assert response.json()["count"] == 0
    assert _gauge(tenant, "seats") == 0


def test_native_absolute_reading_replaces_the_running_count(client, tenant):
    for _ in range(3):
        _gauge_post(client, tenant, "seats", "increment")
    client.post(
        "/api/v1/usage",
        {"instance": "a", "api_calls": 0, "seats": 7},
        content_type="application/json",
        HTTP_AUTHORIZATION=f"Bearer {tenant.api_key}",
    )
    assert _gauge(tenant, "seats") == 7
    assert _gauge_post(client, tenant, "seats", "increment").json()["count"] == 8


@pytest.mark.parametrize(
    "body", ['{"operation": "double"}', "{}", "[]", "not json", '{"operation": 1}']
)
def test_unknown_operation_or_bad_body_is_400_with_message(client, tenant, body):
    response = client.post(
        f"/orgs/{tenant.organization.slug}/projects/{tenant.project.slug}/package/seats",
        body,
        content_type=TEXT,
        HTTP_AUTHORIZATION=tenant.api_key,
    )
    assert response.status_code == 400
    assert set(response.json()) == {"message"}
    assert usage_rows() == NOTHING


def test_key_problems_answer_401_or_403_with_message(client, tenant, other_tenant):
    assert _gauge_post(client, tenant, "seats", "increment", key="").status_code == 401
    assert _gauge_post(client, tenant, "seats", "increment", key="nonsense").status_code == 401
    # Another organization's key, or this key against another organization's path.
    assert (
        _gauge_post(client, tenant, "seats", "increment", key=other_tenant.api_key).status_code
        == 403
    )
    assert (
        _gauge_post(
            client, tenant, "seats", "increment", org=other_tenant.organization.slug
        ).status_code
        == 403
    )
    assert _gauge_post(client, tenant, "seats", "increment", project="elsewhere").status_code == 403
    environment_set_status(environment=tenant.production, enabled=False)
    response = _gauge_post(client, tenant, "seats", "increment")
    assert response.status_code == 403
    assert response.json() == {"message": "The environment of this API key is disabled."}
    assert usage_rows() == NOTHING
    assert not UsageGauge.objects.filter(environment=other_tenant.production).exists()


def test_each_environment_has_its_own_count(client, tenant):
    cicd = EnvironmentFactory(project=tenant.project, name="ci")
    ci_key = api_key_issue(environment=cicd).plaintext
    UsageGauge.objects.create(environment=tenant.production, metric="seats", value=10)
    assert _gauge_post(client, tenant, "seats", "increment", key=ci_key).status_code == 200
    assert UsageGauge.objects.get(environment=cicd, metric="seats").value == 1


# --- telemetry ------------------------------------------------------------------------------
def _ms(at: dt.datetime) -> int:
    return int(at.timestamp() * 1000)


def _logs(*times: dt.datetime) -> list[dict]:
    return [
        {"error": None, "executionDuration": 12.5, "functionName": "graphql", "createdOn": _ms(t)}
        for t in times
    ]


def _telemetry(client, key, logs, **extra):
    body = json.dumps({"apiKey": key, "version": "5.40.0", "logs": logs, **extra})
    return client.post("/telemetry", body, content_type=TEXT)


@pytest.fixture
def frozen():
    with time_machine.travel(NOW, tick=False):
        yield


def test_each_log_counts_one_call_at_its_time(client, tenant, frozen):
    logs = _logs(
        dt.datetime(2026, 11, 22, 9, 10, tzinfo=dt.UTC),
        dt.datetime(2026, 11, 22, 9, 50, tzinfo=dt.UTC),
        dt.datetime(2026, 11, 22, 10, 5, tzinfo=dt.UTC),
    )
    response = _telemetry(client, tenant.api_key, logs)
    assert response.status_code == 200
    assert response.json()["counted"] == 3
    hours = dict(UsageRollup.objects.filter(metric="api_calls").values_list("hour", "total"))
    assert hours == {
        dt.datetime(2026, 11, 22, 9, tzinfo=dt.UTC): 2,
        dt.datetime(2026, 11, 22, 10, tzinfo=dt.UTC): 1,
    }
    assert set(UsageReading.objects.values_list("source", flat=True)) == {ReadingSource.TELEMETRY}


def test_an_identical_batch_sent_again_counts_once(client, tenant, frozen):
    logs = _logs(*(dt.datetime(2026, 11, 22, 10, m, tzinfo=dt.UTC) for m in range(5)))
    assert _telemetry(client, tenant.api_key, logs).json()["counted"] == 5
    retry = _telemetry(client, tenant.api_key, logs)
    assert retry.status_code == 200
    assert retry.json() == {"message": "ok", "counted": 0, "duplicate": True}
    # A different batch (one more log) is new work and counts in full.
    more = logs + _logs(dt.datetime(2026, 11, 22, 10, 6, tzinfo=dt.UTC))
    assert _telemetry(client, tenant.api_key, more).json()["counted"] == 6
    assert UsageRollup.objects.get(metric="api_calls").total == 11


def test_telemetry_stores_counts_only(client, tenant, frozen):
    logs = _logs(dt.datetime(2026, 11, 22, 10, 1, tzinfo=dt.UTC))
    logs[0]["error"] = "TypeError: cannot read jane@example.com"
    logs[0]["functionName"] = "secretFunction"
    _telemetry(client, tenant.api_key, logs)
    stored = json.dumps(list(UsageReading.objects.values()), default=str)
    for leak in ("jane@example.com", "secretFunction", "5.40.0", "12.5"):
        assert leak not in stored


@pytest.mark.parametrize(
    "created_on",
    [
        "2026-11-22",
        1.5,
        True,
        None,
        _ms(NOW + dt.timedelta(minutes=6)),
        _ms(NOW - dt.timedelta(days=401)),
    ],
)
def test_bad_log_time_refuses_the_batch(client, tenant, frozen, created_on):
    logs = _logs(NOW)
    logs[0]["createdOn"] = created_on
    response = _telemetry(client, tenant.api_key, logs)
    assert response.status_code == 400
    assert set(response.json()) == {"message"}
    assert usage_rows() == NOTHING


def test_telemetry_key_problems(client, tenant, frozen):
    logs = _logs(NOW)
    assert _telemetry(client, "", logs).status_code == 401
    assert _telemetry(client, "cpk_abcdefghijkl_" + "A" * 43, logs).status_code == 401
    environment_set_status(environment=tenant.production, enabled=False)
    assert _telemetry(client, tenant.api_key, logs).status_code == 403
    assert usage_rows() == NOTHING


def test_empty_telemetry_batch_is_fine(client, tenant):
    response = _telemetry(client, tenant.api_key, [])
    assert response.status_code == 200
    assert response.json()["counted"] == 0
    assert timezone.now()


def test_increment_without_an_active_contract_is_refused(client, tenant):
    contract_end(contract=tenant.organization.contracts.get())
    response = _gauge_post(client, tenant, "seats", "increment")
    assert response.status_code == 403
    assert response.json() == {
        "message": "Cannot add a seat: this organization has no active contract."
    }
    assert _gauge_post(client, tenant, "seats", "decrement").status_code == 200
    assert UsageReading.objects.count() == 0


def test_storage_failure_answers_503_with_retry_after(client, tenant, monkeypatch):
    from django.db import OperationalError

    from metering import services

    def fail(**kwargs):
        raise OperationalError("connection lost")

    monkeypatch.setattr(services, "gauge_step", fail)
    response = _gauge_post(client, tenant, "seats", "increment")
    assert response.status_code == 503
    assert response["Retry-After"] == "5"
    assert set(response.json()) == {"message"}


def test_wcp_endpoints_share_the_abuse_throttle(client, tenant, settings):
    settings.USAGE_THROTTLE_REQUESTS = 1
    assert _gauge_post(client, tenant, "seats", "increment").status_code == 200
    response = _gauge_post(client, tenant, "seats", "increment")
    assert response.status_code == 429
    assert set(response.json()) == {"message"}
    assert int(response["Retry-After"]) >= 1
    assert _telemetry(client, tenant.api_key, _logs(timezone.now())).status_code == 429
    assert _gauge(tenant, "seats") == 1
