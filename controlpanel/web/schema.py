"""The OpenAPI schema, readable in a browser: drf-spectacular answers YAML as
`application/vnd.oai.openapi`, which browsers download instead of showing. A browser
(asking for text/html, without `?format=`) gets the same YAML as text/plain."""

from __future__ import annotations

from typing import Any

from drf_spectacular.views import SpectacularAPIView
from rest_framework.request import Request
from rest_framework.response import Response


class BrowsableSchemaView(SpectacularAPIView):
    def finalize_response(self, request: Request, response: Response, *args: Any, **kwargs: Any):
        response = super().finalize_response(request, response, *args, **kwargs)
        wants_page = "text/html" in request.headers.get("accept", "")
        if wants_page and "format" not in request.query_params and response.status_code == 200:
            response.content_type = "text/plain; charset=utf-8"
        return response
