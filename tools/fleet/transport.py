"""Sending a plan's requests: one client per lane, in order, with keep-alive.

`HttpTransport` speaks HTTP with `http.client`, one persistent connection per client
thread (cheap per request, so the clients measure the server, not themselves).
`InProcessTransport` calls the Django application directly (the demo data uses it when
no server runs yet). Both retry what the protocol says is safe to retry: 429 and 503
(after `Retry-After`) and a dropped connection; readings are idempotent by design, so a
retry can never count twice.
"""

from __future__ import annotations

import http.client
import json
import socket
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol
from urllib.parse import urlsplit

from tools.fleet.plan import Request

USAGE_PATH = "/api/v1/usage"
BATCH_PATH = "/api/v1/usage/batch"
MAX_ATTEMPTS = 5


@dataclass(frozen=True)
class Response:
    status: int
    body: dict | None
    retry_after: float | None = None


class Transport(Protocol):
    def request(self, method: str, path: str, key: str, body: bytes | None) -> Response: ...

    def close(self) -> None: ...


def _parse_retry_after(value: str | None) -> float | None:
    try:
        return max(0.0, float(value)) if value is not None else None
    except ValueError:
        return 1.0


def _decode(raw: bytes) -> dict | None:
    try:
        doc = json.loads(raw) if raw else None
    except ValueError:
        return None
    return doc if isinstance(doc, dict) else None


class _NoDelayConnection(http.client.HTTPConnection):
    def connect(self) -> None:
        super().connect()
        # Small request, small answer: do not let Nagle hold either side back.
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


class HttpTransport:
    """One keep-alive connection per calling thread."""

    def __init__(self, base_url: str, *, timeout: float = 30.0) -> None:
        parts = urlsplit(base_url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"not an http(s) URL: {base_url!r}")
        self.scheme = parts.scheme
        self.host = parts.hostname
        self.port = parts.port
        self.prefix = parts.path.rstrip("/")
        self.timeout = timeout
        self._local = threading.local()
        self._all: list[http.client.HTTPConnection] = []
        self._lock = threading.Lock()

    def _connection(self) -> http.client.HTTPConnection:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            cls = (
                http.client.HTTPSConnection
                if self.scheme == "https"
                else http.client.HTTPConnection
            )
            conn = cls(self.host, self.port, timeout=self.timeout)
            self._local.conn = conn
            with self._lock:
                self._all.append(conn)
        return conn

    def request(
        self,
        method: str,
        path: str,
        key: str,
        body: bytes | None,
        *,
        headers: dict[str, str] | None = None,
    ) -> Response:
        """`headers` replace the key's `Authorization` (the CMS protocol's raw key, a
        session cookie, none at all)."""
        if headers is None:
            headers = {"Authorization": f"Bearer {key}"}
        headers = {"Accept": "application/json", **headers}
        if body is not None:
            headers.setdefault("Content-Type", "application/json")
        conn = self._connection()
        for attempt in (1, 2):
            reused = conn.sock is not None
            try:
                conn.request(method, self.prefix + path, body=body, headers=headers)
                resp = conn.getresponse()
                raw = resp.read()
                break
            except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError):
                conn.close()
                # The server closed an idle keep-alive connection just as we reused it:
                # send again on a fresh connection, once (readings are idempotent).
                if not reused or attempt == 2:
                    raise
            except (http.client.HTTPException, OSError):
                conn.close()  # the next request reconnects
                raise
        if resp.getheader("connection", "").lower() == "close":
            conn.close()
        return Response(
            resp.status, _decode(raw), _parse_retry_after(resp.getheader("retry-after"))
        )

    def close(self) -> None:
        with self._lock:
            for conn in self._all:
                conn.close()
            self._all.clear()


