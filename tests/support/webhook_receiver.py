"""A real HTTP webhook receiver for tests: a threading ``http.server`` on a free loopback port.

It does what the docs ask of a tenant's integrator (docs/alerts.md): verifies each request's
signature with the ``standardwebhooks`` package and keeps each ``webhook-id`` once. Its
answers come from a script (a status, optionally after a delay), so tests can make it fail,
time out or say 410 and then recover.
"""

from __future__ import annotations

import shutil
import tempfile
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from standardwebhooks import Webhook, WebhookVerificationError

from tests.support.tlscert import make_cert, server_context


@dataclass
class Answer:
    status: int = 200
    delay_s: float = 0.0
    headers: dict[str, str] = field(default_factory=dict)


class WebhookReceiver:
    """``secret``: the endpoint's secret (``whsec_...``). ``script``: answers to the next
    requests with a valid signature, in order; 200 after they run out."""

    def __init__(
        self, secret: str, script: list[Answer] | None = None, *, tls_name: str | None = None
    ) -> None:
        self.verifier = Webhook(secret)
        self.script = list(script or [])
        self.lock = threading.Lock()
        self.requests: list[dict[str, str]] = []  # headers of every request received
        self.bodies: list[bytes] = []
        self.bad_signatures = 0
        self.torn = 0  # requests whose sender died before the whole body arrived
        self.delivered: dict[str, Any] = {}  # webhook-id -> verified payload, first copy only
        self.duplicates = 0  # valid requests whose id had been accepted before
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("content-length", "0"))
                body = self.rfile.read(length)
                if len(body) < length:  # the sender was killed mid-request: nothing to verify
                    with receiver.lock:
                        receiver.torn += 1
                    return
                headers = {k.lower(): v for k, v in self.headers.items()}
                with receiver.lock:
                    receiver.requests.append(headers)
                    receiver.bodies.append(body)
                try:
                    data = receiver.verifier.verify(body, headers)
                except WebhookVerificationError:
                    with receiver.lock:
                        receiver.bad_signatures += 1
                    self._answer(Answer(400))
                    return
                with receiver.lock:
                    answer = receiver.script.pop(0) if receiver.script else Answer()
                if answer.delay_s:
                    time.sleep(answer.delay_s)
                if 200 <= answer.status < 300:
                    with receiver.lock:
                        if headers["webhook-id"] in receiver.delivered:
                            receiver.duplicates += 1
                        else:
                            receiver.delivered[headers["webhook-id"]] = data
                self._answer(answer)

            def _answer(self, answer: Answer) -> None:
                try:
                    self.send_response(answer.status)
                    for k, v in answer.headers.items():
                        self.send_header(k, v)
                    self.send_header("content-length", "0")
                    self.end_headers()
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up waiting (a timeout test)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = int(self.server.server_address[1])
        self.url = f"http://127.0.0.1:{self.port}/hooks/parkflow"
        self.cert: Path | None = None
        self._dir: Path | None = None
        if tls_name is not None:  # HTTPS, with a certificate for that name only
            self._dir = Path(tempfile.mkdtemp(prefix="webhook-tls-"))
            self.cert, key = make_cert(self._dir, tls_name)
            self.server.socket = server_context(self.cert, key).wrap_socket(
                self.server.socket, server_side=True
            )
            self.url = f"https://{tls_name}:{self.port}/hooks/parkflow"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def start(self) -> WebhookReceiver:
        self._thread.start()
        return self

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        if self._dir is not None:
            shutil.rmtree(self._dir, ignore_errors=True)

    def __enter__(self) -> WebhookReceiver:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()
