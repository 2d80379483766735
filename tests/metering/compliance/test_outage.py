"""Usage pushed over HTTP to the ingest endpoint, through a real worker and beat: one flag
and one message per recipient; and ingest keeps accepting readings while Redis (broker and
cache) is down, the jobs catching up when it is back."""

from __future__ import annotations

import datetime as dt

import httpx
import pytest
from django.utils import timezone

from metering.compliance.models import OverageFlag
from metering.compliance.services import webhook_endpoint_create
from metering.models import UsageReading
from tests.conftest import make_tenant
from tests.metering.compliance.hooks import receiver
from tests.metering.compliance.live import private_redis, web_process
from tests.metering.compliance.test_worker import (
    Log,
    assert_exactly_one_flag_and_one_message_per_recipient,
    delivered_once_each,
)
from tests.processes import celery_process, process_env, wait_until

pytestmark = [
    pytest.mark.slow,
    pytest.mark.redis,
    pytest.mark.django_db(transaction=True),
]


def push(base: str, key: str, api_calls: int) -> httpx.Response:
    return httpx.post(
        f"{base}/api/v1/usage",
        headers={"Authorization": f"Bearer {key}"},
        json={"instance": "graphql-1", "boot": "b1", "api_calls": api_calls},
        timeout=30,
    )


def acme_over_http_limit():
    now = timezone.now()
    return make_tenant(
        "acme",
        starts_on=now.date() - dt.timedelta(days=3),
        ends_on=now.date() + dt.timedelta(days=300),
        api_calls_per_period=1000,
    )


def test_usage_pushed_over_http_past_a_limit_gives_one_flag_and_one_message_each(
    tmp_path, settings
):
    settings.WEBHOOK_ALLOW_HTTP = True
    t = acme_over_http_limit()
    with receiver() as hook:
        webhook_endpoint_create(organization=t.organization, url=hook.url, created_by=t.owner)
        env = process_env(COMPLIANCE_EVALUATE_EVERY="1", COMPLIANCE_NOTIFY_EVERY="1")
        with (
            web_process(env) as base,
            celery_process("worker", "--pool=solo", "--loglevel=INFO", "--purge", env=env) as w,
            celery_process(
                "beat", "--loglevel=WARNING", "--schedule", str(tmp_path / "beat"), env=env
            ),
        ):
            log = Log(w)
            for total in (300, 700, 850, 850):  # cumulative; the last is a duplicate
                assert push(base, t.api_key, total).status_code == 202
            wait_until(lambda: delivered_once_each(t, hook), timeout=90)
            runs = log.count("metering.compliance.evaluate[")
            wait_until(lambda: log.count("metering.compliance.evaluate[") >= runs + 4, timeout=60)
    assert_exactly_one_flag_and_one_message_per_recipient(t, hook)


def test_ingest_accepts_readings_while_redis_is_down_and_jobs_catch_up(tmp_path, settings):
    settings.WEBHOOK_ALLOW_HTTP = True
    t = acme_over_http_limit()
    with receiver() as hook, private_redis() as redis:
        webhook_endpoint_create(organization=t.organization, url=hook.url, created_by=t.owner)
        env = process_env(
            REDIS_URL=redis.url,
            CELERY_BROKER_URL=redis.url,
            CELERY_RESULT_BACKEND=redis.url,
            COMPLIANCE_EVALUATE_EVERY="1",
            COMPLIANCE_NOTIFY_EVERY="1",
        )
        with (
            web_process(env) as base,
            celery_process("worker", "--pool=solo", "--loglevel=INFO", env=env) as worker,
            celery_process(
                "beat", "--loglevel=WARNING", "--schedule", str(tmp_path / "beat"), env=env
            ),
        ):
            log = Log(worker)
            assert push(base, t.api_key, 100).status_code == 202
            wait_until(lambda: log.count("metering.compliance.evaluate[") >= 2, timeout=90)
            assert OverageFlag.objects.count() == 0

            redis.stop()
            answers = [push(base, t.api_key, n).status_code for n in (400, 850)]
            assert answers == [202, 202]
            assert UsageReading.objects.count() == 3
            assert OverageFlag.objects.count() == 0  # nothing evaluates without the broker

            redis.start()
            wait_until(lambda: delivered_once_each(t, hook), timeout=120)
            runs = log.count("metering.compliance.evaluate[")
            wait_until(lambda: log.count("metering.compliance.evaluate[") >= runs + 3, timeout=60)
    assert_exactly_one_flag_and_one_message_per_recipient(t, hook)
