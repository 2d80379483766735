"""A database outage answers 503 with Retry-After, on every route: the one rule.

While PostgreSQL is down, restarting or unreachable, any view, middleware or template that
touches it raises `django.db.OperationalError` (no connection, the server went away) or
`InterfaceError` (a connection already closed). Two hooks apply the rule, `unavailable`:

- `OutageMiddleware.process_exception`, for whatever a view raises (DRF re-raises what
  it does not handle itself, so its views land here too): one warning line per request,
  not Django's traceback for each of the thousands an outage produces;
- `server_error`, the URLconfs' `handler500`, which Django calls while the exception is
  being handled, for what a middleware raises outside any view (a session saved on the
  way out). Every other exception keeps Django's 500 page.

The answer: JSON on machine paths (`controlpanel.edges.is_api_path`) in the error shape
their clients read (`{"message", "code"}`, and GraphQL's `errors` on `/graphql`), a short
page of its own elsewhere (the site's layout would query the database for its menu).
Views that answer storage failures themselves (ingest, licenses, GraphQL resolvers) keep
doing so. See docs/decisions/0011-outages-and-timeouts.md.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable

from django.db import InterfaceError, OperationalError
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.template import loader
from django.views.decorators.csrf import requires_csrf_token
from django.views.defaults import server_error as django_server_error

from controlpanel.edges import is_api_path

log = logging.getLogger(__name__)

OUTAGE_ERRORS = (OperationalError, InterfaceError)
RETRY_AFTER_SECONDS = 5
MESSAGE = "The Control Panel's database is unavailable; retry in a few seconds."


def is_outage(error: BaseException | None) -> bool:
    return isinstance(error, OUTAGE_ERRORS)


def unavailable(request: HttpRequest) -> HttpResponse:
    """The 503 answer for `request`'s kind of client."""
    response: HttpResponse
    if request.path_info.startswith("/graphql"):
        response = JsonResponse(
            {"errors": [{"message": MESSAGE, "extensions": {"code": "UNAVAILABLE"}}]}, status=503
        )
    elif is_api_path(request.path_info):
        response = JsonResponse({"message": MESSAGE, "code": "unavailable"}, status=503)
    else:
        page = loader.get_template("503.html").render({"retry_after": RETRY_AFTER_SECONDS})
        response = HttpResponse(page, status=503)
    response["Retry-After"] = str(RETRY_AFTER_SECONDS)
    # Neither a proxy nor a browser may keep the outage's answer.
    response["Cache-Control"] = "no-store"
    return response


@requires_csrf_token
def server_error(request: HttpRequest) -> HttpResponse:
    """handler500 of every URLconf: a 503 for a database outage, Django's 500 otherwise."""
    if is_outage(sys.exception()):
        return unavailable(request)
    return django_server_error(request)


class OutageMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        return self.get_response(request)

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponse | None:
        if not is_outage(exception):
            return None
        log.warning("database unavailable: %s %s: %s", request.method, request.path, exception)
        return unavailable(request)
