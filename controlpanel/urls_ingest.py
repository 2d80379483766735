"""Routes of the ingest-only service (controlpanel.settings_ingest): the native usage API
and the probes. Everything else is `web`'s."""

from django.urls import path

from controlpanel import health
from metering import views

urlpatterns = [
    path("healthz", health.healthz, name="healthz"),
    path("readyz", health.readyz, name="readyz"),
    path("api/v1/usage", views.usage, name="usage"),
    path("api/v1/usage/batch", views.usage_batch, name="usage-batch"),
]

handler404 = "controlpanel.edges.not_found"
handler500 = "controlpanel.outages.server_error"
