"""Bad input, catalogued: every kind of malformed request on every JSON endpoint (the
native usage API, the CMS protocol, license validation, the CLI login, invitations, the
customer API, /graphql) and every variant of an API key's header. Each answers a 4xx whose
message names the problem (or succeeds where the input is legal) and writes nothing: every
table of accounts and metering (usage, gauges, audit trail, sessions...) holds as many rows
as before, and the gauges their values. Bodies cut short or chunked are over a real socket
at the end (tests/metering/test_bodies_live.py has the mechanics)."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
from django.apps import apps
from django.test import Client

from accounts.models import EnvironmentStatus
from accounts.services.access import pat_issue
from accounts.services.api_keys import api_key_issue, api_key_revoke
from accounts.services.team import invitation_create
from metering.models import UsageGauge
from tests.conftest import Tenant, make_tenant
from tests.processes import chunked, gunicorn_process, http_exchange

pytestmark = pytest.mark.django_db

GET_ENVIRONMENT = (
    "query GetEnvironment($apiKey: String) { projects { getEnvironment(apiKey: $apiKey) "
    "{ id status } } }"
)


def database_rows() -> dict[str, Any]:
    """Row counts of every model of accounts and metering, and the gauges' values."""
    rows: dict[str, Any] = {
        f"{app}.{model.__name__}": model.objects.count()
        for app in ("accounts", "metering")
        for model in apps.get_app_config(app).get_models()
    }
    rows["gauges"] = sorted(UsageGauge.objects.values_list("environment_id", "metric", "value"))
    return rows


def now_ms() -> int:
    return int(time.time() * 1000)


@dataclass(frozen=True)
class Endpoint:
    name: str
    path: Callable[[Tenant], str]
    body: Callable[[Tenant], dict[str, Any]]  # a legal body
    auth: Callable[[Tenant], dict[str, str]] = lambda t: {}
    content_type: str = "application/json"
    json_only: bool = True  # other content types are refused (the CMS protocol takes any)
    shape: str = "native"  # where the message is: native/wcp/drf {"message"}, graphql too
    signed_in: bool = False
    extra: dict[str, Any] = field(default_factory=dict)


def _wcp(path: str) -> Callable[[Tenant], str]:
    return lambda t: f"/orgs/{t.organization.slug}/projects/{t.project.slug}/{path}"


READING = {"instance": "web-1", "boot": "b1", "api_calls": 5}
ENDPOINTS = [
    Endpoint(
        "usage",
        lambda t: "/api/v1/usage",
        lambda t: dict(READING),
        auth=lambda t: {"authorization": f"Bearer {t.api_key}"},
    ),
    Endpoint(
        "usage-batch",
        lambda t: "/api/v1/usage/batch",
        lambda t: {"readings": [dict(READING)]},
        auth=lambda t: {"authorization": f"Bearer {t.api_key}"},
    ),
    *[
        Endpoint(
            f"wcp-{gauge}",
            _wcp(f"package/{gauge}"),
            lambda t: {"operation": "increment"},
            auth=lambda t: {"authorization": t.api_key},
            content_type="text/plain;charset=UTF-8",
            json_only=False,
            shape="wcp",
        )
        for gauge in ("seats", "tenants")
    ],
    Endpoint(
        "telemetry",
        lambda t: "/telemetry",
        lambda t: {
            "apiKey": t.api_key,
            "version": "5.40.0",
            "logs": [
                {"error": None, "executionDuration": 3, "functionName": "f", "createdOn": now_ms()}
            ],
        },
        content_type="text/plain;charset=UTF-8",
        json_only=False,
        shape="wcp",
    ),
    Endpoint(
        "license-validate", lambda t: "/api/v1/licenses/validate", lambda t: {"token": "a.b.c"}
    ),
    Endpoint("cli-sessions", lambda t: "/api/v1/cli/sessions", lambda t: {"client": "laptop"}),
    Endpoint(
        "invitation-accept",
        lambda t: "/api/v1/invitations/accept",
        lambda t: {"token": "not-an-invitation", "password": "correct horse battery"},
    ),
    Endpoint(
        "customer-tokens", lambda t: "/api/v1/tokens", lambda t: {"name": "ci"}, signed_in=True
    ),
    Endpoint(
        "graphql",
        lambda t: "/graphql",
        lambda t: {"query": GET_ENVIRONMENT, "variables": {"apiKey": t.api_key}},
        shape="graphql",
    ),
]
BY_NAME = {e.name: e for e in ENDPOINTS}


