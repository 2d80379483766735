"""Helpers the page views share."""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render

from accounts.services.errors import ServiceError
from accounts.services.team import TeamError
from metering.compliance.services import ComplianceError


def page(
    request: HttpRequest,
    template: str,
    context: dict[str, Any],
    *,
    section: str = "",
    breadcrumbs: list[tuple[str, str | None]] | None = None,
    status: int = 200,
) -> HttpResponse:
    context = {**context, "section": section, "breadcrumbs": breadcrumbs or []}
    return render(request, template, context, status=status)


def error_text(error: Exception) -> str:
    if isinstance(error, (TeamError, ComplianceError)):
        return error.message
    if isinstance(error, ServiceError):
        return str(error)
    return str(error)


def done(request: HttpRequest, text: str, to: str, *args: Any) -> HttpResponse:
    messages.success(request, text)
    return redirect(to, *args)


def refused(request: HttpRequest, error: Exception, to: str, *args: Any) -> HttpResponse:
    messages.error(request, error_text(error))
    return redirect(to, *args)
