"""URL routes of metering (mounted at the site root by controlpanel.urls).

The `/orgs/...` and `/telemetry` paths are fixed by the existing CMS client. Each view
names its methods, so any other method answers 405 with `Allow` (as JSON:
controlpanel.edges)."""

from __future__ import annotations

from django.urls import path

from metering import views

urlpatterns = [
    path("api/v1/usage", views.usage, name="usage"),
    path("api/v1/usage/batch", views.usage_batch, name="usage-batch"),
    path(
        "orgs/<str:org_id>/projects/<str:project_id>/package/seats",
        views.package_seats,
        name="wcp-package-seats",
    ),
    path(
        "orgs/<str:org_id>/projects/<str:project_id>/package/tenants",
        views.package_tenants,
        name="wcp-package-tenants",
    ),
    path("telemetry", views.telemetry, name="wcp-telemetry"),
]
