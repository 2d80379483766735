"""Site routes. Each app owns its routes; they are mounted here at the root because the
CMS protocol's paths (`/orgs/...`, `/telemetry`, `/graphql`, `/clients/latest.js`,
`/.well-known/jwks.json`, `/<org>/<project>/settings`) are fixed."""

from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularSwaggerView

from controlpanel import health, metrics
from controlpanel.web import urls as web_urls
from controlpanel.web.schema import BrowsableSchemaView

urlpatterns = [
    path("healthz", health.healthz, name="healthz"),
    path("readyz", health.readyz, name="readyz"),
    path("metrics", metrics.metrics, name="metrics"),
    path("admin/", admin.site.urls),
    path("api/schema/", BrowsableSchemaView.as_view(), name="api-schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="api-schema"), name="api-docs"),
    path("", include("metering.urls")),
    path("", include("metering.compliance.urls")),
    path("", include("accounts.urls")),
    path("", include("controlpanel.cms.urls")),
    path("", include(web_urls.site_patterns)),
    path("", include("controlpanel.customer.urls")),
    # Last: `<org>/...` pages must not shadow any fixed path above.
    path("", include((web_urls.org_patterns, "web"))),
]

# A database outage answers 503 with Retry-After on every route (controlpanel.outages).
handler500 = "controlpanel.outages.server_error"
