"""URL routes of controlpanel/customer (mounted at the site root by controlpanel.urls)."""

from __future__ import annotations

urlpatterns: list = []
