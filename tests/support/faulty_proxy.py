"""An HTTP proxy in front of a real InfluxDB that refuses the requests a rule picks.

Stores misbehave in ways a healthy influxd never shows on demand: a proxy or a gateway that
answers 400 or 413 to some bodies, a store that refuses every write. The proxy forwards
everything else unchanged over real TCP, so the ingestor under test talks HTTP to a real
server either way.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx

# (method, path, body) -> None to forward, or (status, body) to answer instead
Rule = Callable[[str, str, bytes], tuple[int, bytes] | None]


class FaultyProxy:
    def __init__(self, target: str, rule: Rule | None = None) -> None:
        self.target = target.rstrip("/")
        self.rule: Rule | None = rule
        self.refused = 0
        self._lock = threading.Lock()
        outer = self
        client = httpx.Client(timeout=30.0)

        class Handler(BaseHTTPRequestHandler):
            timeout = 30

            def _handle(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                rule = outer.rule
                answer = rule(self.command, self.path, body) if rule else None
                if answer is not None:
                    with outer._lock:
                        outer.refused += 1
                    status, text = answer
                    self._send(status, text, "application/json")
                    return
                headers = {
                    k: v
                    for k, v in self.headers.items()
                    if k.lower() not in {"host", "content-length", "connection"}
                }
                r = client.request(
                    self.command, outer.target + self.path, content=body, headers=headers
                )
                self._send(r.status_code, r.content, r.headers.get("content-type", ""))

            def _send(self, status: int, body: bytes, ctype: str) -> None:
                self.send_response(status)
                if ctype:
                    self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            do_GET = do_POST = do_HEAD = _handle

            def log_message(self, format: str, *args: object) -> None:
                return None

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._client = client

    def start(self) -> FaultyProxy:
        self._thread.start()
        return self

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._client.close()

    def __enter__(self) -> FaultyProxy:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()


def refuse_writes_containing(marker: bytes, status: int = 400) -> Rule:
    body = b'{"error":"refused by the test proxy"}'

    def rule(method: str, path: str, content: bytes) -> tuple[int, bytes] | None:
        if path.startswith("/write") and marker in content:
            return status, body
        return None

    return rule


def refuse_every_write(status: int = 400) -> Rule:
    return refuse_writes_containing(b"", status)
