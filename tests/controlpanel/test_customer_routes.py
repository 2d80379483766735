"""Structural guarantees of the customer API's routes."""

import pytest
from django.urls import URLPattern, URLResolver, get_resolver

from controlpanel.customer import urls
from controlpanel.customer.auth import PersonalAccessTokenAuthentication
from controlpanel.customer.base import CustomerAPIView, OrgScopedView


def routes():
    return [p for p in urls.urlpatterns if isinstance(p, URLPattern)]


def site_routes(patterns=None, prefix=""):
    """Every route of the whole site, whichever app mounts it."""
    for p in get_resolver().url_patterns if patterns is None else patterns:
        if isinstance(p, URLResolver):
            yield from site_routes(p.url_patterns, prefix + str(p.pattern))
        else:
            yield prefix + str(p.pattern), p


def test_every_organization_route_is_scoped_by_membership():
    org_routes = [p for route, p in site_routes() if route.startswith("api/v1/orgs/")]
    assert len(org_routes) == 11  # members, invitations, seats, environments, licenses, webhooks
    unscoped = [
        str(p.pattern)
        for p in org_routes
        if not issubclass(getattr(p.callback, "view_class", object), OrgScopedView)
    ]
    assert unscoped == []


def test_every_api_route_accepts_access_tokens_or_is_public_on_purpose():
    public = {"api/v1/cli/sessions", "api/v1/cli/sessions/<str:poll_id>"}
    for pattern in routes():
        route = str(pattern.pattern)
        if not route.startswith("api/v1/"):
            continue
        view = pattern.callback.view_class
        assert issubclass(view, CustomerAPIView), route
        if route not in public:
            assert PersonalAccessTokenAuthentication in view.authentication_classes, route


@pytest.mark.django_db
def test_openapi_schema_lists_the_team_endpoints(client):
    response = client.get("/api/schema/", {"format": "json"})
    assert response.status_code == 200
    paths = response.json()["paths"]
    for path in (
        "/api/v1/me",
        "/api/v1/projects",
        "/api/v1/cli/sessions",
        "/api/v1/orgs/{org}/invitations",
        "/api/v1/orgs/{org}/projects/{project}/personal-environments",
    ):
        assert path in paths
    assert "personalAccessToken" in response.json()["components"]["securitySchemes"]