def send(
    tenant: Tenant,
    endpoint: Endpoint,
    body: bytes,
    *,
    content_type: str | None = None,
    headers: dict[str, str] | None = None,
):
    client = Client(headers=endpoint.auth(tenant) if headers is None else headers)
    if endpoint.signed_in:
        client.force_login(tenant.owner)
    ct = endpoint.content_type if content_type is None else content_type
    return client.post(endpoint.path(tenant), body, content_type=ct)


def message_of(response) -> str:
    body = response.json()
    assert isinstance(body.get("message"), str) and body["message"], body
    return body["message"]


def refused(tenant: Tenant, response, status: int, fragment: str, before: dict) -> None:
    assert response.status_code == status, (response.status_code, response.content[:300])
    assert fragment in message_of(response)
    assert database_rows() == before


# --- bodies that are not strict JSON, on every JSON endpoint ---------------------------------
def _duplicate_first_key(body: dict[str, Any]) -> bytes:
    key = next(iter(body))
    text = json.dumps(body)
    return (text[:-1] + f", {json.dumps(key)}: {json.dumps(body[key])}}}").encode()


BODIES: dict[str, tuple[Callable[[dict[str, Any]], bytes], int, str]] = {
    "deep-array": (
        lambda b: b"[" * 10_000 + b"]" * 10_000,
        400,
        "The body is not valid JSON: it is nested too deeply.",
    ),
    "deep-object": (
        lambda b: b'{"a":' * 10_000 + b"1" + b"}" * 10_000,
        400,
        "The body is not valid JSON: it is nested too deeply.",
    ),
    "duplicate-key": (
        _duplicate_first_key,
        400,
        "appears twice in one object",
    ),
    "invalid-utf8": (
        lambda b: b'{"x": "\xff\xfe"}',
        400,
        "The body is not valid JSON: it is not UTF-8.",
    ),
    "nan": (lambda b: b'{"x": NaN}', 400, "NaN is not a JSON number"),
    "not-json": (lambda b: b'{"x": ', 400, "The body is not valid JSON."),
    "10-mib": (
        lambda b: json.dumps({"pad": "a" * (10 * 1024 * 1024)}).encode(),
        413,
        "1 MiB",
    ),
}


@pytest.mark.parametrize("case", BODIES)
@pytest.mark.parametrize("name", BY_NAME)
def test_a_body_that_is_not_strict_json_is_refused_naming_why(tenant, name, case):
    endpoint = BY_NAME[name]
    build, status, fragment = BODIES[case]
    before = database_rows()
    response = send(tenant, endpoint, build(endpoint.body(tenant)))
    refused(tenant, response, status, fragment, before)


def test_the_duplicate_key_is_named(tenant):
    before = database_rows()
    native = send(
        tenant,
        BY_NAME["usage"],
        b'{"instance": "web-1", "api_calls": 1, "api_calls": 1000}',
    )
    key = tenant.api_key
    telemetry = send(
        tenant,
        BY_NAME["telemetry"],
        f'{{"apiKey": "{key}", "version": "5", "apiKey": "{key}x", "logs": []}}'.encode(),
    )
    nested = send(
        tenant,
        BY_NAME["usage-batch"],
        b'{"readings": [{"instance": "a", "api_calls": 1, "boot": "x", "boot": "y"}]}',
    )
    assert (native.status_code, native.json()) == (
        400,
        {
            "message": 'The body is not valid JSON: the key "api_calls" appears twice in one '
            "object.",
            "code": "duplicate_key",
        },
    )
    assert (telemetry.status_code, telemetry.json()) == (
        400,
        {"message": 'The body is not valid JSON: the key "apiKey" appears twice in one object.'},
    )
    assert nested.json()["message"].endswith('the key "boot" appears twice in one object.')
    drf = send(tenant, BY_NAME["license-validate"], b'{"token": "a", "token": "b"}')
    assert (drf.status_code, drf.json()) == (
        400,
        {
            "message": 'The body is not valid JSON: the key "token" appears twice in one object.',
            "code": "duplicate_key",
        },
    )
    assert database_rows() == before


