"""The OpenAPI schema covers the licensing endpoints, plain views included."""

import yaml


def test_schema_lists_the_licensing_endpoints(client, db):
    response = client.get("/api/schema/")

    assert response.status_code == 200
    schema = yaml.safe_load(response.content)
    paths = schema["paths"]
    license_op = paths["/orgs/{orgId}/projects/{projectId}/license"]["get"]
    assert set(license_op["responses"]) == {"200", "401", "403", "503"}
    assert paths["/.well-known/jwks.json"]["get"]["operationId"] == "license_jwks"
    assert "post" in paths["/api/v1/licenses/validate"]
    assert "get" in paths["/api/v1/orgs/{org}/licenses"]
    assert "WcpLicenseDocument" in schema["components"]["schemas"]
    assert (
        schema["components"]["securitySchemes"]["wcpLicenseKey"]["name"].lower() == "authorization"
    )
