"""A real HTTP receiver for webhook tests (ports 8500-8599 are this area's)."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@dataclass
class Receiver:
    url: str
    statuses: list[int] = field(default_factory=list)  # answers to give, then 200
    delay: float = 0.0
    received: list[dict] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def deliveries(self) -> list[str]:
        with self.lock:
            return [r["headers"]["X-ControlPanel-Delivery"] for r in self.received]


@contextmanager
def receiver(*, first_port: int = 8520) -> Iterator[Receiver]:
    state: Receiver

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            if state.delay:
                time.sleep(state.delay)  # a slow receiver, not a test wait
            with state.lock:
                status = state.statuses.pop(0) if state.statuses else 200
                state.received.append(
                    {
                        "status": status,
                        "headers": dict(self.headers),
                        "body": body,
                        "json": json.loads(body),
                    }
                )
            self.send_response(status)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = None
    for port in range(first_port, first_port + 40):
        try:
            server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
            break
        except OSError:
            continue
    assert server is not None, "no free port in 8520-8559"
    state = Receiver(url=f"http://127.0.0.1:{server.server_address[1]}/hook")
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()
