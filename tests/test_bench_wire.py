"""The benchmark's lean HTTP client (bench/wire.py) checks every answer: it must count
what the server said, retry what the protocol says to retry, and report the rest as
errors, so the bench's figures stay honest."""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

from bench.wire import WireError, parse_answer, run_lanes

OK = b'{"counted":{"api_calls":%d},"duplicate":false,"reset":false,"late":false}'


def _answer(status: str, body: bytes, *extra: str) -> bytes:
    head = [f"HTTP/1.1 {status}", "Content-Type: application/json", *extra]
    head.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(head) + "\r\n\r\n").encode() + body


def test_parse_answer_waits_for_the_whole_body_and_refuses_what_is_not_one_answer():
    whole = _answer("202 Accepted", OK % 3)
    assert parse_answer(whole[:20]) is None
    assert parse_answer(whole[:-1]) is None
    status, head, body = parse_answer(whole)
    assert (status, json.loads(body)["counted"]["api_calls"]) == (202, 3)
    assert b"content-type: application/json" in head
    with pytest.raises(WireError):
        parse_answer(whole + b"x")
    with pytest.raises(WireError):
        parse_answer(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n")
    with pytest.raises(WireError):
        parse_answer(b"SSH-2.0-OpenSSH\r\n\r\n")


@contextmanager
def server(script: list[bytes | None]) -> Iterator[tuple[int, list[bytes]]]:
    """A real socket server answering each request with the next scripted answer (None:
    close the connection without answering), one connection at a time."""
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    seen: list[bytes] = []

    def serve() -> None:
        answers = iter(script)
        while True:
            try:
                conn, _ = listener.accept()
            except OSError:
                return
            with conn:
                buf = b""
                while True:
                    data = conn.recv(65536)
                    if not data:
                        break
                    buf += data
                    head, sep, rest = buf.partition(b"\r\n\r\n")
                    if not sep:
                        continue
                    length = int(head.lower().split(b"content-length: ")[1].split(b"\r\n")[0])
                    if len(rest) < length:
                        continue
                    seen.append(rest[:length])
                    buf = rest[length:]
                    answer = next(answers)
                    if answer is None:
                        break
                    conn.sendall(answer)
                    if b"Connection: close" in answer:
                        break

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield port, seen
    finally:
        listener.close()
        thread.join(timeout=5)


def _request(port: int, body: bytes) -> bytes:
    return (
        f"POST /api/v1/usage HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
    ).encode() + body


def test_run_lanes_counts_retries_and_reports_errors_over_a_real_socket():
    script = [
        _answer("202 Accepted", OK % 5),
        _answer("503 Service Unavailable", b'{"message":"x"}', "Retry-After: 0"),
        _answer("202 Accepted", OK % 7, "Connection: close"),  # the client reconnects
        None,  # dropped without an answer: sent again
        _answer("202 Accepted", OK % 11),
        _answer("401 Unauthorized", b'{"message":"no"}'),
        _answer("202 Accepted", b"not json"),
    ]
    with server(script) as (port, seen):
        bodies = [b'{"n":1}', b'{"n":2}', b'{"n":3}', b'{"n":4}', b'{"n":5}']
        lanes, cpu = run_lanes("127.0.0.1", port, [[(_request(port, b), 1) for b in bodies]])
    stats, first, last = lanes[0]
    # 2 again after the 503, 3 again after the dropped connection.
    assert seen == [b'{"n":%d}' % n for n in (1, 2, 2, 3, 3, 4, 5)]
    assert (stats.requests, stats.readings, stats.counted) == (3, 3, 5 + 7 + 11)
    assert stats.retries == 2
    assert len(stats.latencies) == 3 and all(0 < x <= last - first for x in stats.latencies)
    assert [e.split(" ", 3)[2] for e in stats.errors] == ["401", "202"]
    assert cpu >= 0


def test_the_soak_paces_its_calls_and_counts_a_refusal_as_an_error_over_a_real_socket():
    from bench.soak import call, paced, parse_args
    from tools.fleet.transport import HttpTransport, LaneStats

    args = parse_args(["--duration", "60"])
    assert (args.single_readings, args.batch_readings) == (1200, 3000)
    assert parse_args([]).duration == 300
    script = [
        _answer("200 OK", b'{"message":"ok"}'),
        _answer("403 Forbidden", b'{"message":"Cannot add a seat"}'),
    ]
    with server(script) as (port, seen):
        transport = HttpTransport(f"http://127.0.0.1:{port}")
        stats = LaneStats()
        wcp = {"Authorization": "cpk_raw", "Content-Type": "text/plain;charset=UTF-8"}
        steps: list[int] = []

        def step(i: int) -> None:
            steps.append(i)
            call(transport, stats, "POST", "/seats", headers=wcp, body=b'{"n":%d}' % i)

        paced(1000.0, step, until=0.0, count=2)
        transport.close()
    assert steps == [0, 1]
    assert seen == [b'{"n":0}', b'{"n":1}']
    assert stats.requests == 1 and len(stats.latencies) == 1
    assert stats.errors == ['POST /seats -> 403 {"message": "Cannot add a seat"}']
