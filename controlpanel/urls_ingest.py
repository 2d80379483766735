"""Routes of the ingest-only service (controlpanel.settings_ingest): the native usage API,
the probes and its metrics. Everything else is `web`'s."""

from django.urls import path

from controlpanel import health, metrics
from metering import views

urlpatterns = [
    path("healthz", health.healthz, name="healthz"),
    path("readyz", health.readyz, name="readyz"),
    # What this service's workers counted; the database's figures are web's to serve.
    path("metrics", metrics.metrics, {"database": False}, name="metrics"),
    path("api/v1/usage", views.usage, name="usage"),
    path("api/v1/usage/batch", views.usage_batch, name="usage-batch"),
]

handler404 = "controlpanel.edges.not_found"
handler500 = "controlpanel.outages.server_error"
