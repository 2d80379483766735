"""The OpenAPI schema and the server agree: what schemathesis found, one test each.

The live fuzzing itself is tests/controlpanel/test_schema_fuzz.py; these pin each finding
without a server: responses the schema did not document, a method answered by Django's
CSRF page instead of a JSON 405 with `Allow`, inputs the schema allowed but the server
refused (and the reverse)."""

from __future__ import annotations

import pytest
from django.test import Client
from django.urls import URLPattern

from tests.controlpanel.test_customer_routes import site_routes

pytestmark = pytest.mark.django_db


@pytest.fixture
def schema(client) -> dict:
    response = client.get("/api/schema/", {"format": "json"})
    assert response.status_code == 200
    return response.json()


def _operations(schema: dict):
    for path, operations in schema["paths"].items():
        for method, operation in operations.items():
            yield path, method, operation


def test_every_customer_operation_documents_its_refusals(schema):
    missing = []
    for path, method, operation in _operations(schema):
        responses = set(operation["responses"])
        expected = {"503"}
        if operation.get("security") and {} not in operation["security"]:
            expected.add("401")
        if "{" in path and path.startswith("/api/v1/"):
            expected.add("404")
        if method != "get" and path.startswith("/api/v1/orgs/"):
            expected |= {"400", "403", "409"}
        if not expected <= responses:
            missing.append((method, path, sorted(expected - responses)))
    assert missing == []


@pytest.mark.parametrize(
    ("method", "path", "status"),
    [
        ("post", "/api/v1/tokens", "201"),
        ("delete", "/api/v1/tokens/{token_id}", "200"),
        ("post", "/api/v1/cli/sessions", "201"),
        ("post", "/api/v1/cli/sessions", "429"),
        ("get", "/api/v1/cli/sessions/{poll_id}", "410"),
        ("post", "/api/v1/invitations/accept", "404"),
        ("post", "/api/v1/invitations/accept", "429"),
        ("delete", "/api/v1/orgs/{org}/members/{user_id}", "200"),
        ("post", "/api/v1/orgs/{org}/invitations", "201"),
        ("delete", "/api/v1/orgs/{org}/invitations/{invitation_id}", "200"),
        ("post", "/api/v1/orgs/{org}/projects/{project}/seats", "201"),
        ("delete", "/api/v1/orgs/{org}/projects/{project}/seats/{user_id}", "200"),
        ("post", "/api/v1/orgs/{org}/projects/{project}/personal-environments", "201"),
        ("post", "/api/v1/orgs/{org}/webhooks", "409"),
        ("get", "/api/v1/usage", "503"),
    ],
)
def test_the_status_the_server_answers_is_documented(schema, method, path, status):
    assert status in schema["paths"][path][method]["responses"]


def test_refusal_bodies_are_the_customer_api_error(schema):
    error = schema["components"]["schemas"]["ApiError"]
    assert set(error["required"]) == {"message", "code"}
    ref = schema["paths"]["/api/v1/me"]["get"]["responses"]["401"]["content"]
    assert ref["application/json"]["schema"] == {"$ref": "#/components/schemas/ApiError"}


def test_resend_is_not_a_second_way_to_revoke(schema):
    """InvitationResendView inherited DELETE (a revoke) from the detail view."""
    assert set(schema["paths"]["/api/v1/orgs/{org}/invitations/{invitation_id}/resend"]) == {"post"}


def test_request_bodies_say_what_the_serializers_enforce(schema):
    schemas = schema["components"]["schemas"]
    accept = schemas["AcceptRequest"]["properties"]
    # Blank (or whitespace only) is refused: minLength and a non-blank pattern.
    assert (accept["token"]["minLength"], accept["token"]["pattern"]) == (1, r"\S")
    name = schemas["NameRequest"]["properties"]["name"]
    assert (name["maxLength"], name["pattern"]) == (40, "^[a-z0-9][a-z0-9-]{0,39}$")
    # Optional labels may be blank: blank means "none".
    assert "minLength" not in schemas["TokenRequest"]["properties"]["name"]
    assert schemas["WebhookCreateRequest"]["additionalProperties"] is False
    assert schemas["LicenseValidateRequest"]["additionalProperties"] is False
    assert "oneOf" in schemas["SeatAssignRequest"]
    seats = schema["paths"]["/api/v1/orgs/{org}/projects/{project}/seats"]["post"]
    assert seats["requestBody"]["required"] is True
    # PATCH takes the whole serializer: `role` is required.
    role = schema["paths"]["/api/v1/orgs/{org}/members/{user_id}"]["patch"]["requestBody"]
    assert role["content"]["application/json"]["schema"]["$ref"].endswith("/RoleRequest")
    assert set(seats["requestBody"]["content"]) == {"application/json"}  # JSON is the contract


def test_ingest_schema_documents_its_windows_and_nulls(schema):
    reading = schema["components"]["schemas"]["UsageReading"]["properties"]
    assert "5 minutes ahead" in reading["observed_at"]["description"]
    assert "RETENTION_DAYS" in reading["observed_at"]["description"]
    assert all(reading[f].get("nullable") for f in ("observed_at", "boot", "seats", "tenants"))
    to = next(p for p in schema["paths"]["/api/v1/usage"]["get"]["parameters"] if p["name"] == "to")
    assert "744 hour buckets" in to["description"]
    telemetry = schema["components"]["schemas"]["WcpTelemetry"]
    assert telemetry["required"] == ["logs"]
    log = telemetry["properties"]["logs"]["items"]["properties"]
    assert "type" not in log["executionDuration"]  # ignored and never stored
    wcp = schema["components"]["securitySchemes"]["wcpApiKey"]
    assert wcp["name"] == "Authorization"  # as tools match it (HTTP names are case-blind)


