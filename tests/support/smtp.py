"""A real SMTP server for tests (aiosmtpd) on a free loopback port, with STARTTLS (a
certificate made by openssl for the test, ``tests.support.tlscert``) and authentication when asked, and a scripted
answer to each message so a test can make it refuse and then accept."""

from __future__ import annotations

import shutil
import ssl
import tempfile
from email import message_from_bytes
from email.message import Message
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, Envelope, LoginPassword, Session

from tests.support.ports import free_port
from tests.support.tlscert import client_context, make_cert, server_context


class Mailbox:
    """The server's handler: keeps accepted messages; answers DATA from ``script`` (an SMTP
    reply such as ``451 4.3.0 try later``), then 250; refuses RCPT for ``unknown`` mailboxes."""

    def __init__(self, script: list[str] | None = None, unknown: set[str] | None = None) -> None:
        self.script = list(script or [])
        self.unknown = set(unknown or ())
        self.messages: list[Message] = []
        self.raw: list[bytes] = []
        self.tls_used: list[bool] = []
        self.logins: list[str] = []

    async def handle_RCPT(
        self, server: Any, session: Session, envelope: Envelope, address: str, options: Any
    ) -> str:
        if address in self.unknown:
            return "550 5.1.1 no such mailbox"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Session, envelope: Envelope) -> str:
        if self.script:
            return self.script.pop(0)
        data = envelope.original_content or b""
        self.raw.append(data)
        self.messages.append(message_from_bytes(data))
        self.tls_used.append(session.ssl is not None)
        return "250 OK queued"


class SmtpServer:
    def __init__(
        self,
        mailbox: Mailbox,
        *,
        starttls: bool = False,
        users: dict[str, str] | None = None,
    ) -> None:
        self.mailbox = mailbox
        self.port = free_port()
        self.dir = Path(tempfile.mkdtemp(prefix="smtp-"))
        self.cert: Path | None = None
        kw: dict[str, Any] = {}
        if starttls:
            self.cert, key = make_cert(self.dir)
            ctx = server_context(self.cert, key)
            kw |= {"tls_context": ctx, "require_starttls": True}
        if users is not None:
            known = dict(users)

            def authenticate(
                server: Any, session: Session, envelope: Envelope, mechanism: str, data: Any
            ) -> AuthResult:
                ok = (
                    isinstance(data, LoginPassword)
                    and known.get(data.login.decode()) == data.password.decode()
                )
                if ok:
                    mailbox.logins.append(data.login.decode())
                return AuthResult(success=ok, handled=False)

            kw |= {
                "authenticator": authenticate,
                "auth_required": True,
                "auth_require_tls": starttls,
                # PLAIN only: smtplib falls back from a refused PLAIN to LOGIN, which this
                # server then waits on until the client's timeout
                "auth_exclude_mechanism": ["LOGIN"],
            }
        self.controller = Controller(mailbox, hostname="127.0.0.1", port=self.port, **kw)

    def client_tls(self) -> ssl.SSLContext:
        """A client context trusting only this server's certificate."""
        assert self.cert is not None
        return client_context(self.cert)

    def start(self) -> SmtpServer:
        self.controller.start()
        return self

    def close(self) -> None:
        self.controller.stop()
        shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self) -> SmtpServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()
