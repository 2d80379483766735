"""Not-found answers: JSON `{"message"}` under the machine paths (a client reads the
message), the site's page everywhere else."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.defaults import page_not_found

MACHINE_PREFIXES = ("/api/", "/orgs/", "/telemetry", "/graphql", "/clients/", "/.well-known/")


def not_found(request: HttpRequest, exception: Exception) -> HttpResponse:
    if request.path.startswith(MACHINE_PREFIXES):
        return JsonResponse({"message": "Not found.", "code": "not_found"}, status=404)
    return page_not_found(request, exception)