@pytest.mark.parametrize("path", ["/.well-known/jwks.json", "/orgs/acme/projects/web/license"])
@pytest.mark.parametrize("method", ["POST", "QUERY", "DELETE"])
def test_other_methods_on_the_license_views_answer_json_405_with_allow(path, method):
    # Before: Django's CSRF check answered a 403 HTML page first.
    response = Client(enforce_csrf_checks=True).generic(method, path)
    assert response.status_code == 405
    assert response["Allow"] == "GET"
    assert response["Content-Type"] == "application/json"


def _int_routes() -> list[str]:
    return sorted(
        route
        for route, pattern in site_routes()
        if isinstance(pattern, URLPattern)
        and "<int:" in route
        and route.startswith(("api/", "orgs/"))
    )


@pytest.mark.parametrize("route", _int_routes())
def test_a_non_integer_id_is_a_json_404(route, tenant):
    path = "/" + route.replace("<slug:org>", "acme").replace("<slug:project>", "website")
    path = path.replace("<str:poll_id>", "x")
    for part in path.split("/"):
        if part.startswith("<int:"):
            path = path.replace(part, "null,null", 1)
    client = Client()
    client.force_login(tenant.owner)
    for method in ("get", "post", "patch", "delete"):
        response = getattr(client, method)(path)
        assert response.status_code == 404, (method, path)
        assert response["Content-Type"] == "application/json", (method, path)
        assert response.json()["code"] == "not_found"


def test_the_int_routes_are_found():
    assert len(_int_routes()) == 6  # tokens, members, invitations (2), seats, webhooks


@pytest.mark.parametrize(
    ("body", "status"),
    [
        ({"client": 0}, 400),  # a number is not a string (DRF's CharField made it "0")
        ({"client": "\n"}, 201),  # an optional label may be blank
        ({"client": " " * 101}, 400),  # maxLength counts what was sent, not what is kept
        ({}, 201),
    ],
)
def test_cli_session_client_is_a_string(body, status):
    response = Client().post("/api/v1/cli/sessions", body, content_type="application/json")
    assert response.status_code == status


def test_cli_session_refuses_a_null_body():
    response = Client().post("/api/v1/cli/sessions", "null", content_type="application/json")
    assert response.status_code == 400


def test_an_invalid_invitation_link_is_said_before_a_missing_password():
    response = Client().post(
        "/api/v1/invitations/accept", {"token": "nope"}, content_type="application/json"
    )
    assert (response.status_code, response.json()["code"]) == (404, "invitation_invalid")


@pytest.mark.parametrize(
    "value",
    ["0001-01-01T00:00:00+05:00", "9999-12-31T23:59:59-05:00"],
)
def test_a_timestamp_with_no_utc_instant_is_a_400(tenant, value):
    response = Client().post(
        "/api/v1/usage",
        {"instance": "web-1", "api_calls": 1, "observed_at": value},
        content_type="application/json",
        headers={"authorization": f"Bearer {tenant.api_key}"},
    )
    assert (response.status_code, response.json()["code"]) == (400, "timestamp_out_of_range")


def test_an_empty_to_is_a_bad_timestamp_not_now(tenant):
    response = Client().get(
        "/api/v1/usage?to=", headers={"authorization": f"Bearer {tenant.api_key}"}
    )
    assert (response.status_code, response.json()["field"]) == (400, "to")


def test_telemetry_api_key_of_another_type_is_refused(tenant):
    response = Client().post(
        "/telemetry",
        '{"apiKey": 0, "logs": []}',
        content_type="text/plain",
        headers={"authorization": tenant.api_key},
    )
    assert response.status_code == 400


def test_telemetry_created_on_past_year_9999_is_a_400(tenant):
    response = Client().post(
        "/telemetry",
        f'{{"apiKey": "{tenant.api_key}", "logs": [{{"createdOn": {2**64}}}]}}',
        content_type="text/plain",
    )
    assert response.status_code == 400


@pytest.mark.parametrize(
    "url",
    [
        "https://hooks.example.com/x?y=%7C",
        "https://a.b.example.com:8443/path",
    ],
)
def test_webhook_urls_the_schema_allows_are_accepted(tenant, url):
    client = Client()
    client.force_login(tenant.owner)
    response = client.post(
        "/api/v1/orgs/acme/webhooks", {"url": url}, content_type="application/json"
    )
    assert response.status_code == 201, response.json()


@pytest.mark.parametrize(
    "url",
    [
        "https://R.24.okHLuBQTgs?\u0003",  # a control character was stored, then served
        "https://0.r.example:98?%)208|",  # a broken %-escape and `|`
        "https://0?000",  # no top-level domain
    ],
)
def test_webhook_urls_that_are_no_uri_are_refused(tenant, url):
    client = Client()
    client.force_login(tenant.owner)
    response = client.post(
        "/api/v1/orgs/acme/webhooks", {"url": url}, content_type="application/json"
    )
    assert (response.status_code, response.json()["code"]) == (400, "invalid_url")
