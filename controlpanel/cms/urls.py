"""URL routes of controlpanel/cms (mounted at the site root: the CMS fixes these paths)."""

from __future__ import annotations

from django.urls import path

from controlpanel.cms import views

urlpatterns = [
    path("graphql", views.graphql, name="cms-graphql"),
    path("clients/latest.js", views.telemetry_client, name="cms-telemetry-client"),
]
