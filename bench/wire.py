"""The bench's own HTTP/1.1 client: as little CPU per request as the measurement allows.

The benchmark's clients share the box's cores with the app and PostgreSQL, so every
microsecond they spend is taken from what is measured. `http.client` with one thread per
client cost ~230-250 us of CPU per request (header objects, the email parser, the GIL
handed between eight threads). Here:

- every request is complete HTTP/1.1 bytes, serialized before the clock starts;
- each client is its own process (no GIL shared between clients) with one blocking
  keep-alive socket (`TCP_NODELAY`): one `send` and usually one `recv` per request;
- the answer is still checked in full: the status line, `Content-Length` (the body is
  read to its end), `Connection: close` (reconnect), `Retry-After` on 429/503 (waited
  for and retried, as `tools.fleet.transport` does), and the JSON body is decoded for
  the `counted.api_calls` the server says it counted. Anything but 202 with a JSON object
  is an error; a dropped connection is retried (readings are idempotent by design).

Each client process measures its own CPU time (user + system, `time.process_time`) from
its first request to its last, so the bench can still say what the clients cost.
"""

from __future__ import annotations

import contextlib
import json
import multiprocessing
import select
import socket
import time
from collections.abc import Sequence
from dataclasses import dataclass

from tools.fleet.plan import Request
from tools.fleet.transport import BATCH_PATH, MAX_ATTEMPTS, USAGE_PATH, LaneStats, SendStats


def wire_request(host: str, port: int, key: str, request: Request, body: bytes) -> bytes:
    """The complete bytes of the POST that sends `request`."""
    path = BATCH_PATH if request.batch else USAGE_PATH
    head = (
        f"POST {path} HTTP/1.1\r\n"
        f"Host: {host}:{port}\r\n"
        f"Authorization: Bearer {key}\r\n"
        "Accept: application/json\r\n"
        "Content-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n"
        "\r\n"
    )
    return head.encode("latin-1") + body


class WireError(Exception):
    """The server's answer is not well-formed HTTP/1.1 (or the connection broke)."""


def parse_answer(buf: bytes) -> tuple[int, bytes, bytes] | None:
    """(status, header block lower-cased, body) of the complete answer in `buf`, or None
    while it is incomplete. Raises WireError for what is not an answer to one request."""
    end = buf.find(b"\r\n\r\n")
    if end < 0:
        return None
    head = buf[:end].lower()
    if not head.startswith(b"http/1.1 ") or len(head) < 12:
        raise WireError(f"not an HTTP/1.1 status line: {buf[:40]!r}")
    at = head.find(b"\r\ncontent-length:")
    if at < 0:
        raise WireError("answer without Content-Length")
    stop = head.find(b"\r\n", at + 17)
    length = int(head[at + 17 : stop if stop >= 0 else len(head)])
    body = buf[end + 4 :]
    if len(body) < length:
        return None
    if len(body) > length:
        raise WireError("more bytes than Content-Length (nothing was pipelined)")
    return int(head[9:12]), head, body


def _retry_after(head: bytes) -> float:
    at = head.find(b"\r\nretry-after:")
    if at < 0:
        return 1.0
    stop = head.find(b"\r\n", at + 14)
    try:
        return max(0.0, float(head[at + 14 : stop if stop >= 0 else len(head)]))
    except ValueError:
        return 1.0


def _counted(body: bytes) -> int | None:
    """The answer's `counted.api_calls`, or None if the body is not the expected JSON."""
    try:
        doc = json.loads(body)
    except ValueError:
        return None
    counted = doc.get("counted") if isinstance(doc, dict) else None
    calls = counted.get("api_calls") if isinstance(counted, dict) else None
    return calls if isinstance(calls, int) else None


class _Lane:
    """One client: its requests, where it is, its connection and what it measured."""

    __slots__ = ("attempt", "buf", "first", "last", "next", "requests", "sock", "started", "stats")

    def __init__(self, requests: Sequence[tuple[bytes, int]]) -> None:
        self.requests = requests
        self.next = 0  # index of the request in flight
        self.attempt = 1
        self.sock: socket.socket | None = None
        self.buf = b""
        self.started = self.first = self.last = 0.0
        self.stats = LaneStats()


