"""Fixed-window rate limits on the shared cache (Redis in production).

Approximate by design (a throttle against guessing and abuse, not a quota): a counter per
(scope, key, window) made with `cache.add` and raised with `cache.incr`, both atomic in
Redis. Limits are configured as "<count>/<seconds>" settings.
"""

from __future__ import annotations

import hashlib
import logging
import math
import time
from dataclasses import dataclass

from django.conf import settings
from django.core.cache import cache
from django.http import HttpRequest, JsonResponse

from accounts.models import AuditKind, User
from accounts.services.audit import Actor, audit_record

logger = logging.getLogger(__name__)

UNAVAILABLE_RETRY_AFTER = 30


class LimiterUnavailable(Exception):
    """The cache behind the counters is down: answer 503, do not guess."""


@dataclass(frozen=True)
class Rate:
    count: int
    seconds: int


def parse_rate(value: str) -> Rate:
    count, _, seconds = value.partition("/")
    return Rate(int(count), int(seconds or 60))


def client_ip(request: HttpRequest) -> str:
    proxies = settings.RATE_LIMIT_PROXY_COUNT
    if proxies > 0:
        hops = [h.strip() for h in request.headers.get("x-forwarded-for", "").split(",") if h]
        if len(hops) >= proxies:
            return hops[-proxies]
    return request.META.get("REMOTE_ADDR", "") or "unknown"


def _count(scope: str, key: str, rate: Rate, now: float) -> int:
    """The attempts of `key` in the current window, this one included."""
    window = int(now // rate.seconds)
    hashed = hashlib.sha256(key.encode()).hexdigest()[:32]  # no addresses or emails in keys
    name = f"ratelimit:{scope}:{hashed}:{window}"
    try:
        if cache.add(name, 1, timeout=rate.seconds + 1):
            return 1
        try:
            return cache.incr(name)
        except ValueError:  # expired between add and incr
            cache.add(name, 1, timeout=rate.seconds + 1)
            return 1
    except Exception as error:
        # A limiter that cannot count must neither fail open (unlimited guessing) nor
        # crash: the caller answers 503 with Retry-After.
        logger.warning("rate limit cache unavailable: %s", error)
        raise LimiterUnavailable from error


def hit(scope: str, key: str, rate: Rate, *, now: float | None = None) -> int | None:
    """Count one attempt; the seconds to wait when over the limit, else None."""
    now = time.time() if now is None else now
    count = _count(scope, key, rate, now)
    if count > rate.count:
        window = int(now // rate.seconds)
        return max(1, math.ceil((window + 1) * rate.seconds - now))
    return None


def sign_in_failed(email: str, *, now: float | None = None) -> bool:
    """Count a failed sign-in of `email`. The failure that reaches SIGN_IN_FAILURE_AUDIT
    within its window records one audit event (`cache.incr` is atomic, so exactly one
    request sees the threshold). True when this call recorded it. Call it from any sign-in
    form's failure path (the login page's `form_invalid`; allauth's adapter hook).
    A cache outage skips the record rather than failing the sign-in page."""
    rate = parse_rate(settings.SIGN_IN_FAILURE_AUDIT)
    address = (email or "").strip().lower()
    if not address:
        return False
    try:
        count = _count(
            "sign_in_failures", f"key:{address}", rate, time.time() if now is None else now
        )
    except LimiterUnavailable:
        return False
    if count != rate.count:
        return False
    user = User.objects.filter(email=address).first()
    audit_record(
        actor=Actor.system("sign-in guard"),
        kind=AuditKind.SIGN_IN_FAILURES,
        organization=None,
        target=user,
        details={"email": address, "failures": count, "window_seconds": rate.seconds},
    )
    return True


def check(request: HttpRequest, scope: str, setting: str, *extra_keys: str) -> int | None:
    """Count an attempt against the client IP and each extra key (e.g. an email).
    Raises LimiterUnavailable when the cache is down."""
    rate = parse_rate(getattr(settings, setting))
    waits = [hit(scope, f"ip:{client_ip(request)}", rate)]
    waits += [hit(scope, f"key:{key.lower()}", rate) for key in extra_keys if key]
    worst = [w for w in waits if w]
    return max(worst) if worst else None


def too_many(retry_after: int) -> JsonResponse:
    response = JsonResponse(
        {
            "message": f"Too many attempts: try again in {retry_after} seconds.",
            "code": "rate_limited",
        },
        status=429,
    )
    response["Retry-After"] = str(retry_after)
    return response


def unavailable() -> JsonResponse:
    response = JsonResponse(
        {
            "message": "Temporarily unavailable: please try again shortly.",
            "code": "unavailable",
        },
        status=503,
    )
    response["Retry-After"] = str(UNAVAILABLE_RETRY_AFTER)
    return response
