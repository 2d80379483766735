"""The base of every customer API view: who is calling, in which organization.

`OrgScopedView` resolves `<org>` from the URL through the caller's own membership, so a
view under `/api/v1/orgs/<org>/...` cannot see another organization's rows by forgetting a
filter: non-members (outsiders, members of other organizations, staff) get 404, exactly as
if the organization did not exist. Querysets are then built from `self.organization`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.core.validators import RegexValidator
from django.http import Http404
from django.shortcuts import get_object_or_404
from drf_spectacular.utils import OpenApiResponse
from rest_framework import exceptions, serializers, status
from rest_framework.authentication import SessionAuthentication
from rest_framework.fields import empty
from rest_framework.permissions import IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView
from rest_framework.views import exception_handler as drf_exception_handler

from accounts.models import Membership, Organization, Project
from accounts.requests import signed_in_user
from accounts.services.team import TeamError
from controlpanel.customer import ratelimit
from controlpanel.customer.auth import PersonalAccessTokenAuthentication


def _flatten(detail: Any, prefix: str = "") -> tuple[str, str | None]:
    """First problem of a DRF error detail as (message, field)."""
    if isinstance(detail, dict):
        for key, value in detail.items():
            message, field = _flatten(value, key if key != "non_field_errors" else "")
            return message, field or (key if key != "non_field_errors" else None)
    if isinstance(detail, list) and detail:
        return _flatten(detail[0], prefix)
    return str(detail), prefix or None


def customer_exception_handler(exc: Exception, context: dict) -> Response | None:
    """Every refusal as `{"message", "code"}` (plus `field` for a bad input field)."""
    if isinstance(exc, TeamError):
        return Response({"message": exc.message, "code": exc.code}, status=exc.status)
    if isinstance(exc, ratelimit.LimiterUnavailable):
        return Response(
            {
                "message": "Temporarily unavailable: please try again shortly.",
                "code": "unavailable",
            },
            status=503,
            headers={"Retry-After": str(ratelimit.UNAVAILABLE_RETRY_AFTER)},
        )
    if isinstance(exc, Http404):
        return Response({"message": "Not found.", "code": "not_found"}, status=404)
    response = drf_exception_handler(exc, context)
    if response is None or not isinstance(exc, exceptions.APIException):
        return response
    body: dict[str, Any]
    if isinstance(exc, exceptions.ValidationError):
        message, field = _flatten(exc.detail)
        body = {"message": f"{field}: {message}" if field else message, "code": "invalid"}
        if field:
            body["field"] = field
    else:
        codes = exc.get_codes()
        body = {
            "message": str(exc.detail),
            "code": codes if isinstance(codes, str) else exc.default_code,
        }
    response.data = body
    return response


class CustomerAPIView(APIView):
    """A person calling, by session or `Bearer cpt_...` personal access token."""

    authentication_classes = [PersonalAccessTokenAuthentication, SessionAuthentication]
    permission_classes = [IsAuthenticated]

    def get_exception_handler(self) -> Callable[[Exception, dict], Response | None]:
        return customer_exception_handler


class OrgScopedView(CustomerAPIView):
    """Views under `/api/v1/orgs/<org>/...`. Methods in `manager_methods` need an owner or
    admin (403 for members); everything needs membership (404 otherwise)."""

    manager_methods: tuple[str, ...] = ("POST", "PUT", "PATCH", "DELETE")
    manager_message = "Only an owner or an admin of the organization can do this."
    organization: Organization
    membership: Membership

    def initial(self, request: Request, *args: Any, **kwargs: Any) -> None:
        super().initial(request, *args, **kwargs)
        membership = (
            Membership.objects.select_related("organization", "user")
            .filter(organization__slug=kwargs.get("org", ""), user=signed_in_user(request))
            .first()
        )
        if membership is None:
            raise Http404
        self.membership = membership
        self.organization = membership.organization
        if request.method in self.manager_methods and not membership.can_manage:
            raise exceptions.PermissionDenied(self.manager_message)

    def get_project(self, slug: str) -> Project:
        return get_object_or_404(Project, organization=self.organization, slug=slug)

    def get_member(self, user_id: int) -> Membership:
        return get_object_or_404(
            Membership.objects.select_related("user", "organization"),
            organization=self.organization,
            user_id=user_id,
        )


class StrictCharField(serializers.CharField):
    """A string field that refuses numbers and booleans (DRF's CharField turns `0` into
    "0"): the schema says `string`, so the server does too."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        shaped = any(isinstance(v, RegexValidator) for v in self.validators)
        if self.trim_whitespace and not self.allow_blank and not shaped:
            # Whitespace alone is blank once trimmed: the schema says so with a pattern.
            self.validators.append(RegexValidator(r"\S"))

    def run_validation(self, data: Any = empty) -> Any:
        # The length as sent, before trimming: the schema's maxLength is about the request.
        if isinstance(data, str) and self.max_length is not None and len(data) > self.max_length:
            self.fail("max_length", max_length=self.max_length)
        return super().run_validation(data)

    def to_internal_value(self, data: Any) -> str:
        if not isinstance(data, str):
            self.fail("invalid")
        return super().to_internal_value(data)


class ApiErrorSerializer(serializers.Serializer):
    """Documentation only: the body of every refusal (the `ApiError` component)."""

    message = serializers.CharField()
    code = serializers.CharField()
    field = serializers.CharField(required=False)


RATE_LIMITED = OpenApiResponse(
    ApiErrorSerializer, "Too many attempts from this client: retry after `Retry-After` seconds."
)


def created(data: Any) -> Response:
    return Response(data, status=status.HTTP_201_CREATED)