@pytest.mark.parametrize("name", [e.name for e in ENDPOINTS if e.json_only])
@pytest.mark.parametrize("content_type", ["text/plain", "", "application/xml"])
def test_json_endpoints_refuse_another_content_type(tenant, name, content_type):
    endpoint = BY_NAME[name]
    before = database_rows()
    response = send(
        tenant, endpoint, json.dumps(endpoint.body(tenant)).encode(), content_type=content_type
    )
    refused(tenant, response, 415, "", before)


@pytest.mark.parametrize("name", [e.name for e in ENDPOINTS if not e.json_only])
@pytest.mark.parametrize("content_type", ["text/plain;charset=UTF-8", "application/json", ""])
def test_the_cms_protocol_takes_any_content_type(tenant, name, content_type):
    endpoint = BY_NAME[name]
    response = send(
        tenant, endpoint, json.dumps(endpoint.body(tenant)).encode(), content_type=content_type
    )
    assert response.status_code == 200, response.content


# Every customer API route that reads a body, as its owner: DRF's parser is the same rule.
CUSTOMER_ROUTES: list[tuple[str, Callable[[Tenant], str], str]] = [
    ("post", lambda t: "/api/v1/tokens", '{"name": "a", "name": "b"}'),
    (
        "patch",
        lambda t: f"/api/v1/orgs/acme/members/{t.member.pk}",
        '{"role": "admin", "role": "owner"}',
    ),
    (
        "post",
        lambda t: "/api/v1/orgs/acme/invitations",
        '{"email": "a@b.example", "email": "c@d.example"}',
    ),
    ("post", lambda t: "/api/v1/orgs/acme/projects/website/seats", '{"user_id": 1, "user_id": 2}'),
    (
        "post",
        lambda t: "/api/v1/orgs/acme/projects/website/personal-environments",
        '{"name": "a", "name": "b"}',
    ),
    (
        "post",
        lambda t: "/api/v1/orgs/acme/webhooks",
        '{"url": "https://a.example", "url": "https://b.example"}',
    ),
]


@pytest.mark.parametrize("deep", [False, True])
@pytest.mark.parametrize("route", range(len(CUSTOMER_ROUTES)))
def test_every_customer_route_refuses_deep_and_duplicate_key_json(tenant, route, deep):
    method, path, duplicated = CUSTOMER_ROUTES[route]
    client = Client()
    client.force_login(tenant.owner)
    before = database_rows()
    body = "[" * 10_000 + "]" * 10_000 if deep else duplicated
    response = getattr(client, method)(path(tenant), body, content_type="application/json")
    key = json.loads(duplicated)  # the last of the pair wins here: its name is the key
    fragment = "nested too deeply" if deep else f"the key {json.dumps(next(iter(key)))} appears"
    refused(tenant, response, 400, fragment, before)
    assert response.json()["code"] == ("invalid_json" if deep else "duplicate_key")


# --- numbers and timestamps ------------------------------------------------------------------
# case: (value, the refusal of a count, the refusal of a telemetry createdOn)
NUMBERS: dict[str, tuple[Any, str, str]] = {
    "2^63": (2**63, "must be below 2^63", "is in the future"),
    "2^64": (2**64, "must be below 2^63", "is in the future"),
    "10^30": (10**30, "must be below 2^63", "is in the future"),
    "1e30": (
        1e30,
        "must be a whole number, not a number with a fraction",
        "must be epoch milliseconds",
    ),
    "negative": (-1, "must not be negative", "must be epoch milliseconds"),
    "fraction": (
        1.5,
        "must be a whole number, not a number with a fraction",
        "must be epoch milliseconds",
    ),
    "string": ("5", "must be a whole number, not a string", "must be epoch milliseconds"),
    "boolean": (True, "must be a whole number, not a boolean", "must be epoch milliseconds"),
}


@pytest.mark.parametrize("count", ["api_calls", "seats", "tenants"])
@pytest.mark.parametrize("case", NUMBERS)
def test_counts_out_of_range_or_of_the_wrong_type(tenant, count, case):
    value, fragment, _ = NUMBERS[case]
    before = database_rows()
    single = send(tenant, BY_NAME["usage"], json.dumps({**READING, count: value}).encode())
    refused(tenant, single, 400, f"{count} {fragment}", before)
    assert single.json()["field"] == count
    batch = {"readings": [dict(READING), {**READING, "instance": "web-2", count: value}]}
    batched = send(tenant, BY_NAME["usage-batch"], json.dumps(batch).encode())
    refused(tenant, batched, 400, f"reading 1: {count} {fragment}", before)