class InProcessTransport:
    """Requests through the Django application in this process (no server, no socket)."""

    def __init__(self) -> None:
        from django.conf import settings
        from django.test import Client

        hosts = [h.lstrip(".") for h in settings.ALLOWED_HOSTS if h not in ("*", "")]
        host = "localhost" if not hosts or "localhost" in hosts else hosts[0]
        self._client = Client(HTTP_HOST=host)
        self._secure = bool(getattr(settings, "SECURE_SSL_REDIRECT", False))

    def request(self, method: str, path: str, key: str, body: bytes | None) -> Response:
        auth = f"Bearer {key}"
        if method == "GET":
            resp = self._client.get(path, secure=self._secure, HTTP_AUTHORIZATION=auth)
        else:
            resp = self._client.post(
                path,
                data=body,
                content_type="application/json",
                secure=self._secure,
                HTTP_AUTHORIZATION=auth,
            )
        return Response(
            resp.status_code, _decode(resp.content), _parse_retry_after(resp.get("Retry-After"))
        )

    def close(self) -> None:
        pass


# --- sending lanes ----------------------------------------------------------------------
@dataclass
class LaneStats:
    requests: int = 0
    readings: int = 0
    counted: int = 0  # the sum of what the server said it counted
    retries: int = 0
    latencies: list[float] = field(default_factory=list)  # seconds, per successful request
    errors: list[str] = field(default_factory=list)


@dataclass
class SendStats:
    lanes: list[LaneStats]
    seconds: float

    @property
    def requests(self) -> int:
        return sum(s.requests for s in self.lanes)

    @property
    def readings(self) -> int:
        return sum(s.readings for s in self.lanes)

    @property
    def counted(self) -> int:
        return sum(s.counted for s in self.lanes)

    @property
    def retries(self) -> int:
        return sum(s.retries for s in self.lanes)

    @property
    def errors(self) -> list[str]:
        return [e for s in self.lanes for e in s.errors]

    def latencies(self) -> list[float]:
        return sorted(x for s in self.lanes for x in s.latencies)

    def percentile(self, p: float) -> float:
        values = self.latencies()
        if not values:
            return 0.0
        return values[min(len(values) - 1, max(0, round(p / 100 * len(values) + 0.5) - 1))]

    @property
    def readings_per_second(self) -> float:
        return self.readings / self.seconds if self.seconds > 0 else 0.0


def send_one(
    transport: Transport, request: Request, payload: bytes, key: str, stats: LaneStats
) -> None:
    path = BATCH_PATH if request.batch else USAGE_PATH
    for attempt in range(1, MAX_ATTEMPTS + 1):
        started = time.perf_counter()
        try:
            resp = transport.request("POST", path, key, payload)
        except (http.client.HTTPException, OSError) as exc:
            if attempt == MAX_ATTEMPTS:
                stats.errors.append(f"POST {path}: {type(exc).__name__}: {exc}")
                return
            stats.retries += 1
            continue
        elapsed = time.perf_counter() - started
        if resp.status in (429, 503) and attempt < MAX_ATTEMPTS:
            stats.retries += 1
            time.sleep(min(resp.retry_after if resp.retry_after is not None else 1.0, 5.0))
            continue
        if resp.status != 202:
            detail = json.dumps(resp.body)[:300] if resp.body is not None else "(no JSON body)"
            stats.errors.append(f"POST {path} -> {resp.status} {detail}")
            return
        stats.requests += 1
        stats.readings += len(request.readings)
        stats.latencies.append(elapsed)
        counted = (resp.body or {}).get("counted", {})
        stats.counted += int(counted.get("api_calls", 0)) if isinstance(counted, dict) else 0
        return


def send_lanes(
    transport: Transport,
    lanes: Sequence[Sequence[Request]],
    keys: Sequence[str],
    *,
    payloads: Sequence[Sequence[bytes]] | None = None,
    threaded: bool = True,
) -> SendStats:
    """Send each lane's requests in order, all lanes at once (one thread per lane).
    `payloads` may hold the bodies serialized ahead, so a benchmark times only I/O."""
    stats = [LaneStats() for _ in lanes]
    bodies = payloads or [[r.payload() for r in lane] for lane in lanes]

    def run(i: int) -> None:
        for request, body in zip(lanes[i], bodies[i], strict=True):
            send_one(transport, request, body, keys[request.env], stats[i])

    started = time.perf_counter()
    if threaded and len(lanes) > 1:
        threads = [threading.Thread(target=run, args=(i,), daemon=True) for i in range(len(lanes))]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    else:
        for i in range(len(lanes)):
            run(i)
    return SendStats(stats, time.perf_counter() - started)
