"""The HTTP side of ingest, for the views of `metering.views`: the key from the request,
the JSON body, and every answer (JSON bodies encoded as `json.dumps(separators=(",",
":"))` gives them). The 202 body of readings is formatted directly: it is the hot path's
answer.
"""

from __future__ import annotations

import json
from time import perf_counter
from typing import Any

from django.conf import settings
from django.core.exceptions import RequestDataTooBig
from django.db import DatabaseError, DataError
from django.http import HttpRequest, HttpResponse
from django.http.request import RawPostDataException
from django.utils import timezone

from accounts.selectors.api_keys import API_KEY_SHAPE, key_problem, key_row
from controlpanel.bodies import InvalidJson, parse_json
from metering import metrics
from metering.counting import Outcome
from metering.ingest.record import Recorded, Refused, record, shape_refusal
from metering.readings import Invalid, parse_batch, parse_reading
from metering.throttle import throttle_retry_after

MAX_BODY = 1024 * 1024
# Each count is below 2^63, but an hour's sum of them may not be.
OUT_OF_RANGE = "These counts would take a total beyond 2^63; nothing was recorded."
RETRY_AFTER_SECONDS = 5
UNAVAILABLE = "Usage storage is unavailable; retry shortly."
TOO_LARGE = "The body is larger than 1 MiB; send smaller batches."


def respond(status: int, body: Any, headers: dict[str, str] | None = None) -> HttpResponse:
    return HttpResponse(
        json.dumps(body, separators=(",", ":")),
        status=status,
        content_type="application/json",
        headers=headers,
    )


def error(status: int, message: str, code: str, **extra: Any) -> HttpResponse:
    return respond(status, {"message": message, "code": code, **extra})


def unavailable(*, wcp: bool = False) -> HttpResponse:
    body = {"message": UNAVAILABLE} if wcp else {"message": UNAVAILABLE, "code": "unavailable"}
    return respond(503, body, {"Retry-After": str(RETRY_AFTER_SECONDS)})


def throttled(key: str, *, wcp: bool = False) -> HttpResponse | None:
    """Per-key abuse protection (429 + Retry-After); only for keys of a valid shape."""
    match = API_KEY_SHAPE.match(key)
    retry_after = throttle_retry_after(match.group(1)) if match else None
    if retry_after is None:
        return None
    message = f"Too many requests for this API key; retry in {retry_after} s."
    body = {"message": message} if wcp else {"message": message, "code": "throttled"}
    return respond(429, body, {"Retry-After": str(retry_after)})


def refusal(refused: Refused) -> HttpResponse:
    return error(refused.status, refused.message, refused.problem.value)


def key_refusal(plaintext: str, *, now: Any = None) -> Refused | None:
    """Why a key of valid shape is refused (one query), or None when it is usable."""
    problem = key_problem(key_row(plaintext, at=now or timezone.now()))
    return None if problem is None else Refused(problem)


def bearer(request: HttpRequest) -> str:
    raw = request.META.get("HTTP_AUTHORIZATION", "").strip()
    if not raw:
        return ""
    scheme, _, value = raw.partition(" ")
    # A non-Bearer value is reported as malformed by the shape check.
    return value.strip() if scheme.lower() == "bearer" else raw


def body_json(request: HttpRequest, *, json_only: bool) -> Any:
    """The decoded JSON body, or Invalid naming what is wrong with it."""
    length = request.META.get("CONTENT_LENGTH") or "0"
    if length.isdigit() and int(length) > MAX_BODY:
        raise Invalid(TOO_LARGE, "too_large", 413)
    if json_only and (request.content_type or "").lower() != "application/json":
        raise Invalid(
            "Send the body as JSON with Content-Type: application/json.",
            "unsupported_media_type",
            415,
        )
    try:
        body = request.body
    except (RequestDataTooBig, RawPostDataException):
        raise Invalid(TOO_LARGE, "too_large", 413) from None
    if len(body) > MAX_BODY:
        raise Invalid(TOO_LARGE, "too_large", 413)
    try:
        return parse_json(body)
    except InvalidJson as invalid:
        raise Invalid(invalid.message, invalid.code) from None


_BOOL = {False: "false", True: "true"}


def _outcome_json(o: Outcome) -> str:
    # json.dumps of {"counted": {"api_calls": n}, "duplicate", "reset", "late"}, formatted
    # directly (`counted` is an int; the flags are bools).
    return (
        f'{{"counted":{{"api_calls":{int(o.counted)}}},"duplicate":{_BOOL[o.duplicate]},'
        f'"reset":{_BOOL[o.reset]},"late":{_BOOL[o.late]}}}'
    )


def _accepted(body: str) -> HttpResponse:
    return HttpResponse(body, status=202, content_type="application/json")


def post_usage(request: HttpRequest, *, single: bool) -> HttpResponse:
    """Answer a POST of one reading (`single`) or of a batch."""
    started = perf_counter()
    endpoint = "usage" if single else "usage_batch"
    return metrics.answered(endpoint, _post_usage(request, single=single), started)


def _post_usage(request: HttpRequest, *, single: bool) -> HttpResponse:
    key = bearer(request)
    refused = shape_refusal(key)
    if refused is not None:
        return refusal(refused)
    limited = throttled(key)
    if limited is not None:
        return limited
    now = timezone.now()
    try:
        raw = body_json(request, json_only=True)
        retention = settings.RETENTION_DAYS
        if single:
            readings = [parse_reading(raw, now=now, retention_days=retention)]
        else:
            readings = parse_batch(raw, now=now, retention_days=retention)
    except Invalid as invalid:
        try:
            # A bad key is the first thing to fix: say so rather than judging the body.
            refused = key_refusal(key, now=now)
        except DatabaseError:
            return unavailable()
        if refused is not None:
            return refusal(refused)
        return respond(invalid.status, invalid.body())
    try:
        result = record(plaintext=key, readings=readings, now=now)
    except DataError:
        return error(400, OUT_OF_RANGE, "out_of_range")
    except DatabaseError:
        return unavailable()
    if not isinstance(result, Recorded):
        return refusal(result)
    if single:
        metrics.accepted("usage", 1)
        return _accepted(_outcome_json(result.outcomes[0]))
    metrics.accepted("usage_batch", len(result.outcomes))
    parts = ",".join([_outcome_json(o) for o in result.outcomes])
    total = sum(o.counted for o in result.outcomes)
    return _accepted(f'{{"results":[{parts}],"counted":{{"api_calls":{int(total)}}}}}')
