"""A WSGI fast lane for `POST /api/v1/usage` and `POST /api/v1/usage/batch`.

Django's request handling and middleware cost about as much CPU per reading as the ingest
itself; none of it is needed here (API keys, no session, cookies, CSRF, users, messages
or static files). The lane answers these two routes from the environ with the very
function the Django views call (`metering.ingest.http.post_usage`), so the answers are
the same by construction, and keeps what Django does that these requests see:

- what `request_started` / `request_finished` do happens as in Django's WSGI handler
  (the second when the server closes the response), so database connections are
  checked, aged (CONN_MAX_AGE) and returned to the pool exactly as for any request.
  When only Django's own receivers listen, their work is done directly (cheaper than a
  signal's dispatch); with any other receiver, the signals are sent;
- the headers the middleware adds to these answers (X-Frame-Options, Content-Length,
  the SecurityMiddleware headers, HSTS on HTTPS) are computed by running those
  middlewares' own `process_response` once per scheme and reused;
- anything Django would answer differently is left to Django: a Host not in
  ALLOWED_HOSTS, a request SECURE_SSL_REDIRECT redirects, a request with cookies,
  DISALLOWED_USER_AGENTS or PREPEND_WWW set, a MIDDLEWARE the lane does not know,
  another method or path;
- answers of 400 and above are logged to `django.request` as Django's handler logs them;
- an unexpected exception is answered by Django's own `response_for_exception`
  (logging, `got_request_exception`, handler500).

INGEST_WSGI_FAST_LANE=0 turns the lane off (every request through Django).
"""

from __future__ import annotations

import io
from collections.abc import Callable, Iterable
from http.client import responses
from typing import Any

from django.conf import settings
from django.core import signals
from django.core.cache import caches, close_caches
from django.core.handlers.base import reset_urlconf
from django.core.handlers.exception import response_for_exception
from django.core.handlers.wsgi import WSGIHandler, WSGIRequest
from django.core.signals import setting_changed
from django.db import close_old_connections, connections, reset_queries
from django.dispatch import Signal
from django.dispatch.dispatcher import NONE_ID, _make_id
from django.http import HttpRequest, HttpResponse
from django.http.request import split_domain_port, validate_host
from django.urls import set_urlconf
from django.utils.log import log_response
from django.utils.module_loading import import_string

from metering.ingest import http
from metering.readings import Invalid

PATHS = {"/api/v1/usage": True, "/api/v1/usage/batch": False}  # path -> single


class _Environ:
    """Just enough of an HttpRequest for Django's own host and scheme logic."""

    __slots__ = ("META",)

    def __init__(self, environ: dict[str, Any]) -> None:
        self.META = environ

    def _get_scheme(self) -> str:
        return self.META.get("wsgi.url_scheme", "http")

    _get_raw_host = HttpRequest._get_raw_host
    get_port = HttpRequest.get_port
    scheme = HttpRequest.scheme
    is_secure = HttpRequest.is_secure


def _host_allowed(request: _Environ) -> bool:
    # As HttpRequest.get_host() (called by CommonMiddleware for every request).
    allowed_hosts = settings.ALLOWED_HOSTS
    if settings.DEBUG and not allowed_hosts:
        allowed_hosts = [".localhost", "127.0.0.1", "[::1]"]
    domain, _port = split_domain_port(request._get_raw_host())
    return bool(domain) and validate_host(domain, allowed_hosts)


