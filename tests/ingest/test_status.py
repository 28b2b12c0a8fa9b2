"""The status endpoint: idle connections are closed, so they cannot hold its threads forever."""

from __future__ import annotations

import json
import socket
import time
import urllib.request

from prometheus_client import CollectorRegistry

from ingest.status import StatusServer

# --- the status endpoint: idle connections are closed -------------------------------------------


def _get(port: int, path: str) -> tuple[int, bytes]:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as resp:
        return int(resp.status), bytes(resp.read())


def test_status_server_closes_idle_connections_and_keeps_answering() -> None:
    server = StatusServer("127.0.0.1", 0, CollectorRegistry(), lambda: {"ready": True}, timeout=1)
    server.start()
    idle: list[socket.socket] = []
    try:
        for _ in range(20):
            s = socket.create_connection(("127.0.0.1", server.port), timeout=10)
            idle.append(s)
        assert _get(server.port, "/healthz") == (200, b'{"alive": true}')
        start = time.monotonic()
        for s in idle:
            assert s.recv(1) == b""  # the server hung up on the silent client
        elapsed = time.monotonic() - start
        print(f"20 idle connections closed after {elapsed:.2f} s")
        assert elapsed < 5
        assert _get(server.port, "/healthz") == (200, b'{"alive": true}')
        code, body = _get(server.port, "/readyz")
        assert code == 200 and json.loads(body) == {"ready": True}
    finally:
        for s in idle:
            s.close()
        server.stop()


def test_status_server_default_timeout_is_five_seconds() -> None:
    server = StatusServer("127.0.0.1", 0, CollectorRegistry(), lambda: {"ready": True})
    try:
        assert getattr(server.httpd.RequestHandlerClass, "timeout", None) == 5
    finally:
        server.httpd.server_close()
