"""POST /api/v1/usage and /api/v1/usage/batch, framework-neutral.

One function answers both, from the request's WSGI environ (Django's `request.META` is
that environ) and a callable reading the body. The Django views
(`metering.views`) and the WSGI fast lane (`metering.ingest.wsgi`) both call it, so the
two routes answer byte for byte the same by construction.

Built for the hot path: the key's shape is matched once, the 202 body of one reading is
formatted from pre-encoded parts, refusal bodies are encoded once per message.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from typing import Any, NamedTuple

from django.conf import settings
from django.db import DatabaseError, DataError
from django.utils import timezone

from accounts.selectors.api_keys import API_KEY_SHAPE
from metering import ingest
from metering.counting import CountOverflow, Outcome
from metering.readings import Invalid, parse_batch, parse_reading
from metering.throttle import throttle_retry_after

MAX_BODY = 1024 * 1024
# Each count is below 2^63, but an hour's sum of them may not be.
OUT_OF_RANGE = "These counts would take a total beyond 2^63; nothing was recorded."
RETRY_AFTER_SECONDS = 5
UNAVAILABLE = "Usage storage is unavailable; retry shortly."
TOO_LARGE = "The body is larger than 1 MiB; send smaller batches."

NO_HEADERS: tuple[tuple[str, str], ...] = ()


class Reply(NamedTuple):
    """A JSON answer: the status, the encoded body, headers beyond Content-Type."""

    status: int
    body: bytes
    headers: tuple[tuple[str, str], ...] = NO_HEADERS


def encode(body: Any) -> bytes:
    """The JSON encoding of every answer (what `json.dumps(separators=(",", ":"))` gives,
    as HttpResponse encodes it)."""
    return json.dumps(body, separators=(",", ":")).encode()


def reply(status: int, body: Any, headers: tuple[tuple[str, str], ...] = NO_HEADERS) -> Reply:
    return Reply(status, encode(body), headers)


def error(status: int, message: str, code: str, **extra: Any) -> Reply:
    return reply(status, {"message": message, "code": code, **extra})


_UNAVAILABLE = reply(
    503,
    {"message": UNAVAILABLE, "code": "unavailable"},
    (("Retry-After", str(RETRY_AFTER_SECONDS)),),
)
_UNAVAILABLE_WCP = reply(
    503, {"message": UNAVAILABLE}, (("Retry-After", str(RETRY_AFTER_SECONDS)),)
)


def unavailable(wcp: bool = False) -> Reply:
    return _UNAVAILABLE_WCP if wcp else _UNAVAILABLE


def throttled_reply(retry_after: int, *, wcp: bool = False) -> Reply:
    message = f"Too many requests for this API key; retry in {retry_after} s."
    body = {"message": message} if wcp else {"message": message, "code": "throttled"}
    return reply(429, body, (("Retry-After", str(retry_after)),))


def throttled(key: str, *, wcp: bool = False) -> Reply | None:
    """Per-key abuse protection (429 + Retry-After); only for keys of a valid shape."""
    match = API_KEY_SHAPE.match(key)
    retry_after = throttle_retry_after(match.group(1)) if match else None
    return None if retry_after is None else throttled_reply(retry_after, wcp=wcp)


_REFUSALS: dict[tuple[int, str, str], Reply] = {}


def refusal(refused: ingest.Refused) -> Reply:
    # A handful of fixed messages: encode each once.
    key = (refused.status, refused.message, refused.problem.value)
    answer = _REFUSALS.get(key)
    if answer is None:
        answer = error(*key)
        if len(_REFUSALS) < 64:
            _REFUSALS[key] = answer
    return answer


def bearer(meta: Mapping[str, Any]) -> str:
    raw = meta.get("HTTP_AUTHORIZATION", "").strip()
    if not raw:
        return ""
    scheme, _, value = raw.partition(" ")
    # A non-Bearer value is reported as malformed by the shape check.
    return value.strip() if scheme.lower() == "bearer" else raw


def _too_large() -> Invalid:
    return Invalid(TOO_LARGE, "too_large", 413)


def body_json(meta: Mapping[str, Any], read_body: Callable[[], bytes], *, json_only: bool) -> Any:
    """The decoded JSON body, or Invalid naming what is wrong with it. `read_body` raises
    Invalid (413) itself when the body cannot be read for its size."""
    length = meta.get("CONTENT_LENGTH") or "0"
    if length.isdigit() and int(length) > MAX_BODY:
        raise _too_large()
    if json_only:
        content_type = meta.get("CONTENT_TYPE", "")
        if content_type != "application/json" and (
            content_type.split(";")[0].strip().lower() != "application/json"
        ):
            raise Invalid(
                "Send the body as JSON with Content-Type: application/json.",
                "unsupported_media_type",
                415,
            )
    body = read_body()
    if len(body) > MAX_BODY:
        raise _too_large()
    try:
        return json.loads(body)
    except (ValueError, UnicodeDecodeError):
        raise Invalid("The body is not valid JSON.", "invalid_json") from None


_BOOL = {False: "false", True: "true"}


def _outcome_json(o: Outcome) -> str:
    # json.dumps of {"counted": {"api_calls": n}, "duplicate", "reset", "late"}, formatted
    # directly (`counted` is an int; the flags are bools).
    return (
        f'{{"counted":{{"api_calls":{int(o.counted)}}},"duplicate":{_BOOL[o.duplicate]},'
        f'"reset":{_BOOL[o.reset]},"late":{_BOOL[o.late]}}}'
    )


def post_usage(meta: Mapping[str, Any], read_body: Callable[[], bytes], *, single: bool) -> Reply:
    """Answer a POST of one reading (`single`) or of a batch."""
    key = bearer(meta)
    refused = ingest.key_shape_problem(key)
    if refused is not None:
        return refusal(refused)
    limited = throttled(key)
    if limited is not None:
        return limited
    now = timezone.now()
    try:
        raw = body_json(meta, read_body, json_only=True)
        retention = settings.RETENTION_DAYS
        if single:
            readings = [parse_reading(raw, now=now, retention_days=retention)]
        else:
            readings = parse_batch(raw, now=now, retention_days=retention)
    except Invalid as invalid:
        try:
            # A bad key is the first thing to fix: say so rather than judging the body.
            refused = ingest.key_refusal(key, now=now)
        except DatabaseError:
            return unavailable()
        if refused is not None:
            return refusal(refused)
        return reply(invalid.status, invalid.body())
    try:
        result = ingest.record(plaintext=key, readings=readings, now=now, single=single)
    except (DataError, CountOverflow):
        return error(400, OUT_OF_RANGE, "out_of_range")
    except DatabaseError:
        return unavailable()
    if isinstance(result, ingest.Refused):
        return refusal(result)
    if single:
        return Reply(202, _outcome_json(result.outcomes[0]).encode())
    parts = ",".join([_outcome_json(o) for o in result.outcomes])
    total = sum(o.counted for o in result.outcomes)
    return Reply(202, f'{{"results":[{parts}],"counted":{{"api_calls":{int(total)}}}}}'.encode())
