"""Authentication of the existing CMS client (the WCP protocol).

The client sends the environment API key as the raw value of the `authorization` header
(no `Bearer`), against `/orgs/{orgId}/projects/{projectId}/...`. The key must belong to an
enabled environment of that organization and project. Refusals carry the status and the
`message` the CMS shows its user.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.http import HttpRequest

from accounts.models import ApiKey, Environment
from accounts.selectors.api_keys import api_key_check

WRONG_PROJECT_MESSAGE = (
    "This API key does not belong to an environment of that organization and project."
)


@dataclass(frozen=True)
class WcpCaller:
    api_key: ApiKey
    environment: Environment


@dataclass(frozen=True)
class WcpRefusal:
    status: int
    message: str


def wcp_key_from_request(request: HttpRequest) -> str:
    """The raw `authorization` value; a `Bearer ` prefix is tolerated for native clients."""
    raw = request.headers.get("authorization", "").strip()
    if raw[:7].lower() == "bearer ":
        raw = raw[7:].strip()
    return raw


def wcp_authenticate(
    plaintext: str, *, org_slug: str | None = None, project_slug: str | None = None
) -> WcpCaller | WcpRefusal:
    """Check a key and, when given, that it belongs to that organization and project."""
    check = api_key_check(plaintext)
    if check.problem is not None:
        return WcpRefusal(check.problem.status, check.problem.message)
    assert check.api_key is not None
    environment = check.api_key.environment
    project = environment.project
    if (project_slug is not None and project.slug != project_slug) or (
        org_slug is not None and project.organization.slug != org_slug
    ):
        return WcpRefusal(403, WRONG_PROJECT_MESSAGE)
    return WcpCaller(check.api_key, environment)
