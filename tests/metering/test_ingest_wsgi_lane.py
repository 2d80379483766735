"""The WSGI fast lane (metering.ingest.wsgi) answers exactly as Django does: the same
status line, headers in the same order and body bytes, the same log records; it hands
Django whatever Django would answer differently; it keeps Django's connection handling."""

from __future__ import annotations

import datetime as dt
import json
import logging

import pytest
import time_machine
from django.core.handlers.wsgi import WSGIHandler
from django.db import OperationalError, connection

from accounts.models import ApiKey
from accounts.services.api_keys import api_key_revoke
from accounts.services.organizations import environment_set_status
from controlpanel import wsgi
from metering import ingest
from metering.ingest import http
from metering.ingest.wsgi import IngestLane
from metering.models import UsageReading
from tests.metering.usage import NOTHING, usage_rows
from tests.metering.wsgi_lane import call, connections_kept, environ

pytestmark = pytest.mark.django_db

NOW = dt.datetime(2026, 11, 22, 10, 30, tzinfo=dt.UTC)
GOOD = {"instance": "web-1", "boot": "b1", "api_calls": 42, "seats": 3}


def _both(path, body, caplog, **extra):
    """(lane answer, Django answer) for the same request, with what each logged."""
    answers = []
    # A Django handler built now, with the settings of the test (its middleware read them
    # when built), next to the lane.
    for app in (wsgi.application, WSGIHandler()):
        caplog.clear()
        with connections_kept(), caplog.at_level(logging.INFO, logger="django.request"):
            answer = call(app, environ(path, body, **extra))
        answers.append((*answer, [(r.levelname, r.getMessage()) for r in caplog.records]))
    return answers


def _auth(key):
    return {"HTTP_AUTHORIZATION": f"Bearer {key}"}


def _revoke(tenant):
    api_key_revoke(api_key=ApiKey.objects.get(environment=tenant.production))


def _disable(tenant):
    environment_set_status(environment=tenant.production, enabled=False)


REFUSALS = {
    "no key": ("/api/v1/usage", GOOD, {}, None),
    "malformed key": ("/api/v1/usage", GOOD, {"HTTP_AUTHORIZATION": "Bearer nope"}, None),
    "basic scheme": ("/api/v1/usage", GOOD, {"HTTP_AUTHORIZATION": "Basic abc"}, None),
    "unknown key": (
        "/api/v1/usage",
        GOOD,
        _auth("cpk_aaaaaaaaaaaa_" + "A" * 43),
        None,
    ),
    "revoked key": ("/api/v1/usage", GOOD, "key", _revoke),
    "revoked key, bad body": ("/api/v1/usage", "{", "key", _revoke),
    "disabled environment": ("/api/v1/usage/batch", {"readings": [GOOD]}, "key", _disable),
    "wrong content type": ("/api/v1/usage", "x", {"content_type": "text/plain"}, None),
    "not json": ("/api/v1/usage", "{nope", {}, None),
    "unknown field": ("/api/v1/usage", {**GOOD, "ip": "1.2.3.4"}, {}, None),
    "float": ("/api/v1/usage", {**GOOD, "api_calls": 1.5}, {}, None),
    "bad batch reading": (
        "/api/v1/usage/batch",
        {"readings": [GOOD, {"instance": "", "api_calls": 1}]},
        {},
        None,
    ),
    "too large": ("/api/v1/usage/batch", b" " * (1024 * 1024 + 1), {}, None),
}


@pytest.mark.parametrize("case", list(REFUSALS))
def test_refusals_are_byte_identical_and_write_nothing(tenant, caplog, case):
    path, body, extra, prepare = REFUSALS[case]
    if extra == "key":
        extra = {}
    if "HTTP_AUTHORIZATION" not in extra and case not in ("no key",):
        extra = {**extra, **_auth(tenant.api_key)}
    body = json.dumps(body) if isinstance(body, dict) else body
    with time_machine.travel(NOW, tick=False):
        if prepare:
            prepare(tenant)
        lane, django = _both(path, body, caplog, **extra)
    assert lane == django
    assert lane[0].split()[0] in {"400", "401", "403", "413", "415"}
    assert lane[3]  # Django logs each refusal (django.request): so does the lane
    assert usage_rows() == NOTHING


def test_accepted_reading_and_batch_are_byte_identical(tenant, other_tenant, caplog):
    # The same readings for two environments with the same history: the same answers.
    with time_machine.travel(NOW, tick=False):
        for path, body in (
            ("/api/v1/usage", GOOD),
            ("/api/v1/usage", {**GOOD, "api_calls": 50}),
            ("/api/v1/usage", {**GOOD, "api_calls": 50}),
            ("/api/v1/usage/batch", {"readings": [GOOD, {**GOOD, "boot": "b2", "api_calls": 7}]}),
        ):
            answers = []
            for app, key in (
                (wsgi.application, tenant.api_key),
                (WSGIHandler(), other_tenant.api_key),
            ):
                with connections_kept():
                    answers.append(call(app, environ(path, json.dumps(body), **_auth(key))))
            assert answers[0] == answers[1]
            assert answers[0][0] == "202 Accepted"
    assert UsageReading.objects.filter(environment=tenant.production).count() == 5
    assert UsageReading.objects.filter(environment=other_tenant.production).count() == 5
    assert answers[0][1] == [
        ("Content-Type", "application/json"),
        ("X-Frame-Options", "DENY"),
        ("Content-Length", str(len(answers[0][2]))),
        ("X-Content-Type-Options", "nosniff"),
        ("Referrer-Policy", "same-origin"),
        ("Cross-Origin-Opener-Policy", "same-origin"),
    ]