def run_lanes(
    host: str, port: int, lanes: Sequence[Sequence[tuple[bytes, int]]]
) -> tuple[list[tuple[LaneStats, float, float]], float]:
    """Send each lane's (wire bytes, readings) in order on its own connection, all lanes
    at once from this one thread (epoll tells which answer has arrived). Returns per lane
    (stats, first send, last answer) and this process's CPU seconds for all of it."""
    poller = select.epoll()
    by_fd: dict[int, _Lane] = {}
    clock = time.perf_counter
    active = [_Lane(requests) for requests in lanes]
    running = len(active)

    def drop(lane: _Lane) -> None:
        if lane.sock is not None:
            fd = lane.sock.fileno()
            poller.unregister(fd)
            del by_fd[fd]
            lane.sock.close()
            lane.sock = None

    def advance(lane: _Lane) -> bool:
        """On to the lane's next request; False (and the lane finished) if none is left."""
        nonlocal running
        lane.next += 1
        lane.attempt = 1
        if lane.next < len(lane.requests):
            return True
        lane.last = clock()
        drop(lane)
        running -= 1
        return False

    def retry(lane: _Lane, problem: str) -> bool:
        """After a broken exchange: True to send the same request again (readings are
        idempotent), False when it has failed MAX_ATTEMPTS times (counted as an error)."""
        drop(lane)
        if lane.attempt < MAX_ATTEMPTS:
            lane.attempt += 1
            lane.stats.retries += 1
            return True
        lane.stats.errors.append(f"POST: {problem}")
        return False

    def send(lane: _Lane) -> None:
        while True:
            try:
                if lane.sock is None:
                    sock = socket.create_connection((host, port), timeout=30)
                    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                    sock.settimeout(None)  # blocking: no poll() before each send and recv
                    lane.sock = sock
                    by_fd[sock.fileno()] = lane
                    poller.register(sock.fileno(), select.EPOLLIN)
                lane.buf = b""
                lane.started = clock()
                lane.sock.sendall(lane.requests[lane.next][0])
                return
            except OSError as exc:
                if not retry(lane, f"{type(exc).__name__}: {exc}") and not advance(lane):
                    return

    def answer(lane: _Lane) -> None:
        """Read what has arrived; when the answer is complete, check it, then send the
        next request (or the same one again)."""
        try:
            data = lane.sock.recv(65536)  # type: ignore[union-attr]
            if not data:
                raise WireError("connection closed before the answer was complete")
            lane.buf += data
            got = parse_answer(lane.buf)
        except (OSError, WireError, ValueError) as exc:
            if retry(lane, f"{type(exc).__name__}: {exc}") or advance(lane):
                send(lane)
            return
        if got is None:
            return  # more to come
        elapsed = clock() - lane.started
        status, head, body = got
        if b"\r\nconnection: close" in head:
            drop(lane)
        stats = lane.stats
        if status in (429, 503) and lane.attempt < MAX_ATTEMPTS:
            # As tools.fleet.transport: wait as told, then again (never happens in the
            # bench's runs; this one thread holds every lane meanwhile).
            stats.retries += 1
            lane.attempt += 1
            time.sleep(min(_retry_after(head), 5.0))
            send(lane)
            return
        counted = _counted(body)
        if status != 202 or counted is None:
            stats.errors.append(f"POST -> {status} {body[:300]!r}")
        else:
            stats.requests += 1
            stats.readings += lane.requests[lane.next][1]
            stats.counted += counted
            stats.latencies.append(elapsed)
        if advance(lane):
            send(lane)

    cpu_started = time.process_time()
    for lane in active:
        lane.first = clock()
        if lane.requests:
            send(lane)
        else:
            lane.last = lane.first
            running -= 1
    while running:
        for fd, _events in poller.poll():
            lane = by_fd.get(fd)
            if lane is not None:
                answer(lane)
    cpu = time.process_time() - cpu_started
    poller.close()
    return [(lane.stats, lane.first, lane.last) for lane in active], cpu


def _child(host, port, lanes, barrier, results) -> None:  # type: ignore[no-untyped-def]
    try:
        barrier.wait()
        results.put((*run_lanes(host, port, lanes), None))
    except Exception as exc:  # reported by the parent, which must not wait forever
        with contextlib.suppress(Exception):
            barrier.abort()
        results.put(([], 0.0, f"{type(exc).__name__}: {exc}"))


@dataclass
class WireRun:
    stats: SendStats
    cpu_seconds: float  # the client processes' CPU, first request to last


def wire_lanes(
    host: str,
    port: int,
    lanes: Sequence[Sequence[Request]],
    keys: Sequence[str],
    payloads: Sequence[Sequence[bytes]],
) -> list[list[tuple[bytes, int]]]:
    """Every lane's requests as (wire bytes, readings)."""
    return [
        [
            (wire_request(host, port, keys[r.env], r, body), len(r.readings))
            for r, body in zip(lane, bodies, strict=True)
        ]
        for lane, bodies in zip(lanes, payloads, strict=True)
    ]


class WireClients:
    """The lanes shared out over `processes` client processes (each an epoll loop over its
    lanes), forked ahead and held at a barrier, so neither serializing nor forking is
    counted; `run()` releases them all at once. The phase is timed from the first request
    of any lane to the last answer of any lane."""

    def __init__(
        self,
        host: str,
        port: int,
        wires: Sequence[Sequence[tuple[bytes, int]]],
        processes: int,
    ) -> None:
        ctx = multiprocessing.get_context("fork")
        shares = [list(wires[i::processes]) for i in range(min(processes, len(wires)))]
        self._barrier = ctx.Barrier(len(shares) + 1)
        self._results = ctx.Queue()
        self._procs = [
            ctx.Process(
                target=_child, args=(host, port, share, self._barrier, self._results), daemon=True
            )
            for share in shares
        ]
        for p in self._procs:
            p.start()

    def run(self) -> WireRun:
        self._barrier.wait(timeout=600)
        got = [self._results.get(timeout=3600) for _ in self._procs]
        for p in self._procs:
            p.join()
        problems = [g[2] for g in got if g[2]]
        if problems:
            raise RuntimeError("client failed: " + "; ".join(problems[:3]))
        lanes = [lane for g in got for lane in g[0]]
        started = min(lane[1] for lane in lanes)
        finished = max(lane[2] for lane in lanes)
        return WireRun(
            SendStats([lane[0] for lane in lanes], finished - started), sum(g[1] for g in got)
        )
