"""Customer API for webhook endpoints: `/api/v1/orgs/<org>/webhooks`.

Owners and admins manage them; other members get 403, non-members 404 (an organization's
existence is not revealed). Every queryset is scoped by the caller's organization.
"""

from __future__ import annotations

from typing import Any

from django.core.validators import RegexValidator
from django.http import Http404
from drf_spectacular.utils import OpenApiResponse, extend_schema, inline_serializer
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response

from accounts.requests import signed_in_user
from accounts.services.audit import Actor
from controlpanel.customer.base import OrgScopedView
from metering.compliance import selectors, services
from metering.compliance.models import WebhookEndpoint

ALLOWED_FIELDS = {"url", "description"}
# Refusals that depend on the organization's endpoints, not on the request: a 409.
CONFLICTS = {"duplicate_url", "too_many_endpoints"}


def _error(message: str, code: str, http_status: int, field: str | None = None) -> Response:
    body: dict[str, Any] = {"message": message, "code": code}
    if field:
        body["field"] = field
    return Response(body, status=http_status)


def _endpoint_json(endpoint: WebhookEndpoint) -> dict[str, Any]:
    return {
        "id": endpoint.id,
        "url": endpoint.url,
        "description": endpoint.description,
        "is_active": endpoint.is_active,
        "secret_last_four": endpoint.secret_last_four,
        "created_at": endpoint.created_at.isoformat(),
    }


class WebhookEndpointSerializer(serializers.Serializer):
    """Documentation only: the shape `_endpoint_json` returns."""

    id = serializers.IntegerField()
    url = serializers.CharField()  # as given (checked by the service), not RFC 3986's `uri`
    description = serializers.CharField()
    is_active = serializers.BooleanField()
    secret_last_four = serializers.CharField()
    created_at = serializers.DateTimeField()


_ENDPOINT = WebhookEndpointSerializer
_ERROR = inline_serializer(
    "ComplianceError", {"message": serializers.CharField(), "code": serializers.CharField()}
)


class _WebhookView(OrgScopedView):
    """Owners and admins only, reading included: endpoints carry delivery URLs."""

    manager_methods = ("GET", "POST", "DELETE")
    manager_message = "Only owners and admins can manage webhooks."


class WebhookListView(_WebhookView):
    @extend_schema(
        operation_id="webhooks_list",
        responses={
            200: inline_serializer(
                "WebhookList", {"webhooks": WebhookEndpointSerializer(many=True)}
            )
        },
    )
    def get(self, request: Request, org: str) -> Response:
        organization = self.organization
        endpoints = selectors.webhook_endpoints_for(organization=organization)
        return Response({"webhooks": [_endpoint_json(e) for e in endpoints]})

    @extend_schema(
        operation_id="webhooks_create",
        request=inline_serializer(
            "WebhookCreate",
            {
                "url": serializers.CharField(
                    max_length=500,
                    validators=[RegexValidator(services.HTTPS_URL_PATTERN)],
                    help_text="An https URL of a public host, named by its DNS name.",
                ),
                "description": serializers.CharField(
                    required=False, allow_blank=True, max_length=200
                ),
            },
        ),
        responses={
            201: OpenApiResponse(_ENDPOINT, "The endpoint, with `secret` shown once."),
            400: OpenApiResponse(
                _ERROR, "Not an https URL of a public host, or a field of the wrong type."
            ),
            409: OpenApiResponse(
                _ERROR, "The organization already has this URL, or the most endpoints allowed."
            ),
        },
    )
    def post(self, request: Request, org: str) -> Response:
        organization = self.organization
        data = request.data
        if not isinstance(data, dict):
            return _error("Send a JSON object with `url`.", "invalid_body", 400)
        unknown = sorted(set(data) - ALLOWED_FIELDS)
        if unknown:
            return _error(f"Unknown field `{unknown[0]}`.", "unknown_field", 400, unknown[0])
        url, description = data.get("url"), data.get("description", "")
        if not isinstance(url, str) or not url:
            return _error("`url` is required.", "missing_url", 400, "url")
        if not isinstance(description, str):
            return _error(
                "`description` must be a string.", "invalid_description", 400, "description"
            )
        try:
            endpoint, secret = services.webhook_endpoint_create(
                organization=organization,
                url=url,
                description=description,
                created_by=signed_in_user(request),
            )
        except services.ComplianceError as exc:
            status_code = 409 if exc.code in CONFLICTS else 400
            return _error(exc.message, exc.code, status_code, exc.field)
        # The secret is shown here once; afterwards only its last four characters.
        return Response(
            {**_endpoint_json(endpoint), "secret": secret}, status=status.HTTP_201_CREATED
        )


class WebhookDetailView(_WebhookView):
    def _endpoint(self, request: Request, org: str, endpoint_id: int) -> WebhookEndpoint:
        organization = self.organization
        endpoint = (
            selectors.webhook_endpoints_for(organization=organization)
            .filter(id=endpoint_id)
            .first()
        )
        if endpoint is None:
            raise Http404
        return endpoint

    @extend_schema(operation_id="webhooks_retrieve", responses={200: _ENDPOINT, 404: _ERROR})
    def get(self, request: Request, org: str, endpoint_id: int) -> Response:
        return Response(_endpoint_json(self._endpoint(request, org, endpoint_id)))

    @extend_schema(operation_id="webhooks_destroy", responses={204: None, 404: _ERROR})
    def delete(self, request: Request, org: str, endpoint_id: int) -> Response:
        services.webhook_endpoint_delete(
            endpoint=self._endpoint(request, org, endpoint_id),
            actor=Actor.of(signed_in_user(request)),
        )
        return Response(status=status.HTTP_204_NO_CONTENT)
