"""E-mail over SMTP; the one place that meets smtplib.

STARTTLS and authentication are the operator's settings (``SmtpServer``): a park's relay on
the same host may take plain SMTP, a provider wants STARTTLS on 587 and a login. The
Message-ID is derived from the notification id, so a mail system or client that drops
repeated Message-IDs shows a retried alert once.

What an answer means: 250 accepted; a recipient refused with a 5xx code (no such mailbox) is
gone; everything else, a 4xx, a refused connection, a timeout, a login refused, a server
without the STARTTLS it was configured to use, is retried until the policy's bound.
"""

from __future__ import annotations

import smtplib
import ssl
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import format_datetime

from service.alerts.channels.base import Accepted, Delivery, Gone, Notification, RetryLater


@dataclass(frozen=True, slots=True)
class SmtpServer:
    host: str
    sender: str  # the From address
    port: int = 587
    starttls: bool = True
    username: str | None = None
    password: str | None = None
    timeout_s: float = 30.0
    tls: ssl.SSLContext | None = None  # default: the system's trusted CAs, hostname checked

    @property
    def domain(self) -> str:
        return self.sender.rsplit("@", 1)[-1] or "parkflow.invalid"


def message(n: Notification, server: SmtpServer, to: str) -> EmailMessage:
    """The e-mail ``n`` is sent as (pure: no connection)."""
    msg = EmailMessage()
    msg["From"] = server.sender
    msg["To"] = to
    msg["Subject"] = n.subject
    msg["Date"] = format_datetime(n.created_at)
    msg["Message-ID"] = f"<{n.id}@{server.domain}>"
    msg["Auto-Submitted"] = "auto-generated"  # RFC 3834: no vacation replies to us
    msg["X-Parkflow-Alert"] = f"{n.kind}; severity={n.severity}"
    msg.set_content(n.text + "\n")
    msg["Content-Language"] = n.language  # after set_content, which drops Content-* headers
    return msg


class SmtpChannel:
    """Sends notifications to one mailbox through one SMTP server, a connection each time
    (alerts are few; a held connection would only add its own failures)."""

    name = "email"

    def __init__(self, server: SmtpServer, to: str) -> None:
        self.server = server
        self.to = to

    def send(self, n: Notification) -> Delivery:
        s = self.server
        msg = message(n, s, self.to)
        try:
            with smtplib.SMTP(s.host, s.port, timeout=s.timeout_s) as smtp:
                smtp.ehlo()
                if s.starttls:
                    smtp.starttls(context=s.tls or ssl.create_default_context())
                    smtp.ehlo()
                if s.username is not None:
                    smtp.login(s.username, s.password or "")
                refused = smtp.send_message(msg, s.sender, [self.to])
        except smtplib.SMTPRecipientsRefused as exc:
            code, text = exc.recipients.get(self.to, (0, b""))
            reason = f"recipient {self.to} refused: {code} {_text(text)}"
            return Gone(reason) if 500 <= code < 600 else RetryLater(reason)
        except smtplib.SMTPNotSupportedError as exc:
            return RetryLater(f"SMTP server {s.host}:{s.port} does not support it: {exc}")
        except smtplib.SMTPAuthenticationError as exc:
            return RetryLater(f"SMTP login refused: {exc.smtp_code} {_text(exc.smtp_error)}")
        except smtplib.SMTPResponseException as exc:
            return RetryLater(f"SMTP {exc.smtp_code} {_text(exc.smtp_error)}")
        except (smtplib.SMTPException, OSError) as exc:  # refused, reset, timeout, TLS
            return RetryLater(f"SMTP server {s.host}:{s.port} unreachable: {exc!r}")
        if self.to in refused:  # only when some recipients were taken; we send to one
            code, text = refused[self.to]
            return RetryLater(f"recipient {self.to} refused: {code} {_text(text)}")
        return Accepted("250")


def _text(raw: bytes | str) -> str:
    return raw.decode("utf-8", "replace") if isinstance(raw, bytes) else raw