# Middleware that adds headers to these answers; the lane applies it as Django would.
RESPONSE_MIDDLEWARE = frozenset(
    {
        "django.middleware.security.SecurityMiddleware",
        "django.middleware.common.CommonMiddleware",
        "django.middleware.clickjacking.XFrameOptionsMiddleware",
    }
)
# Middleware that changes nothing in these answers: static files under STATIC_URL only;
# no session, user, CSRF token or message is touched by a csrf-exempt view that reads
# none of them (requests carrying cookies go through Django anyway); JSON answers pass the
# API-errors middleware untouched.
NEUTRAL_MIDDLEWARE = frozenset(
    {
        "controlpanel.edges.ApiErrorsMiddleware",
        "whitenoise.middleware.WhiteNoiseMiddleware",
        "django.contrib.sessions.middleware.SessionMiddleware",
        "django.middleware.csrf.CsrfViewMiddleware",
        "django.contrib.auth.middleware.AuthenticationMiddleware",
        "django.contrib.messages.middleware.MessageMiddleware",
        # The web UI's: allauth's touches only sessions that hold a login in progress,
        # django-htmx's only reads HX-* request headers (into request.htmx).
        "allauth.account.middleware.AccountMiddleware",
        "django_htmx.middleware.HtmxMiddleware",
    }
)


def _middleware_known() -> bool:
    """The lane only runs when every configured middleware is one it accounts for."""
    return set(settings.MIDDLEWARE) <= RESPONSE_MIDDLEWARE | NEUTRAL_MIDDLEWARE


def _middleware_headers(secure: bool) -> list[tuple[str, str]]:
    """The headers the configured Security, Common and XFrameOptions middleware add to a
    JSON answer, in the order they add them, from those middlewares themselves.
    Content-Length is left as a placeholder."""

    class Probe:
        def is_secure(self) -> bool:
            return secure

    response = HttpResponse(b"", content_type="application/json")
    for path in reversed(settings.MIDDLEWARE):  # responses pass them in reverse order
        if path in RESPONSE_MIDDLEWARE:
            # Their process_response reads nothing else of the request for these answers.
            middleware = import_string(path)(lambda r: response)
            middleware.process_response(Probe(), response)  # type: ignore[arg-type]
    return [(k, v) for k, v in response.items() if k != "Content-Type"]


def _log(environ: dict[str, Any], body: list[bytes], answer: http.Reply) -> None:
    """What Django's handler logs for an answer of 400 and above (django.request)."""
    environ["wsgi.input"] = io.BytesIO(b"".join(body))
    request = WSGIRequest(environ)
    response = HttpResponse(answer.body, status=answer.status, content_type="application/json")
    log_response("%s: %s", response.reason_phrase, request.path, response=response, request=request)


def _lookup_keys(*receivers: Callable[..., Any]) -> frozenset[Any]:
    return frozenset((_make_id(r), NONE_ID) for r in receivers)


# Django's own receivers of the request signals (connected for any sender).
_DJANGO_STARTED = _lookup_keys(reset_queries, close_old_connections)
_DJANGO_FINISHED = _lookup_keys(close_old_connections, close_caches, reset_urlconf)


def _only(signal: Signal, keys: frozenset[Any]) -> bool:
    receivers = signal.receivers
    return len(receivers) == len(keys) and {r[0] for r in receivers} == keys


def _request_started(environ: dict[str, Any]) -> None:
    if _only(signals.request_started, _DJANGO_STARTED):
        # Exactly what those two receivers do, in one pass (a signal's dispatch costs
        # more than its work here).
        for conn in connections.all(initialized_only=True):
            conn.queries_log.clear()
            conn.close_if_unusable_or_obsolete()
    else:  # other receivers too (or Django's test client took one away): the signal
        signals.request_started.send(sender=WSGIHandler, environ=environ)


def _request_finished() -> None:
    if _only(signals.request_finished, _DJANGO_FINISHED):
        for conn in connections.all(initialized_only=True):
            conn.close_if_unusable_or_obsolete()
        caches.close_all()
        set_urlconf(None)
    else:
        signals.request_finished.send(sender=WSGIHandler)


class _Closing:
    """The body iterable; `close()` finishes the request as Django's responses do."""

    __slots__ = ("_chunks",)

    def __init__(self, chunks: list[bytes]) -> None:
        self._chunks = chunks

    def __iter__(self):  # type: ignore[no-untyped-def]
        return iter(self._chunks)

    def close(self) -> None:
        _request_finished()


