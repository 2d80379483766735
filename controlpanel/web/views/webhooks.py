"""Webhooks: where compliance notifications are POSTed, and how the last ones went."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404
from django.views.decorators.http import require_POST

from accounts.models import Membership
from accounts.requests import signed_in_user
from accounts.services.audit import Actor
from controlpanel.web.access import org_page
from controlpanel.web.forms import WebhookForm
from controlpanel.web.views.common import done, page
from metering.compliance import selectors, services
from metering.compliance.models import Notification, WebhookEndpoint

LAST_DELIVERIES = 10


def _page(
    request: HttpRequest,
    membership: Membership,
    *,
    form: WebhookForm | None = None,
    secret: tuple[WebhookEndpoint, str] | None = None,
    status: int = 200,
) -> HttpResponse:
    endpoints = list(selectors.webhook_endpoints_for(organization=membership.organization))
    # Keyed as Notification.endpoint_id is typed (nullable); these rows all have one.
    deliveries: dict[int | None, list[Notification]] = {e.pk: [] for e in endpoints}
    # One query: the latest deliveries of all endpoints, cut per endpoint in Python.
    for n in Notification.objects.filter(endpoint__in=endpoints).order_by("-created_at", "-id")[
        : LAST_DELIVERIES * max(1, len(endpoints))
    ]:
        if len(deliveries[n.endpoint_id]) < LAST_DELIVERIES:
            deliveries[n.endpoint_id].append(n)
    return page(
        request,
        "web/webhooks.html",
        {
            "membership": membership,
            "rows": [(e, deliveries[e.pk]) for e in endpoints],
            "form": form or WebhookForm(),
            "secret": secret,
        },
        section="webhooks",
        breadcrumbs=[("Webhooks", None)],
        status=status,
    )


@org_page(manage=True)
def webhooks(request: HttpRequest, membership: Membership) -> HttpResponse:
    """Owners and admins only, reading included: endpoints carry delivery URLs."""
    return _page(request, membership)


@require_POST
@org_page(manage=True)
def webhook_add(request: HttpRequest, membership: Membership) -> HttpResponse:
    form = WebhookForm(request.POST)
    if form.is_valid():
        try:
            endpoint, secret = services.webhook_endpoint_create(
                organization=membership.organization,
                url=form.cleaned_data["url"],
                description=form.cleaned_data["description"],
                created_by=signed_in_user(request),
            )
        except services.ComplianceError as error:
            form.add_error(error.field if error.field in form.fields else None, error.message)
        else:
            return _page(request, membership, secret=(endpoint, secret))
    return _page(request, membership, form=form, status=400)


def _endpoint(membership: Membership, endpoint_id: int) -> WebhookEndpoint:
    return get_object_or_404(
        selectors.webhook_endpoints_for(organization=membership.organization), pk=endpoint_id
    )


@require_POST
@org_page(manage=True)
def webhook_remove(request: HttpRequest, membership: Membership, endpoint_id: int) -> HttpResponse:
    endpoint = _endpoint(membership, endpoint_id)
    services.webhook_endpoint_delete(endpoint=endpoint, actor=Actor.of(signed_in_user(request)))
    return done(
        request, f"Webhook {endpoint.url} removed.", "web:webhooks", membership.organization.slug
    )


@require_POST
@org_page(manage=True)
def webhook_test(request: HttpRequest, membership: Membership, endpoint_id: int) -> HttpResponse:
    endpoint = _endpoint(membership, endpoint_id)
    services.webhook_test_enqueue(endpoint=endpoint, by=signed_in_user(request))
    return done(
        request,
        f"Test event queued for {endpoint.url}; it is sent within a minute and shows below.",
        "web:webhooks",
        membership.organization.slug,
    )
