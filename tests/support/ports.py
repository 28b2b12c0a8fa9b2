"""Free loopback ports for servers the tests start themselves."""

from __future__ import annotations

import os
import socket
import time


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_port(port: int, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            s.settimeout(0.2)
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise TimeoutError(f"nothing listens on 127.0.0.1:{port} after {timeout}s")


def require_binary(path: str, what: str, package: str) -> str:
    """The server binary a test needs, or a failure that says what is missing and how to get
    it: never a skip (CI must run every test) and never a bare FileNotFoundError."""
    if not (os.path.isfile(path) and os.access(path, os.X_OK)):
        raise RuntimeError(
            f"{what} not found at {path}: the tests run a real {what}; install the Debian"
            f" package {package!r} (`make test` does it as root, or `sudo apt-get install"
            f" {package}`)"
        )
    return path
