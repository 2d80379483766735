"""`Authorization: Bearer cpt_...`: a person's personal access token, for the customer API."""

from __future__ import annotations

from django.http import HttpRequest
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from rest_framework import authentication, exceptions

from accounts.models import PersonalAccessToken, User
from accounts.services.access import PAT_KIND, pat_authenticate


class PersonalAccessTokenAuthentication(authentication.BaseAuthentication):
    """Only `Bearer cpt_...` values are ours; anything else is left to the next class."""

    keyword = "Bearer"

    def authenticate(self, request: HttpRequest) -> tuple[User, PersonalAccessToken] | None:
        header = request.META.get("HTTP_AUTHORIZATION", "")
        scheme, _, value = header.partition(" ")
        value = value.strip()
        if scheme.lower() != "bearer" or not value.startswith(f"{PAT_KIND}_"):
            return None
        token = pat_authenticate(value)
        if token is None:
            raise exceptions.AuthenticationFailed(
                "The access token is not valid: it is unknown, revoked or expired. "
                "Sign in again (python -m controlpanel.cli login)."
            )
        return token.user, token

    def authenticate_header(self, request: HttpRequest) -> str:
        return self.keyword


class PersonalAccessTokenScheme(OpenApiAuthenticationExtension):
    """Documents the scheme in the OpenAPI schema (drf-spectacular)."""

    target_class = PersonalAccessTokenAuthentication
    name = "personalAccessToken"

    def get_security_definition(self, auto_schema: object) -> dict:
        return {
            "type": "http",
            "scheme": "bearer",
            "description": "A personal access token: `Authorization: Bearer cpt_...`.",
        }
