"""HTTP entry points for the CMS's tooling: its CLI's GraphQL API and the telemetry client
its build installs into the CMS's GraphQL function."""

from __future__ import annotations

import hashlib
import json
import logging
import re
from functools import cache
from pathlib import Path
from typing import Any

from ariadne import graphql_sync
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured, RequestDataTooBig
from django.db import DatabaseError
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.http.request import RawPostDataException
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST, require_safe
from graphql import GraphQLError
from prometheus_client import Counter

from accounts import sealing
from controlpanel.bodies import InvalidJson, parse_json
from controlpanel.cms.resolvers import CmsError, Context, schema
from controlpanel.customer import ratelimit
from controlpanel.customer.api import public_url

log = logging.getLogger("controlpanel.cms")

RETRY_AFTER_SECONDS = 30

GRAPHQL_OPERATIONS = Counter(
    "controlpanel_graphql_operations",
    "GraphQL requests at /graphql by operation (the CLI's names; `other` for any other "
    "document) and outcome: ok, refused (errors the caller can fix: 4xx or GraphQL "
    "errors), unavailable (503) or failed (500).",
    ["operation", "outcome"],
)
# What the CMS CLI sends (DESIGN.md); any other name is `other`, so a caller cannot add
# label values.
CLI_OPERATIONS = frozenset(
    {
        "GenerateUserPat",
        "GetUserPat",
        "CreateUserPat",
        "GetUser",
        "ListOrgs",
        "ListProjects",
        "GetEnvironment",
        "CreateEnvironment",
        "UpdateLastActiveToNow",
    }
)
OPERATION_NAME = re.compile(r"\b(?:query|mutation|subscription)\s+([_A-Za-z][_0-9A-Za-z]*)")
CLIENT_SOURCE = Path(__file__).with_name("telemetry_client.js")
CLIENT_URL_PLACEHOLDER = '"__CONTROL_PANEL_URL__"'


def _request_error(status: int, message: str, code: str) -> JsonResponse:
    # Both conventions: GraphQL clients read `errors`, the CMS's HTTP helpers `message`.
    return JsonResponse(
        {"message": message, "errors": [{"message": message, "extensions": {"code": code}}]},
        status=status,
    )


def _callers_error(error: GraphQLError) -> bool:
    """Ours (a CmsError), or the parser's or validator's (they name the field or variable)."""
    return error.original_error is None or isinstance(error.original_error, GraphQLError)


class _UnexpectedOnly(logging.LoggerAdapter):
    """Ariadne logs every error of a result: keep only the server's own failures (with
    their tracebacks), not a CLI polling a pending login every 2 seconds."""

    def error(self, msg: Any, *args: Any, exc_info: Any = None, **kwargs: Any) -> None:
        if isinstance(exc_info, GraphQLError) and _callers_error(exc_info):
            return
        super().error(msg, *args, exc_info=exc_info, **kwargs)


_log_unexpected = _UnexpectedOnly(log, {})
UNAVAILABLE = (
    DatabaseError,
    ratelimit.LimiterUnavailable,
    ImproperlyConfigured,
    sealing.SealBroken,
)


def _formatter(context: Context) -> Any:
    """Errors as GraphQL `errors` with `extensions.code`; the server's own failures
    without their details (logged above), never a stack trace."""

    def format_error(error: GraphQLError, debug: bool = False) -> dict[str, Any]:
        formatted: dict[str, Any] = dict(error.formatted)
        original = error.original_error
        if isinstance(original, CmsError):
            context.note(original)
        elif _callers_error(error):
            formatted.setdefault("extensions", {"code": "GRAPHQL_VALIDATION_FAILED"})
        else:
            replacement = (
                CmsError(
                    "Temporarily unavailable: try again in a moment.",
                    "UNAVAILABLE",
                    http_status=503,
                    retry_after=RETRY_AFTER_SECONDS,
                )
                if isinstance(original, UNAVAILABLE)
                else CmsError(
                    "Internal server error: the Control Panel logged it.",
                    "INTERNAL",
                    http_status=500,
                )
            )
            context.note(replacement)
            formatted["message"] = replacement.message
            formatted["extensions"] = replacement.extensions
        return formatted

    return format_error


def _operation(data: dict[str, Any]) -> str:
    """The operation's name: `operationName`, else the first one the document names."""
    name, query = data.get("operationName"), data.get("query")
    if not isinstance(name, str):
        match = OPERATION_NAME.search(query) if isinstance(query, str) else None
        name = match.group(1) if match else ""
    return name if name in CLI_OPERATIONS else "other"


def _outcome(status: int, result: dict[str, Any]) -> str:
    if status >= 500:
        return "unavailable" if status == 503 else "failed"
    return "refused" if status >= 400 or result.get("errors") else "ok"


@csrf_exempt  # authenticated by a token header, never by cookies
@require_POST
def graphql(request: HttpRequest) -> HttpResponse:
    if request.content_type != "application/json":
        return _refused(
            415, "Send the GraphQL request as JSON (Content-Type: application/json).", "BAD_REQUEST"
        )
    try:
        data = parse_json(request.body)
    except (RequestDataTooBig, RawPostDataException):
        return _refused(413, "The request body is larger than 1 MiB.", "BAD_REQUEST")
    except InvalidJson as invalid:
        return _refused(400, invalid.message, "BAD_REQUEST")
    if not isinstance(data, dict):
        return _refused(
            400, 'The body must be a JSON object: {"query", "variables"}.', "BAD_REQUEST"
        )
    context = Context(request)
    success, result = graphql_sync(
        schema,
        data,
        context_value=context,
        introspection=settings.DEBUG,
        logger=_log_unexpected,
        error_formatter=_formatter(context),
    )
    status = context.http_status if success else 400
    GRAPHQL_OPERATIONS.labels(_operation(data), _outcome(status, result)).inc()
    response = JsonResponse(result, status=status)
    if context.retry_after is not None:
        response["Retry-After"] = str(context.retry_after)
    return response


def _refused(status: int, message: str, code: str) -> JsonResponse:
    """A request GraphQL never saw (not JSON, too large): counted as `other`."""
    GRAPHQL_OPERATIONS.labels("other", "refused").inc()
    return _request_error(status, message, code)


@cache
def _client_source() -> str:
    return CLIENT_SOURCE.read_text()


def telemetry_client_source(base_url: str) -> str:
    """The client with the Control Panel's base URL written in (as a JS string literal)."""
    return _client_source().replace(CLIENT_URL_PLACEHOLDER, json.dumps(base_url), 1)


@require_safe
def telemetry_client(request: HttpRequest) -> HttpResponse:
    """GET /clients/latest.js: no auth; the CMS build installs it as its function's
    handler.js. Cacheable: it only changes with this product's version and address."""
    body = telemetry_client_source(public_url(request))
    etag = '"' + hashlib.sha256(body.encode()).hexdigest()[:32] + '"'
    if request.headers.get("if-none-match") == etag:
        response = HttpResponse(status=304)
    else:
        response = HttpResponse(body, content_type="text/javascript; charset=utf-8")
    response["ETag"] = etag
    response["Cache-Control"] = "public, max-age=300"
    return response
