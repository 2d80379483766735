"""The CLI's device-style login: start a session, poll it until the browser approves."""

from __future__ import annotations

from django.conf import settings
from django.http import HttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import serializers
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response

from accounts.services import access
from controlpanel.customer import ratelimit
from controlpanel.customer.api import iso, public_url, user_json
from controlpanel.customer.base import (
    RATE_LIMITED,
    ApiErrorSerializer,
    CustomerAPIView,
    StrictCharField,
)


class StartSerializer(serializers.Serializer):
    client = StrictCharField(max_length=100, required=False, default="", allow_blank=True)


class CliSessionsView(CustomerAPIView):
    """POST /api/v1/cli/sessions: no authentication; rate limited per client IP."""

    authentication_classes: list = []
    permission_classes = [AllowAny]

    @extend_schema(request=StartSerializer, responses={201: OpenApiTypes.OBJECT, 429: RATE_LIMITED})
    def post(self, request: Request) -> HttpResponse:  # a Response, or too_many's
        wait = ratelimit.check(request, "cli_sessions", "RATE_LIMIT_CLI_SESSIONS")
        if wait:
            return ratelimit.too_many(wait)
        serializer = StartSerializer(data=request.data)  # no body: {}; a JSON null: a 400
        serializer.is_valid(raise_exception=True)
        started = access.cli_session_start(client_name=serializer.validated_data["client"])
        return Response(
            {
                "id": started.poll_id,
                "status": "pending",
                "login_url": f"{public_url(request)}/login/cli?pat={started.code}",
                "interval": settings.CLI_LOGIN_POLL_INTERVAL,
                "expires_at": iso(started.session.expires_at),
                "expires_in": int(access.CLI_SESSION_LIFETIME.total_seconds()),
            },
            status=201,
        )


class CliSessionDetailView(CustomerAPIView):
    """GET /api/v1/cli/sessions/{id}: pending, then the token and user once, then expired.
    The id is a 256-bit secret only the CLI knows."""

    authentication_classes: list = []
    permission_classes = [AllowAny]

    @extend_schema(
        request=None,
        responses={
            200: OpenApiResponse(OpenApiTypes.OBJECT, "Pending, or approved: the token, once."),
            404: OpenApiResponse(ApiErrorSerializer, "No such CLI login."),
            410: OpenApiResponse(ApiErrorSerializer, "Denied, expired or already collected."),
        },
    )
    def get(self, request: Request, poll_id: str) -> Response:
        result = access.cli_session_poll(poll_id=poll_id)
        if result is None:
            return Response({"message": "No such CLI login.", "code": "not_found"}, status=404)
        state = result.state
        if state is access.PollState.PENDING:
            return Response({"status": "pending", "interval": settings.CLI_LOGIN_POLL_INTERVAL})
        if state is access.PollState.APPROVED and result.issued is not None:
            token = result.issued.token
            return Response(
                {
                    "status": "approved",
                    "token": result.issued.plaintext,
                    "token_expires_at": iso(token.expires_at),
                    "user": user_json(token.user),
                }
            )
        if state is access.PollState.DENIED:
            return Response(
                {
                    "status": "denied",
                    "message": "The login was denied in the browser.",
                    "code": "denied",
                },
                status=410,
            )
        return Response(
            {
                "status": "expired",
                "message": "This CLI login has expired or was already collected; log in again.",
                "code": "expired",
            },
            status=410,
        )
