"""HTTP entry points of licensing. Thin: authenticate, call a selector or service, answer.

- GET /orgs/{orgId}/projects/{projectId}/license   the CMS's license fetch (WCP protocol)
- GET /.well-known/jwks.json                        public keys for offline verification
- POST /api/v1/licenses/validate                    online check of a token
"""

from __future__ import annotations

import logging

from django.db import DatabaseError
from django.http import HttpRequest, JsonResponse
from django.utils import timezone
from django.views.decorators.csrf import csrf_exempt
from drf_spectacular.utils import extend_schema, inline_serializer
from prometheus_client import Counter
from rest_framework import exceptions, serializers
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.licensing import services
from accounts.licensing.selectors.caller import license_caller
from accounts.licensing.selectors.published import jwks as published_jwks
from accounts.licensing.selectors.standing import Code
from accounts.licensing.selectors.validation import license_validate
from accounts.services.api_keys import api_key_touch
from accounts.services.last_use import last_use_due
from accounts.wcp import WcpRefusal, wcp_key_from_request

log = logging.getLogger(__name__)

RETRY_AFTER_SECONDS = "30"

LICENSE_FETCHES = Counter(
    "controlpanel_license_fetches",
    "License fetches (GET /orgs/{orgId}/projects/{projectId}/license) by outcome: served, "
    "refused (a 4xx: key, environment, contract) or unavailable (503).",
    ["outcome"],
)
_FETCHED = {
    outcome: LICENSE_FETCHES.labels(outcome) for outcome in ("served", "refused", "unavailable")
}


def _message(status: int, message: str, **headers: str) -> JsonResponse:
    return JsonResponse({"message": message}, status=status, headers=headers)


# Key-authenticated, never by cookie: without csrf_exempt, Django's CSRF check would answer
# any other method (POST, QUERY, ...) with its HTML 403 before the view's JSON 405 + Allow.
@csrf_exempt
def project_license(request: HttpRequest, org_id: str, project_id: str) -> JsonResponse:
    """The CMS fetches this every few minutes from every container. The key check and all
    standing checks run on every request, in one indexed query; only the signed answer is
    cached, so a cache hit costs that query and one cache read."""
    response = _project_license(request, org_id, project_id)
    status = response.status_code
    _FETCHED["served" if status < 400 else "unavailable" if status >= 500 else "refused"].inc()
    return response


def _project_license(request: HttpRequest, org_id: str, project_id: str) -> JsonResponse:
    if request.method != "GET":
        return _message(405, "Use GET to fetch a license.", Allow="GET")
    try:
        plaintext = wcp_key_from_request(request)
        cache_key = services.license_cache_key(plaintext_key=plaintext)
        cached = services.license_cached(cache_key=cache_key)
        caller = license_caller(
            plaintext=plaintext,
            org_slug=org_id,
            project_slug=project_id,
            cached_jti=cached["jti"] if cached else None,
        )
        if isinstance(caller, WcpRefusal):
            return _message(caller.status, caller.message)
        now = timezone.now()
        if last_use_due(caller.key_last_used_at, now):  # read by the caller query
            api_key_touch(api_key_id=caller.api_key_id, at=now)
        answer = services.license_answer(caller=caller, cache_key=cache_key, cached=cached)
    except services.LicensingError as exc:
        log.error("license signing unavailable: %s", exc)
        return _message(503, "Licenses cannot be signed right now; retry later.", **_retry_after())
    except DatabaseError:
        log.exception("license endpoint: database unavailable")
        return _message(503, "The Control Panel is unavailable; retry later.", **_retry_after())
    return JsonResponse(answer, headers={"Cache-Control": "no-store"})


def _retry_after() -> dict[str, str]:
    return {"Retry-After": RETRY_AFTER_SECONDS}


@csrf_exempt  # as project_license: a JSON 405 with Allow for every other method
def jwks(request: HttpRequest) -> JsonResponse:
    if request.method != "GET":
        return _message(405, "Use GET.", Allow="GET")
    try:
        body = published_jwks()
    except DatabaseError:
        log.exception("jwks: database unavailable")
        return _message(503, "The Control Panel is unavailable; retry later.", **_retry_after())
    # Verifiers may cache the set briefly; a verifier meeting an unknown kid refetches.
    return JsonResponse(body, headers={"Cache-Control": "public, max-age=300"})


# --- native API ---------------------------------------------------------------------------
class _ErrorShapeMixin:
    """Native API errors as {"message", "code"} rather than DRF's {"detail"}."""

    def handle_exception(self, exc: Exception) -> Response:
        response = super().handle_exception(exc)  # type: ignore[misc]
        if isinstance(exc, exceptions.APIException):
            codes = exc.get_codes()
            response.data = {
                "message": str(exc.detail),
                "code": codes if isinstance(codes, str) else "invalid",
            }
        return response


class ValidateResponse(serializers.Serializer):
    valid = serializers.BooleanField()
    code = serializers.ChoiceField(choices=[c.value for c in Code])
    message = serializers.CharField()


class LicenseValidateView(_ErrorShapeMixin, APIView):
    """Check a license token against the published keys and the current state."""

    authentication_classes: list = []
    permission_classes = [AllowAny]

    @extend_schema(
        request=inline_serializer(
            "LicenseValidate", {"token": serializers.CharField(allow_blank=True)}
        ),
        responses={200: ValidateResponse},
    )
    def post(self, request: Request) -> Response:
        data = request.data
        token = data.get("token") if isinstance(data, dict) else None
        if not isinstance(token, str):
            return Response(
                {"message": 'Send {"token": "<compact JWS>"}.', "code": "token_required"},
                status=400,
            )
        unknown = sorted(set(data) - {"token"})
        if unknown:
            return Response(
                {"message": f"Unknown field '{unknown[0]}'.", "code": "unknown_field"},
                status=400,
            )
        result = license_validate(token=token)
        return Response({"valid": result.valid, "code": result.code, "message": result.message})
