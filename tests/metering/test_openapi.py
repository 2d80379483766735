"""The OpenAPI schema at /api/schema/ lists every ingest endpoint with its error bodies."""

from __future__ import annotations

import pytest
import yaml
from django.urls import URLPattern

from metering import urls as metering_urls

pytestmark = pytest.mark.django_db


@pytest.fixture
def schema(client, staff_user):
    client.force_login(staff_user)
    response = client.get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json")
    assert response.status_code == 200
    content = response.content.decode()
    return yaml.safe_load(content)


def _openapi_path(pattern: URLPattern) -> str:
    route = str(pattern.pattern)
    route = route.replace("<str:org_id>", "{orgId}").replace("<str:project_id>", "{projectId}")
    return "/" + route


def test_schema_lists_every_ingest_route(schema):
    routes = {_openapi_path(p) for p in metering_urls.urlpatterns}
    assert routes == {
        "/api/v1/usage",
        "/api/v1/usage/batch",
        "/orgs/{orgId}/projects/{projectId}/package/seats",
        "/orgs/{orgId}/projects/{projectId}/package/tenants",
        "/telemetry",
    }
    assert routes <= set(schema["paths"])


def test_native_endpoints_document_their_errors(schema):
    post = schema["paths"]["/api/v1/usage/batch"]["post"]
    assert {"202", "400", "401", "403", "413", "415", "429", "503"} <= set(post["responses"])
    error = schema["components"]["schemas"]["UsageError"]
    assert {"message", "code", "index", "field"} <= set(error["properties"])
    reading = schema["components"]["schemas"]["UsageReading"]
    assert reading["additionalProperties"] is False
    assert set(reading["properties"]) == {
        "instance",
        "boot",
        "observed_at",
        "api_calls",
        "seats",
        "tenants",
    }
    assert "get" in schema["paths"]["/api/v1/usage"]


def test_wcp_endpoints_accept_text_plain_and_answer_message(schema):
    seats = schema["paths"]["/orgs/{orgId}/projects/{projectId}/package/seats"]["post"]
    assert "text/plain" in seats["requestBody"]["content"]
    assert seats["responses"]["403"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/WcpError"
    }
    assert "/telemetry" in schema["paths"]
