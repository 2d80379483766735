"""JSON nested deeper than the parser can go is the client's error: a 400, never a 500,
on the native ingest, the CMS protocol and the DRF endpoints; nothing is written.
(Chunked and truncated bodies: tests/metering/test_bodies_live.py, over a socket.)"""

from __future__ import annotations

import pytest

from metering.models import UsageGauge, UsageReading

pytestmark = pytest.mark.django_db

DEEP = "[" * 200_000 + "]" * 200_000


def test_deep_json_on_the_native_api_is_a_400(client, tenant):
    for path in ("/api/v1/usage", "/api/v1/usage/batch"):
        response = client.post(
            path,
            DEEP,
            content_type="application/json",
            HTTP_AUTHORIZATION=f"Bearer {tenant.api_key}",
        )
        assert response.status_code == 400
        assert response.json() == {
            "message": "The body is not valid JSON: it is nested too deeply.",
            "code": "invalid_json",
        }
    assert UsageReading.objects.count() == 0


def test_deep_json_on_the_cms_protocol_is_a_400(client, tenant):
    org, project = tenant.organization.slug, tenant.project.slug
    for path in (f"/orgs/{org}/projects/{project}/package/seats", "/telemetry"):
        response = client.post(
            path, DEEP, content_type="text/plain;charset=UTF-8", HTTP_AUTHORIZATION=tenant.api_key
        )
        assert response.status_code == 400
        assert response.json() == {
            "message": "The body is not valid JSON: it is nested too deeply."
        }
    assert UsageReading.objects.count() == 0
    assert UsageGauge.objects.count() == 0


def test_deep_json_on_a_drf_endpoint_is_a_400(client):
    response = client.post("/api/v1/licenses/validate", DEEP, content_type="application/json")
    assert response.status_code == 400
    assert response.json() == {
        "message": "The body is not valid JSON: it is nested too deeply.",
        "code": "invalid_json",
    }