OBSERVED_AT: dict[str, tuple[Any, str]] = {
    "number": (1_700_000_000, "must be an ISO 8601 string"),
    "not-a-date": ("yesterday", "is not an ISO 8601 timestamp"),
    "no-zone": ("2031-03-15T09:00:00", "must carry a time zone"),
    "year-1-east": ("0001-01-01T00:00:00+01:00", "is out of range"),
    "year-9999-west": ("9999-12-31T23:59:59-01:00", "is out of range"),
    "year-9999": ("9999-12-31T23:59:59Z", "is out of range"),
    "year-1": ("0001-01-01T00:00:00Z", "is out of range"),
    "year-1969": ("1969-12-31T23:59:59Z", "is out of range"),
    "next-year": ("2032-03-15T09:30:00Z", "is more than 5 minutes in the future"),
    "last-year": ("2030-01-01T00:00:00Z", "is older than the 400-day retention window"),
}


@pytest.mark.parametrize("case", OBSERVED_AT)
def test_observed_at_of_the_wrong_shape_or_out_of_range(tenant, case):
    value, fragment = OBSERVED_AT[case]
    before = database_rows()
    response = send(
        tenant, BY_NAME["usage"], json.dumps({**READING, "observed_at": value}).encode()
    )
    refused(tenant, response, 400, f"observed_at {fragment}", before)
    assert response.json()["field"] == "observed_at"


@pytest.mark.parametrize(
    "query",
    [
        "to=0001-01-01T00:00:00Z",
        "from=0001-01-01T00:00:00Z",
        "from=9999-12-31T22:30:00Z&to=9999-12-31T23:59:59Z",
        "to=9999-12-31T23:59:59-01:00",
        "to=tomorrow",
    ],
)
def test_usage_reads_refuse_timestamps_out_of_range(tenant, query):
    client = Client(headers={"authorization": f"Bearer {tenant.api_key}"})
    response = client.get(f"/api/v1/usage?{query}")
    assert response.status_code == 400, response.content
    assert response.json()["field"] in ("from", "to")


CREATED_ON = {
    **{case: (value, refusal) for case, (value, _, refusal) in NUMBERS.items()},
    "missing": (None, "must be epoch milliseconds"),
    "year-1970": (0, "is older than the retention window"),
}


@pytest.mark.parametrize("case", CREATED_ON)
def test_telemetry_created_on_out_of_range_or_of_the_wrong_type(tenant, case):
    value, fragment = CREATED_ON[case]
    body = BY_NAME["telemetry"].body(tenant)
    body["logs"].append({**body["logs"][0], "createdOn": value})
    before = database_rows()
    response = send(tenant, BY_NAME["telemetry"], json.dumps(body).encode())
    refused(tenant, response, 400, f"logs[1].createdOn {fragment}", before)


@pytest.mark.parametrize("operation", [1, "INCREMENT", None, ["increment"], {"op": 1}])
@pytest.mark.parametrize("name", ["wcp-seats", "wcp-tenants"])
def test_a_gauge_step_other_than_increment_or_decrement(tenant, name, operation):
    before = database_rows()
    response = send(tenant, BY_NAME[name], json.dumps({"operation": operation}).encode())
    refused(tenant, response, 400, '{"operation": "increment"}', before)


# --- the API key's header ----------------------------------------------------------------------
def _revoked(t: Tenant) -> str:
    issued = api_key_issue(environment=t.production)
    api_key_revoke(api_key=issued.api_key)
    return issued.plaintext


def _disabled(t: Tenant) -> str:
    environment = t.project.environments.create(name="ci", kind="cicd")
    key = api_key_issue(environment=environment).plaintext
    environment.status = EnvironmentStatus.DISABLED
    environment.save(update_fields=["status"])
    return key


def _other_organization(t: Tenant) -> str:
    return make_tenant("globex").api_key


def _unknown(t: Tenant) -> str:
    prefix, secret = t.api_key[:17], t.api_key[17:]
    return prefix + ("A" if secret[0] != "A" else "B") + secret[1:]


