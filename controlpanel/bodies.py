"""Request bodies, for every endpoint (Django views, DRF views, any later one).

Django's WSGIRequest reads exactly CONTENT_LENGTH bytes of a body: a body sent with
`Transfer-Encoding: chunked` (no Content-Length; a 2022 WCP client sends its telemetry
so) reads as empty, and a body shorter than its Content-Length reads as what arrived.
`RequestBodies` wraps the WSGI application and, before Django builds the request:

- reads a chunked body when the server says the input ends where the body does
  (`wsgi.input_terminated`, which gunicorn sets), at most one byte past
  DATA_UPLOAD_MAX_MEMORY_SIZE, and hands it on with its length, so Django's own limit
  applies to it as to any body (each endpoint then answers 413 in its own shape);
- refuses a body shorter than its Content-Length with a 400 before any view runs, so
  nothing is written for it.

JSON bodies are decoded by one rule, `parse_json`, on every endpoint (the ingest views,
`/graphql`, and DRF through `JSONParser`): what is not strict JSON is the client's error,
named in `InvalidJson.message`: not UTF-8, not JSON, NaN or Infinity, nested deeper than
the parser can go, or an object with a key twice (the last would otherwise win silently:
`"api_calls": 1, "api_calls": 1000` would count 1000).

Public WSGI and Django APIs only.
"""

from __future__ import annotations

import io
import json
from collections.abc import Callable, Iterable
from typing import Any

from django.conf import settings
from rest_framework import parsers
from rest_framework.exceptions import ParseError

WsgiApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]

TRUNCATED = (
    "The body is shorter than its Content-Length ({got} of {expected} bytes); send it whole."
)
UNREADABLE = "The chunked body could not be read to its end; send it whole."
_FALLBACK_LIMIT = 1024 * 1024


def _limit() -> int:
    return settings.DATA_UPLOAD_MAX_MEMORY_SIZE or _FALLBACK_LIMIT


def _read(stream: Any, size: int) -> bytes:
    """Up to `size` bytes; fewer only when the input ended."""
    parts: list[bytes] = []
    left = size
    while left > 0:
        part = stream.read(left)
        if not part:
            break
        parts.append(part)
        left -= len(part)
    return b"".join(parts)


def _bad_request(start_response: Callable[..., Any], message: str, code: str) -> list[bytes]:
    body = json.dumps({"message": message, "code": code}, separators=(",", ":")).encode()
    start_response(
        "400 Bad Request",
        [
            ("Content-Type", "application/json"),
            ("Content-Length", str(len(body))),
            # What follows on the connection cannot be trusted to start a request.
            ("Connection", "close"),
        ],
    )
    return [body]


class RequestBodies:
    """WSGI middleware: chunked bodies read, truncated bodies refused (see the module)."""

    def __init__(self, app: WsgiApp) -> None:
        self.app = app

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        if "chunked" in environ.get("HTTP_TRANSFER_ENCODING", "").lower():
            if environ.get("wsgi.input_terminated"):
                try:
                    body = _read(environ["wsgi.input"], _limit() + 1)
                except Exception:  # the server's reader: a malformed or cut-off chunk
                    return _bad_request(start_response, UNREADABLE, "unreadable_body")
                environ["wsgi.input"] = io.BytesIO(body)
                environ["CONTENT_LENGTH"] = str(len(body))
            return self.app(environ, start_response)
        length = environ.get("CONTENT_LENGTH") or ""
        if length.isdigit() and 0 < int(length) <= _limit():
            expected = int(length)
            body = _read(environ["wsgi.input"], expected)
            if len(body) < expected:
                message = TRUNCATED.format(got=len(body), expected=expected)
                return _bad_request(start_response, message, "truncated_body")
            environ["wsgi.input"] = io.BytesIO(body)
        return self.app(environ, start_response)


class InvalidJson(ValueError):
    """A body that is not strict JSON; `message` says what to fix, `code` names it."""

    def __init__(self, message: str, code: str = "invalid_json") -> None:
        super().__init__(message)
        self.message = message
        self.code = code


NOT_JSON = "The body is not valid JSON."
NOT_UTF8 = "The body is not valid JSON: it is not UTF-8."
TOO_DEEP = "The body is not valid JSON: it is nested too deeply."
NOT_A_NUMBER = "The body is not valid JSON: {constant} is not a JSON number."
DUPLICATE_KEY = "The body is not valid JSON: the key {key} appears twice in one object."


def _object(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    obj: dict[str, Any] = {}
    for key, value in pairs:
        if key in obj:
            raise InvalidJson(DUPLICATE_KEY.format(key=json.dumps(key)), "duplicate_key")
        obj[key] = value
    return obj


def _constant(constant: str) -> Any:
    raise InvalidJson(NOT_A_NUMBER.format(constant=constant))


def parse_json(raw: bytes | str) -> Any:
    """The decoded body, or InvalidJson naming what is wrong with it."""
    try:
        return json.loads(raw, object_pairs_hook=_object, parse_constant=_constant)
    except InvalidJson:
        raise
    except UnicodeDecodeError:
        raise InvalidJson(NOT_UTF8) from None
    except ValueError:
        raise InvalidJson(NOT_JSON) from None
    except RecursionError:
        raise InvalidJson(TOO_DEEP) from None


class JSONParser(parsers.JSONParser):
    """DRF's JSON parser on `parse_json`: what is not strict JSON is a 400 naming it."""

    def parse(self, stream: Any, media_type: str | None = None, parser_context: Any = None) -> Any:
        try:
            return parse_json(stream.read())
        except InvalidJson as invalid:
            raise ParseError(invalid.message, invalid.code) from None
