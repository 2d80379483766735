"""URL routes of metering/compliance (mounted at the site root by controlpanel.urls)."""

from __future__ import annotations

urlpatterns: list = []