# (the header's value from the tenant, status, the message's fragment); status 0: legal.
HEADERS: dict[str, tuple[Callable[[Tenant], str | None], int, str]] = {
    "bearer": (lambda t: f"Bearer {t.api_key}", 0, ""),
    "lower-case-scheme": (lambda t: f"bearer {t.api_key}", 0, ""),
    "extra-spaces": (lambda t: f"  Bearer   {t.api_key}  ", 0, ""),
    "raw": (lambda t: t.api_key, 0, ""),
    "missing": (lambda t: None, 401, "No API key"),
    "empty": (lambda t: "", 401, "No API key"),
    "scheme-only": (lambda t: "Bearer", 401, ""),
    "basic-scheme": (lambda t: f"Basic {t.api_key}", 401, "malformed"),
    "wrong-prefix": (lambda t: "Bearer cpt" + t.api_key[3:], 401, "malformed"),
    "truncated": (lambda t: f"Bearer {t.api_key[:-1]}", 401, "malformed"),
    "trailing-garbage": (lambda t: f"Bearer {t.api_key} x", 401, "malformed"),
    "unknown": (lambda t: f"Bearer {_unknown(t)}", 401, "The API key is not valid."),
    "revoked": (lambda t: f"Bearer {_revoked(t)}", 401, "The API key has been revoked."),
    "disabled-environment": (lambda t: f"Bearer {_disabled(t)}", 403, "disabled"),
    "other-organization": (lambda t: f"Bearer {_other_organization(t)}", 403, ""),
}
# Where another organization's valid key is legal (it reports for its own environment).
OWN_ENVIRONMENT = {"usage", "usage-batch"}


def _status(name: str, case: str, legal: int) -> tuple[int, str]:
    status, fragment = HEADERS[case][1:]
    if case == "other-organization" and name in OWN_ENVIRONMENT:
        return legal, ""
    return (legal, "") if status == 0 else (status, fragment)


@pytest.mark.parametrize("case", HEADERS)
@pytest.mark.parametrize("name", ["usage", "usage-batch", "wcp-seats", "wcp-tenants"])
def test_every_variant_of_the_key_header(tenant, name, case):
    endpoint = BY_NAME[name]
    value = HEADERS[case][0](tenant)
    headers = {} if value is None else {"authorization": value}
    before = database_rows()
    response = send(tenant, endpoint, json.dumps(endpoint.body(tenant)).encode(), headers=headers)
    legal = 200 if endpoint.shape == "wcp" else 202
    status, fragment = _status(name, case, legal)
    if status == legal:
        assert response.status_code == legal, response.content
        return
    refused(tenant, response, status, fragment, before)


@pytest.mark.parametrize("case", HEADERS)
def test_every_variant_of_the_key_header_on_the_license_fetch(tenant, case):
    value = HEADERS[case][0](tenant)
    headers = {} if value is None else {"authorization": value}
    before = database_rows()
    response = Client(headers=headers).get(_wcp("license")(tenant))
    status, fragment = _status("license", case, 200)
    if status == 200:
        assert response.status_code == 200, response.content
        assert "license" in response.json()
        return
    refused(tenant, response, status, fragment, before)


@pytest.mark.parametrize("case", [c for c in HEADERS if c not in ("missing", "other-organization")])
def test_every_variant_of_the_key_in_a_telemetry_body(tenant, case):
    value = HEADERS[case][0](tenant) or ""
    body = BY_NAME["telemetry"].body(tenant)
    body["apiKey"] = value.strip().removeprefix("Bearer").removeprefix("bearer").strip()
    if case in ("basic-scheme", "trailing-garbage"):
        body["apiKey"] = value  # the whole value, as a confused client would send it
    before = database_rows()
    response = send(tenant, BY_NAME["telemetry"], json.dumps(body).encode(), headers={})
    status, fragment = _status("telemetry", case, 200)
    if case == "scheme-only":
        status, fragment = 401, "No API key"
    if status == 200:
        assert response.status_code == 200, response.content
        return
    refused(tenant, response, status, fragment, before)


@pytest.mark.parametrize(
    "value, status, fragment",
    [
        (None, 401, "No API key"),  # null: the header's key, and there is none
        (1, 400, "apiKey must be a string"),
        (["k"], 400, "apiKey must be a string"),
        ({"k": 1}, 400, "apiKey must be a string"),
    ],
)
def test_a_telemetry_api_key_of_the_wrong_type(tenant, value, status, fragment):
    body = {**BY_NAME["telemetry"].body(tenant), "apiKey": value}
    before = database_rows()
    response = send(tenant, BY_NAME["telemetry"], json.dumps(body).encode(), headers={})
    refused(tenant, response, status, fragment, before)


