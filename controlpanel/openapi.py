"""The error answers every customer API operation can give, documented once.

A drf-spectacular post-processing hook (SPECTACULAR_SETTINGS["POSTPROCESSING_HOOKS"], after
the hooks that add the plain views): each operation of a DRF view gets the refusals its
shape implies, with the `{"message", "code", "field"?}` body of
`controlpanel.customer.base.customer_exception_handler`, unless the view documents that
status itself. The plain views (ingest, WCP, license fetch) document theirs completely in
their own hooks and are left alone. Schema fuzzing (tests/controlpanel/test_schema_fuzz.py)
holds the schema to what the server answers.
"""

from __future__ import annotations

from typing import Any

from accounts.licensing import openapi as licensing_openapi
from metering import openapi as metering_openapi

# The component of controlpanel.customer.base.ApiErrorSerializer.
ERROR = "ApiError"
BAD_REQUEST = (
    "Invalid input: a field is missing, has the wrong type or is out of range; `field` names it."
)
UNAUTHENTICATED = "No credentials, or a personal access token that is unknown, revoked or expired."
FORBIDDEN = (
    "The caller's role does not allow this (owners and admins only), or a browser "
    "session's CSRF check failed."
)
NOT_FOUND = (
    "No such organization among the caller's, or no such object in it (an id that is not "
    "an integer included). Non-members get this answer, never the organization's data."
)
CONFLICT = (
    "The change conflicts with the current state: the last owner, an invitation already "
    "closed, a limit reached, an existing object."
)
UNAVAILABLE = "The database or the cache is unavailable: retry after `Retry-After` seconds."

# Components whose views refuse fields they do not know (the rest ignore them).
CLOSED_OBJECTS = ("LicenseValidateRequest", "WebhookCreateRequest")


def _error(description: str) -> dict[str, Any]:
    return {
        "description": description,
        "content": {"application/json": {"schema": {"$ref": f"#/components/schemas/{ERROR}"}}},
    }


def _plain_view_paths() -> set[str]:
    return set(metering_openapi.PATHS) | set(licensing_openapi.PATHS)


def _refusals(path: str, method: str, operation: dict[str, Any]) -> dict[int, str]:
    refusals = {503: UNAVAILABLE}
    if method != "get" or any(p.get("in") == "query" for p in operation.get("parameters", [])):
        refusals[400] = BAD_REQUEST
    if method != "get":
        refusals[409] = CONFLICT
    security = operation.get("security", [])
    if security and {} not in security:
        refusals[401] = UNAUTHENTICATED
        if method != "get" or path.startswith("/api/v1/orgs/"):
            refusals[403] = FORBIDDEN
    if "{" in path:
        refusals[404] = NOT_FOUND
    return refusals


def _require_one_of(operation: dict[str, Any], schemas: dict[str, Any]) -> None:
    """A body that must be one of several shapes (a PolymorphicProxySerializer) cannot be
    left out: drf-spectacular marks such a body optional."""
    body = operation.get("requestBody")
    if body is None:
        return
    for media in body.get("content", {}).values():
        ref = media.get("schema", {}).get("$ref", "")
        if "oneOf" in schemas.get(ref.rpartition("/")[2], {}):
            body["required"] = True


def error_responses(
    result: dict[str, Any], generator: Any, request: Any, public: bool
) -> dict[str, Any]:
    plain = _plain_view_paths()
    for path, operations in result.get("paths", {}).items():
        if path in plain:
            continue
        for method, operation in operations.items():
            responses = operation.setdefault("responses", {})
            for status, description in sorted(_refusals(path, method, operation).items()):
                responses.setdefault(str(status), _error(description))
    schemas = result.setdefault("components", {}).setdefault("schemas", {})
    for operations in result.get("paths", {}).values():
        for operation in operations.values():
            _require_one_of(operation, schemas)
    for name in CLOSED_OBJECTS:
        if name in schemas:
            schemas[name]["additionalProperties"] = False
    return result
