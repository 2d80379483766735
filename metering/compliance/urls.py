"""URL routes of metering/compliance (mounted at the site root by controlpanel.urls).

The webhook-endpoint API is presentation: it lives with the customer API
(controlpanel/customer/webhooks.py), behind the same organization-scoped base view."""

from __future__ import annotations

urlpatterns: list = []