def test_graphql_get_environment_answers_a_disabled_environment_as_such(tenant):
    # The deploy hook refuses to deploy it; the answer itself is legal.
    value = HEADERS["disabled-environment"][0](tenant).removeprefix("Bearer ")
    response = send(
        tenant,
        BY_NAME["graphql"],
        json.dumps({"query": GET_ENVIRONMENT, "variables": {"apiKey": value}}).encode(),
    )
    assert response.json()["data"]["projects"]["getEnvironment"]["status"] == "disabled"


@pytest.mark.parametrize("case", ["truncated", "unknown", "revoked", "wrong-prefix"])
def test_graphql_get_environment_with_a_bad_api_key(tenant, case):
    value = HEADERS[case][0](tenant).removeprefix("Bearer ")
    before = database_rows()
    response = send(
        tenant,
        BY_NAME["graphql"],
        json.dumps({"query": GET_ENVIRONMENT, "variables": {"apiKey": value}}).encode(),
    )
    assert response.json()["errors"], response.content
    assert response.json()["data"]["projects"]["getEnvironment"] is None
    assert database_rows() == before


def test_a_personal_access_token_is_not_an_api_key(tenant):
    token = pat_issue(user=tenant.owner).plaintext
    before = database_rows()
    response = send(
        tenant,
        BY_NAME["usage"],
        json.dumps(READING).encode(),
        headers={"authorization": f"Bearer {token}"},
    )
    refused(tenant, response, 401, "malformed", before)


# --- bodies cut short or chunked, over a real socket (gunicorn, as in production) ------------
LIVE_PORTS = range(8600, 8700)  # the live-server ports of the request-body tests
# What a legal body answers, chunked or not.
ACCEPTED = {
    "usage": 202,
    "usage-batch": 202,
    "wcp-seats": 200,
    "wcp-tenants": 200,
    "telemetry": 200,
    "license-validate": 200,
    "cli-sessions": 201,
    "invitation-accept": 200,
    "customer-tokens": 201,
    "graphql": 200,
}


def _live_request(endpoint: Endpoint, tenant: Tenant, pat: str, *headers: str) -> str:
    auth = dict(endpoint.auth(tenant))
    if endpoint.signed_in:
        auth["authorization"] = f"Bearer {pat}"
    lines = [f"POST {endpoint.path(tenant)} HTTP/1.1", "Host: 127.0.0.1"]
    lines += [f"Content-Type: {endpoint.content_type}", "Connection: close", *headers]
    lines += [f"{name}: {value}" for name, value in auth.items()]
    return "\r\n".join(lines) + "\r\n"


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_bodies_cut_short_are_refused_and_chunked_ones_read_on_every_json_endpoint():
    tenant = make_tenant("acme")
    pat = pat_issue(user=tenant.owner).plaintext
    invited = invitation_create(
        organization=tenant.organization,
        email="new@acme.example",
        role="member",
        by=tenant.organization.memberships.get(user=tenant.owner),
    )
    with gunicorn_process(LIVE_PORTS) as port:
        for endpoint in ENDPOINTS:
            body = endpoint.body(tenant)
            if endpoint.name == "invitation-accept":
                body["token"] = invited.token
            data = json.dumps(body).encode()
            before = database_rows()
            short = http_exchange(
                port,
                _live_request(endpoint, tenant, pat, f"Content-Length: {len(data) + 5}"),
                data,
                close_write=True,
            )
            assert short == (
                400,
                {
                    "message": f"The body is shorter than its Content-Length ({len(data)} of "
                    f"{len(data) + 5} bytes); send it whole.",
                    "code": "truncated_body",
                },
            ), endpoint.name
            cut_chunk = http_exchange(
                port,
                _live_request(endpoint, tenant, pat, "Transfer-Encoding: chunked"),
                chunked(data)[:-12],
                close_write=True,
            )
            assert cut_chunk[0] == 400, (endpoint.name, cut_chunk)
            deep = http_exchange(
                port,
                _live_request(endpoint, tenant, pat, "Transfer-Encoding: chunked"),
                chunked(b"[" * 10_000 + b"]" * 10_000, 4096),
            )
            assert deep[0] == 400, (endpoint.name, deep)
            assert "nested too deeply" in deep[1]["message"], (endpoint.name, deep)
            assert database_rows() == before, endpoint.name
            whole = http_exchange(
                port,
                _live_request(endpoint, tenant, pat, "Transfer-Encoding: chunked"),
                chunked(data),
            )
            assert whole[0] == ACCEPTED[endpoint.name], (endpoint.name, whole)