def test_throttled_and_unavailable_answers_are_byte_identical(
    tenant, caplog, settings, monkeypatch
):
    settings.USAGE_THROTTLE_REQUESTS = 1
    body = json.dumps(GOOD)
    with time_machine.travel(NOW, tick=False):
        with connections_kept():
            call(wsgi.application, environ("/api/v1/usage", body, **_auth(tenant.api_key)))
        lane, django = _both("/api/v1/usage", body, caplog, **_auth(tenant.api_key))
    assert lane == django
    assert lane[0] == "429 Too Many Requests"
    assert ("Retry-After", "60") in lane[1]

    settings.USAGE_THROTTLE_REQUESTS = 0

    def fail(*args):
        raise OperationalError("connection lost")

    # Failure injection at the storage boundary, as in test_usage_api.
    monkeypatch.setattr(ingest, "_record", fail)
    lane, django = _both("/api/v1/usage", body, caplog, **_auth(tenant.api_key))
    assert lane == django
    assert lane[0] == "503 Service Unavailable"
    assert ("Retry-After", "5") in lane[1]
    assert UsageReading.objects.count() == 1


def test_an_unexpected_error_is_answered_by_djangos_handler(tenant, caplog, monkeypatch):
    def broken(*args, **kwargs):
        raise RuntimeError("a bug")

    monkeypatch.setattr(http, "post_usage", broken)
    lane, django = _both("/api/v1/usage", json.dumps(GOOD), caplog, **_auth(tenant.api_key))
    assert lane == django
    assert lane[0] == "500 Internal Server Error"
    assert lane[3] == [("ERROR", "Internal Server Error: /api/v1/usage")]


def test_https_answers_carry_hsts_as_djangos_do(tenant, caplog, settings):
    settings.SECURE_HSTS_SECONDS = 3600
    extra = {**_auth(tenant.api_key), "secure": True}
    lane, django = _both("/api/v1/usage", "{", caplog, **extra)
    assert lane == django
    assert dict(lane[1])["Strict-Transport-Security"].startswith("max-age=3600")


def test_headers_follow_the_configured_middleware(tenant, caplog, settings):
    settings.MIDDLEWARE = [
        m
        for m in settings.MIDDLEWARE
        if m != "django.middleware.clickjacking.XFrameOptionsMiddleware"
    ]
    lane, django = _both("/api/v1/usage", "{", caplog, **_auth(tenant.api_key))
    assert lane == django
    assert "X-Frame-Options" not in dict(lane[1])


@pytest.mark.parametrize(
    "setup",
    [
        "disallowed host",
        "ssl redirect",
        "lane off",
        "wrong method",
        "other path",
        "cookie",
        "unknown middleware",
    ],
)
def test_what_django_answers_differently_is_left_to_django(tenant, caplog, settings, setup):
    extra = _auth(tenant.api_key)
    path, method = "/api/v1/usage", "POST"
    if setup == "disallowed host":
        extra["HTTP_HOST"] = "evil.example"
    elif setup == "ssl redirect":
        settings.SECURE_SSL_REDIRECT = True
    elif setup == "lane off":
        settings.INGEST_WSGI_FAST_LANE = False
    elif setup == "wrong method":
        method = "PUT"
    elif setup == "cookie":
        extra["HTTP_COOKIE"] = "sessionid=stale"
    elif setup == "unknown middleware":
        settings.MIDDLEWARE = [*settings.MIDDLEWARE, "django.middleware.gzip.GZipMiddleware"]
    else:
        path = "/api/v1/usage/"
    env = environ(path, json.dumps(GOOD), **extra)
    env["REQUEST_METHOD"] = method
    app = IngestLane(WSGIHandler())  # Django's middleware as the settings now say
    assert app._eligible(env) is None
    with connections_kept():
        status, _, _ = call(app, env)
    expected = {
        "disallowed host": "400 Bad Request",
        "ssl redirect": "301 Moved Permanently",  # by SecurityMiddleware
        "lane off": "202 Accepted",
        "wrong method": "405 Method Not Allowed",
        "other path": "404 Not Found",
        "cookie": "202 Accepted",
        "unknown middleware": "202 Accepted",
    }
    assert status == expected[setup]


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("max_age", [0, 60])
def test_connections_are_aged_and_released_as_by_django(tenant, max_age):
    """request_started / request_finished reach Django's close_old_connections: with
    CONN_MAX_AGE=0 the connection is closed after the answer, else kept for reuse."""
    connection.close()
    saved = connection.settings_dict["CONN_MAX_AGE"]
    connection.settings_dict["CONN_MAX_AGE"] = max_age
    try:
        env = environ("/api/v1/usage", json.dumps(GOOD), **_auth(tenant.api_key))
        result = wsgi.application(env, lambda *args: None)
        assert connection.connection is not None  # opened by the request, not yet released
        assert b"".join(result).startswith(b'{"counted"')
        result.close()  # the server is done sending: request_finished
        assert (connection.connection is None) == (max_age == 0)
    finally:
        connection.settings_dict["CONN_MAX_AGE"] = saved
        connection.close()


def test_other_receivers_of_the_request_signals_are_sent_them(tenant):
    from django.core.signals import request_finished, request_started

    seen = []

    def started(sender, environ, **kwargs):
        seen.append(("started", environ["PATH_INFO"]))

    def finished(sender, **kwargs):
        seen.append(("finished", sender.__name__))

    request_started.connect(started)
    request_finished.connect(finished)
    try:
        env = environ("/api/v1/usage", json.dumps(GOOD), **_auth(tenant.api_key))
        with connections_kept():
            status, _, _ = call(wsgi.application, env)
    finally:
        request_started.disconnect(started)
        request_finished.disconnect(finished)
    assert status == "202 Accepted"
    assert seen == [("started", "/api/v1/usage"), ("finished", "WSGIHandler")]
