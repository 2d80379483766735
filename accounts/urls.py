"""URL routes of accounts (mounted at the site root by controlpanel.urls)."""

from __future__ import annotations

from django.urls import path

from accounts.licensing import views as licensing

urlpatterns = [
    # The CMS client's protocol (WCP): fixed path, raw `authorization` header.
    path(
        "orgs/<str:org_id>/projects/<str:project_id>/license",
        licensing.project_license,
        name="wcp-license",
    ),
    path(".well-known/jwks.json", licensing.jwks, name="jwks"),
    path(
        "api/v1/licenses/validate", licensing.LicenseValidateView.as_view(), name="license-validate"
    ),
]
