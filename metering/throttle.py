"""Per-key abuse protection for the ingest endpoints: a fixed-window counter in the cache.

Approximate by design (a window boundary can let up to twice the rate through): it stops
a runaway loop or a leaked key from flooding the database, and never enforces a contract.
On Redis the count costs one round trip (INCR and EXPIRE in one pipeline).
"""

from __future__ import annotations

import time

from django.conf import settings
from django.core.cache import caches
from django.core.cache.backends.redis import RedisCache


def throttle_retry_after(key_prefix: str, *, now: float | None = None) -> int | None:
    """Count one request of `key_prefix`; seconds to wait when over the limit, else None."""
    limit = settings.USAGE_THROTTLE_REQUESTS
    window = settings.USAGE_THROTTLE_WINDOW_SECONDS
    if limit <= 0:
        return None
    now = time.time() if now is None else now
    slot = int(now // window)
    name = f"usage-throttle:{key_prefix}:{slot}"
    try:
        count = _incr(name, window)
    except Exception:  # a cache outage must not stop ingest: protection fails open
        return None
    if count <= limit:
        return None
    return max(1, int((slot + 1) * window - now + 0.999))


def _incr(name: str, window: int) -> int:
    backend = caches["default"]
    if isinstance(backend, RedisCache):
        key = backend.make_and_validate_key(name)
        client = backend._cache.get_client(key, write=True)
        pipe = client.pipeline(transaction=False)
        pipe.incr(key)
        pipe.expire(key, window + 1, nx=True)
        return int(pipe.execute()[0])
    if backend.add(name, 1, timeout=window + 1):
        return 1
    try:
        return backend.incr(name)
    except ValueError:  # expired between add and incr
        backend.add(name, 1, timeout=window + 1)
        return 1
