"""A self-signed certificate for test servers on loopback (``localhost`` and ``127.0.0.1``),
made by the openssl binary, and the client context that trusts only it."""

from __future__ import annotations

import shutil
import ssl
import subprocess
from pathlib import Path

from tests.support.ports import require_binary


def make_cert(directory: Path, name: str = "localhost") -> tuple[Path, Path]:
    """(certificate, key) for ``name``, ``localhost`` and 127.0.0.1, valid one day."""
    openssl = require_binary(shutil.which("openssl") or "/usr/bin/openssl", "openssl", "openssl")
    cert, key = directory / "cert.pem", directory / "key.pem"
    subprocess.run(
        [openssl, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
         "-subj", f"/CN={name}",
         "-addext", f"subjectAltName=DNS:{name},DNS:localhost,IP:127.0.0.1",
         "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True,
    )  # fmt: skip
    return cert, key


def server_context(cert: Path, key: Path) -> ssl.SSLContext:
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(cert, key)
    return ctx


def client_context(cert: Path) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=str(cert))
