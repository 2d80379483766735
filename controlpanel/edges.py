"""The edges of the machine-facing paths: errors answer JSON there, never an HTML page.

CMS instances, the CMS's CLI and scripts call `/api/`, `/orgs/`, `/graphql`,
`/telemetry`, `/clients/` and `/.well-known/`; they read a status and a `message`. Whatever produced a
404 or 405 on those paths (no route, `Http404`, Django's method check, DEBUG's technical
page), the answer becomes `{"message", "code"}` with the same status and headers
(`Allow` included). Responses that are already JSON pass through untouched. A body over
DATA_UPLOAD_MAX_MEMORY_SIZE that a view let through (DRF's views read `request.body`)
answers 413 `{"message", "code"}`, not Django's 400 page.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from django.conf import settings
from django.core.exceptions import RequestDataTooBig
from django.http import HttpRequest, HttpResponse, JsonResponse

API_PATH = re.compile(r"^/(?:api/|orgs/|clients/|\.well-known/|graphql(?:/|$)|telemetry(?:/|$))")
# A base URL pasted with a trailing slash makes the CMS ask for `//graphql` (it joins
# `WCP_API_URL + "/graphql"`); serve those as the single-slash path.
DOUBLED_SLASH = re.compile(r"^/{2,}(?=(?:api/|orgs/|clients/|graphql|telemetry))")


def is_api_path(path: str) -> bool:
    return API_PATH.match(path) is not None


def _json_error(request: HttpRequest, response: HttpResponse) -> HttpResponse:
    if response.status_code == 404:
        body = {
            "message": f"Not found: nothing answers {request.path} here. "
            "The APIs are described at /api/docs/.",
            "code": "not_found",
        }
    else:
        allowed = response.headers.get("Allow", "")
        body = {
            "message": f"{request.method} is not allowed on {request.path}"
            + (f": use {allowed}." if allowed else "."),
            "code": "method_not_allowed",
        }
    answer = JsonResponse(body, status=response.status_code)
    # Everything the other middleware added (security headers, `Allow`, `Retry-After`)
    # stays; only the body and its type change.
    for name, value in response.items():
        if name.lower() not in ("content-type", "content-length"):
            answer[name] = value
    return answer


class ApiErrorsMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        collapsed = DOUBLED_SLASH.sub("/", request.path_info)
        if collapsed != request.path_info:
            script_name = request.path[: len(request.path) - len(request.path_info)]
            request.path_info = collapsed
            request.path = script_name + collapsed
        response = self.get_response(request)
        if (
            response.status_code in (404, 405)
            and is_api_path(request.path_info)
            and not response.headers.get("Content-Type", "").startswith("application/json")
        ):
            return _json_error(request, response)
        return response

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponse | None:
        if isinstance(exception, RequestDataTooBig) and is_api_path(request.path_info):
            limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE // (1024 * 1024)
            return JsonResponse(
                {"message": f"The body is larger than {limit} MiB.", "code": "too_large"},
                status=413,
            )
        return None


def not_found(request: HttpRequest, exception: Exception) -> HttpResponse:
    """handler404 of URLconfs that serve machine paths only (the ingest service): the same
    JSON answer, without rendering the site's HTML 404 page (whose layout links to routes
    such a URLconf does not have)."""
    return _json_error(request, HttpResponse(status=404))
