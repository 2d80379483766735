"""Login, invitation acceptance and CLI session creation are rate limited (429 + Retry-After)."""

import datetime as dt
import json

import pytest
import time_machine
from django.test import Client

from accounts.models import CliLoginSession, Membership

pytestmark = pytest.mark.django_db

T0 = dt.datetime(2026, 11, 1, 12, 0, 10, tzinfo=dt.UTC)


def test_cli_session_creation_is_limited_per_ip(tenant, settings):
    settings.RATE_LIMIT_CLI_SESSIONS = "3/60"
    with time_machine.travel(T0, tick=False):
        codes = [Client().post("/api/v1/cli/sessions").status_code for _ in range(4)]
        assert codes == [201, 201, 201, 429]
        response = Client().post("/api/v1/cli/sessions")
        assert response.json() == {
            "message": "Too many attempts: try again in 50 seconds.",
            "code": "rate_limited",
        }
        assert response["Retry-After"] == "50"
        # Another address has its own budget.
        assert Client(REMOTE_ADDR="10.0.0.9").post("/api/v1/cli/sessions").status_code == 201
    assert CliLoginSession.objects.count() == 4
    with time_machine.travel(T0 + dt.timedelta(seconds=50), tick=False):
        assert Client().post("/api/v1/cli/sessions").status_code == 201


def test_login_is_limited_per_ip_and_per_account(tenant, settings):
    settings.RATE_LIMIT_LOGIN = "3/300"
    with time_machine.travel(T0, tick=False):
        for _ in range(3):
            response = Client().post(
                "/login/", {"username": tenant.member.email, "password": "wrong"}
            )
            assert response.status_code == 200
        refused = Client().post(
            "/login/", {"username": tenant.member.email, "password": "correct horse battery"}
        )
        assert refused.status_code == 429
        assert refused["Retry-After"] == "290"
        # From another address, the same account is still limited (guessing one password).
        elsewhere = Client(REMOTE_ADDR="10.0.0.9").post(
            "/login/", {"username": tenant.member.email, "password": "correct horse battery"}
        )
        assert elsewhere.status_code == 429
        # Another account from another address is not.
        ok = Client(REMOTE_ADDR="10.0.0.9").post(
            "/login/", {"username": tenant.admin.email, "password": "correct horse battery"}
        )
        assert ok.status_code == 302


def test_invitation_acceptance_is_limited(tenant, settings):
    settings.RATE_LIMIT_INVITATION_ACCEPT = "2/60"
    with time_machine.travel(T0, tick=False):
        codes = [
            Client()
            .post(
                "/api/v1/invitations/accept",
                json.dumps({"token": f"cpi_guess{i}", "password": "x" * 20}),
                content_type="application/json",
            )
            .status_code
            for i in range(3)
        ]
        assert codes == [404, 404, 429]
        page = Client().post("/invitations/accept?token=cpi_guess9", {"password": "x"})
        assert page.status_code == 429
        assert page["Retry-After"] == "50"
    assert Membership.objects.filter(organization=tenant.organization).count() == 3


def test_forwarded_for_is_used_behind_a_configured_proxy(tenant, settings):
    settings.RATE_LIMIT_CLI_SESSIONS = "1/60"
    settings.RATE_LIMIT_PROXY_COUNT = 1
    with time_machine.travel(T0, tick=False):
        first = Client(headers={"x-forwarded-for": "203.0.113.1"})
        second = Client(headers={"x-forwarded-for": "203.0.113.2"})
        assert first.post("/api/v1/cli/sessions").status_code == 201
        assert second.post("/api/v1/cli/sessions").status_code == 201
        assert first.post("/api/v1/cli/sessions").status_code == 429


DEAD_CACHE = {
    "default": {
        "BACKEND": "django.core.cache.backends.redis.RedisCache",
        "LOCATION": "redis://127.0.0.1:8499/0",  # nothing listens here
        "OPTIONS": {"socket_connect_timeout": 0.5},
    }
}


def test_cache_down_means_503_with_retry_after_and_nothing_written(tenant, settings):
    settings.CACHES = DEAD_CACHE
    api = Client().post("/api/v1/cli/sessions")
    assert api.status_code == 503
    assert api.json() == {
        "message": "Temporarily unavailable: please try again shortly.",
        "code": "unavailable",
    }
    assert api["Retry-After"] == "30"
    login = Client().post(
        "/login/", {"username": tenant.member.email, "password": "correct horse battery"}
    )
    assert (login.status_code, login["Retry-After"]) == (503, "30")
    page = Client().post("/invitations/accept?token=cpi_x", {"password": "x"})
    assert page.status_code == 503
    assert CliLoginSession.objects.count() == 0
