"""Per-key abuse protection for the ingest endpoints: a fixed-window counter in the cache.

Approximate by design (a window boundary can let up to twice the rate through): it stops
a runaway loop or a leaked key from flooding the database, and never enforces a contract.
To keep the hot path at one database round trip, each process counts locally and adds
its count to the shared counter once per 1/1000 of the limit (INCRBY), so the shared
count lags by at most that much per process: nothing for an abuse guard.
"""

from __future__ import annotations

import time

import redis
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
    if _local.slot != slot:
        _local.slot, _local.pending, _local.shared = slot, {}, {}
    pending = _local.pending.get(name, 0) + 1
    if pending >= max(1, limit // 1000):
        try:
            _local.shared[name] = _incr(name, window, pending)
        except Exception:  # a cache outage must not stop ingest: protection fails open
            return None
        pending = 0
    _local.pending[name] = pending
    if _local.shared.get(name, 0) + pending <= limit:
        return None
    return max(1, int((slot + 1) * window - now + 0.999))


class _Counts:
    """This process's view of the current window (races between threads only make the
    count approximate, which it is anyway)."""

    slot: int = -1
    pending: dict[str, int] = {}
    shared: dict[str, int] = {}


_local = _Counts()
_clients: dict[str, redis.Redis] = {}


def _redis_client(location: str | list[str]) -> redis.Redis:
    """A client of the cache's Redis server (the first of LOCATION: the one Django's cache
    writes to), with the timeouts of every Redis client here (REDIS_CLIENT_OPTIONS), one
    per process: redis-py clients are thread-safe over their pool."""
    url = (location.split(",") if isinstance(location, str) else location)[0]
    client = _clients.get(url)
    if client is None:
        client = _clients[url] = redis.Redis.from_url(url, **settings.REDIS_CLIENT_OPTIONS)
    return client


def _incr(name: str, window: int, delta: int) -> int:
    backend = caches["default"]
    if isinstance(backend, RedisCache):
        # One INCRBY creates or raises the counter (Django's cache.incr asks EXISTS first
        # and cannot create). The key is the cache's own, so cache.get reads the counter.
        key = backend.make_and_validate_key(name)
        client = _redis_client(settings.CACHES["default"]["LOCATION"])
        count = int(client.incrby(key, delta))
        if count == delta:
            # The key names its window, so should this expiry be lost, the key is merely
            # never read again.
            client.expire(key, window + 1)
        return count
    if backend.add(name, delta, timeout=window + 1):
        return delta
    try:
        return backend.incr(name, delta)
    except ValueError:  # expired between add and incr
        backend.add(name, delta, timeout=window + 1)
        return delta
