"""Unknown routes and wrong methods under the machine-facing paths answer JSON
`{"message", "code"}` (never an HTML page), with `Allow` on a 405; pages keep HTML."""

from __future__ import annotations

import pytest
from django.test import Client

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize(
    "path",
    [
        "/api/v2/usage",
        "/api/v1/nope",
        "/orgs/acme/projects/website/nope",
        "/graphql/v2",
        "/telemetry/batch",
        "/clients/v2.js",
    ],
)
@pytest.mark.parametrize("debug", [False, True])
def test_unknown_api_routes_answer_json_404(path, debug, settings):
    settings.DEBUG = debug
    response = Client().post(path, "{}", content_type="application/json")
    assert response.status_code == 404
    assert response["Content-Type"] == "application/json"
    assert response.json() == {
        "message": f"Not found: nothing answers {path} here. The APIs are described at /api/docs/.",
        "code": "not_found",
    }


@pytest.mark.parametrize(
    ("method", "path", "allow"),
    [
        ("get", "/telemetry", "POST"),
        ("get", "/api/v1/usage/batch", "POST"),
        ("delete", "/api/v1/usage", "GET, POST"),
        ("get", "/orgs/acme/projects/website/package/seats", "POST"),
        ("put", "/orgs/acme/projects/website/package/tenants", "POST"),
        ("get", "/graphql", "POST"),
        ("post", "/clients/latest.js", "GET, HEAD"),
    ],
)
def test_wrong_methods_answer_json_405_with_allow(method, path, allow):
    response = getattr(Client(), method)(path)
    assert response.status_code == 405
    assert response["Allow"] == allow
    assert response.json() == {
        "message": f"{method.upper()} is not allowed on {path}: use {allow}.",
        "code": "method_not_allowed",
    }


def test_json_errors_of_the_views_themselves_pass_unchanged(client):
    response = client.post("/license.json", "{}", content_type="application/json")
    assert response.status_code == 404  # not an API path: Django's page
    assert "application/json" not in response["Content-Type"]
    license = client.post("/orgs/acme/projects/website/license")
    assert (license.status_code, license.json()) == (
        405,
        {"message": "Use GET to fetch a license."},
    )


def test_a_doubled_slash_before_an_api_path_is_the_same_path():
    # WCP_API_URL pasted with a trailing slash: the CMS asks for `//graphql`. (The test
    # client would read `//x` as a host name: the path is set as the server sees it.)
    assert Client().get("/", PATH_INFO="//clients/latest.js").status_code == 200
    assert Client().get("/", PATH_INFO="//graphql")["Allow"] == "POST"
