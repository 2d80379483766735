"""Per-key abuse protection for the ingest endpoints: a fixed-window counter in the cache.

Approximate by design (a window boundary can let up to twice the rate through): it stops
a runaway loop or a leaked key from flooding the database, and never enforces a contract.
On Redis the count costs one round trip (INCR; EXPIRE once per window).
"""

from __future__ import annotations

import time
from typing import Any

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


_clients: dict[int, Any] = {}


def _redis_client(backend: RedisCache, key: str) -> Any:
    # Django builds a new client (and its ~170 response callbacks) on every call; the
    # client is thread-safe over its pool, so keep one per backend and process.
    client = _clients.get(id(backend))
    if client is None:
        client = _clients[id(backend)] = backend._cache.get_client(key, write=True)
    return client


def _incr(name: str, window: int) -> int:
    backend = caches["default"]
    if isinstance(backend, RedisCache):
        key = backend.make_and_validate_key(name)
        client = _redis_client(backend, key)
        count = int(client.incr(key))
        if count == 1:
            # The key names its window, so should this expiry be lost, the key is merely
            # never read again.
            client.expire(key, window + 1)
        return count
    if backend.add(name, 1, timeout=window + 1):
        return 1
    try:
        return backend.incr(name)
    except ValueError:  # expired between add and incr
        backend.add(name, 1, timeout=window + 1)
        return 1
