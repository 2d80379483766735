"""The console's admin site: the home page lists what needs attention, each item linking
to the filtered list that holds it."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.http import HttpRequest
from django.template.response import TemplateResponse

from metering.summary import console_home


class ConsoleSite(admin.AdminSite):
    site_header = "Control Panel staff"
    site_title = "Control Panel"
    index_title = "What needs attention"
    index_template = "admin/console_index.html"
    # The lists are wide (usage, flags, audit): the 300 px of a sidebar go to their columns.
    enable_nav_sidebar = False

    def index(
        self, request: HttpRequest, extra_context: dict[str, Any] | None = None
    ) -> TemplateResponse:
        return super().index(request, {"attention": console_home(), **(extra_context or {})})
