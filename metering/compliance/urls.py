"""URL routes of metering/compliance (mounted at the site root by controlpanel.urls)."""

from __future__ import annotations

from django.urls import path

from metering.compliance import views

urlpatterns = [
    path(
        "api/v1/orgs/<slug:org_slug>/webhooks",
        views.WebhookListView.as_view(),
        name="compliance-webhooks",
    ),
    path(
        "api/v1/orgs/<slug:org_slug>/webhooks/<int:endpoint_id>",
        views.WebhookDetailView.as_view(),
        name="compliance-webhook",
    ),
]
