"""Calling the real WSGI application (controlpanel.wsgi) in tests, as a server would."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

from django.core.handlers.wsgi import WSGIRequest
from django.core.signals import request_finished, request_started
from django.db import close_old_connections
from django.http import HttpResponse
from django.test import Client, RequestFactory

from controlpanel import wsgi
from metering.ingest.wsgi import PATHS


@contextlib.contextmanager
def connections_kept() -> Iterator[None]:
    """As Django's test client does: the test's transaction must outlive the request."""
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    try:
        yield
    finally:
        request_started.connect(close_old_connections)
        request_finished.connect(close_old_connections)


def call(app: Any, environ: dict[str, Any]) -> tuple[str, list[tuple[str, str]], bytes]:
    """Status line, headers in order, body: everything the server would send."""
    started: list[tuple[str, list[tuple[str, str]]]] = []
    result = app(environ, lambda status, headers, exc_info=None: started.append((status, headers)))
    try:
        body = b"".join(result)
    finally:
        if hasattr(result, "close"):
            result.close()
    status, headers = started[0]
    return status, list(headers), body


def environ(path: str, body: bytes | str = b"", **extra: Any) -> dict[str, Any]:
    """A WSGI environ as Django's test client builds it (default content type JSON)."""
    extra.setdefault("content_type", "application/json")
    return RequestFactory().generic("POST", path, body, **extra).environ


class _LaneHandler:
    """A test-client handler that hands the environ to controlpanel.wsgi.application."""

    def __init__(self) -> None:
        self.ingest_posts = 0
        self.lane_answered = 0

    def __call__(self, env: dict[str, Any]) -> HttpResponse:
        if env["REQUEST_METHOD"] == "POST" and env["PATH_INFO"] in PATHS:
            self.ingest_posts += 1
        if wsgi.application._eligible(env) is not None:
            self.lane_answered += 1
        with connections_kept():
            status, headers, body = call(wsgi.application, env)
        response = HttpResponse(body, status=int(status.split(" ", 1)[0]))
        del response["Content-Type"]
        for name, value in headers:
            response[name] = value
        response.wsgi_request = WSGIRequest(env)  # type: ignore[attr-defined]
        return response


class WsgiClient(Client):
    """Django's test client API, answered by the real WSGI application."""

    def __init__(self, **defaults: Any) -> None:
        super().__init__(**defaults)
        self.handler = _LaneHandler()  # type: ignore[assignment]