class IngestLane:
    """WSGI middleware: the two ingest routes answered directly, the rest by `app`."""

    def __init__(self, app: Callable[..., Iterable[bytes]]) -> None:
        self.app = app
        self._headers: dict[bool, list[tuple[str, str]]] = {}
        self._hosts: dict[str, bool] = {}
        self._settings: tuple[bool, bool, bool] | None = None
        # Settings are fixed in production; tests change them (override_settings).
        setting_changed.connect(self._forget)

    def _forget(self, **kwargs: Any) -> None:
        self._headers.clear()
        self._hosts.clear()
        self._settings = None

    def _eligible(self, environ: dict[str, Any]) -> tuple[bool, bool] | None:
        """(single, secure) when the lane answers this request the way Django would,
        else None (Django answers)."""
        single = PATHS.get(environ.get("PATH_INFO", ""))
        if single is None or environ.get("REQUEST_METHOD") != "POST":
            return None
        if environ.get("HTTP_COOKIE"):
            return None  # session, CSRF and message cookies: Django's business
        if self._settings is None:
            self._settings = (
                bool(
                    settings.INGEST_WSGI_FAST_LANE
                    and _middleware_known()
                    and not settings.DISALLOWED_USER_AGENTS
                    and not settings.PREPEND_WWW
                ),
                bool(settings.SECURE_SSL_REDIRECT),
                bool(settings.SECURE_PROXY_SSL_HEADER),
            )
        enabled, ssl_redirect, proxy_ssl_header = self._settings
        if not enabled:
            return None
        request = _Environ(environ)
        if proxy_ssl_header:
            secure = request.is_secure()
        else:  # as HttpRequest.is_secure() without SECURE_PROXY_SSL_HEADER
            secure = environ.get("wsgi.url_scheme") == "https"
        if ssl_redirect and not secure:
            return None  # SecurityMiddleware redirects (no exemption matches these paths)
        raw_host = request._get_raw_host()
        allowed = self._hosts.get(raw_host)
        if allowed is None:
            allowed = _host_allowed(request)
            if len(self._hosts) < 256:
                self._hosts[raw_host] = allowed
        return (single, secure) if allowed else None

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        eligible = self._eligible(environ)
        if eligible is None:
            return self.app(environ, start_response)
        single, secure = eligible
        _request_started(environ)
        body: list[bytes] = []

        def read_body() -> bytes:
            # As WSGIRequest.body: CONTENT_LENGTH bytes, nothing without it.
            try:
                length = int(environ.get("CONTENT_LENGTH"))  # type: ignore[arg-type]
            except (ValueError, TypeError):
                length = 0
            limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
            if limit is not None and length > limit:
                raise Invalid(http.TOO_LARGE, "too_large", 413)  # as RequestDataTooBig
            data = environ["wsgi.input"].read(length) if length > 0 else b""
            body.append(data)
            return data

        try:
            answer = http.post_usage(environ, read_body, single=single)
        except Exception as exc:
            return self._exception(environ, start_response, exc, body, secure)
        if answer.status >= 400:
            _log(environ, body, answer)
        headers = [("Content-Type", "application/json"), *answer.headers]
        headers.extend(self._suffix(secure, len(answer.body)))
        start_response(f"{answer.status} {responses[answer.status]}", headers)
        return _Closing([answer.body])

    def _suffix(self, secure: bool, length: int) -> list[tuple[str, str]]:
        template = self._headers.get(secure)
        if template is None:
            template = self._headers[secure] = _middleware_headers(secure)
        return [(k, str(length) if k == "Content-Length" else v) for k, v in template]

    def _exception(
        self,
        environ: dict[str, Any],
        start_response: Callable[..., Any],
        exc: Exception,
        body: list[bytes],
        secure: bool,
    ) -> Any:
        environ["wsgi.input"] = io.BytesIO(b"".join(body))
        request = WSGIRequest(environ)
        response = response_for_exception(request, exc)
        headers = [(k, v) for k, v in response.items() if k != "Content-Length"]
        headers.extend(self._suffix(secure, len(response.content)))
        start_response(f"{response.status_code} {response.reason_phrase}", headers)
        return _Closing([response.content])
