"""E-mail against a real SMTP server (aiosmtpd): plain, STARTTLS, login, refusals."""

from __future__ import annotations

import dataclasses
from email.header import decode_header, make_header
from email.message import Message

from service.alerts.backoff import BackoffPolicy
from service.alerts.channels import Accepted, RetryLater
from service.alerts.channels.smtp import SmtpChannel, SmtpServer, message
from service.alerts.delivery import Disabled, Retry, Sent, deliver
from tests.service.alerts.build import note
from tests.support.ports import free_port
from tests.support.smtp import Mailbox
from tests.support.smtp import SmtpServer as LocalSmtp

TO = "env@dye.example.com"


def plain(port: int) -> SmtpServer:
    return SmtpServer("127.0.0.1", "alerts@park.example.com", port, starttls=False, timeout_s=5)


def body(m: Message) -> str:
    payload = m.get_payload(decode=True)
    assert isinstance(payload, bytes)
    return payload.decode(m.get_content_charset() or "utf-8")


def test_plain_delivery_with_message_id_from_the_notification() -> None:
    box = Mailbox()
    with LocalSmtp(box) as server:
        n = note("Một doanh nghiệp cách khoảng 300 m", language="vi")
        assert isinstance(SmtpChannel(plain(server.port), TO).send(n), Accepted)
    (m,) = box.messages
    assert m["Message-ID"] == f"<{n.id}@park.example.com>"
    assert m["To"] == TO and m["Subject"] == n.subject
    assert m["Content-Language"] == "vi"
    assert body(m).strip() == n.text
    assert box.tls_used == [False]


def test_starttls_and_login() -> None:
    box = Mailbox()
    with LocalSmtp(box, starttls=True, users={"parkflow": "s3cret"}) as server:
        cfg = SmtpServer(
            "127.0.0.1", "alerts@park.example.com", server.port, starttls=True,
            username="parkflow", password="s3cret", timeout_s=5, tls=server.client_tls(),
        )  # fmt: skip
        assert isinstance(SmtpChannel(cfg, TO).send(note()), Accepted)
        assert box.tls_used == [True] and box.logins == ["parkflow"]
        wrong = SmtpServer(
            "127.0.0.1", "alerts@park.example.com", server.port, starttls=True,
            username="parkflow", password="nope", timeout_s=5, tls=server.client_tls(),
        )  # fmt: skip
        answer = SmtpChannel(wrong, TO).send(note())
        assert isinstance(answer, RetryLater) and "login refused: 535" in answer.reason
        # a server that insists on STARTTLS refuses a client configured without it
        answer = SmtpChannel(plain(server.port), TO).send(note())
        assert isinstance(answer, RetryLater)
    assert len(box.messages) == 1


def test_starttls_configured_but_not_offered_is_retried() -> None:
    with LocalSmtp(Mailbox()) as server:
        cfg = SmtpServer("127.0.0.1", "alerts@park.example.com", server.port, timeout_s=5)
        answer = SmtpChannel(cfg, TO).send(note())
    assert isinstance(answer, RetryLater) and "STARTTLS" in answer.reason


def test_refusing_then_accepting_is_retried_then_sent() -> None:
    box = Mailbox(script=["451 4.3.0 try again later"])
    with LocalSmtp(box) as server:
        ch, n = SmtpChannel(plain(server.port), TO), note()
        first = deliver(n, ch, BackoffPolicy(), n.created_at)
        assert isinstance(first, Retry) and "451" in first.reason
        assert box.messages == []
        assert isinstance(deliver(n, ch, BackoffPolicy(), first.at, first.attempts), Sent)
    assert [m["Message-ID"] for m in box.messages] == [f"<{n.id}@park.example.com>"]


def test_an_unknown_mailbox_is_gone() -> None:
    box = Mailbox(unknown={TO})
    with LocalSmtp(box) as server:
        out = deliver(
            note(), SmtpChannel(plain(server.port), TO), BackoffPolicy(), note().created_at
        )
    assert isinstance(out, Disabled) and out.gone and "550" in out.reason
    assert box.messages == []


def test_no_server_is_retried() -> None:
    answer = SmtpChannel(plain(free_port()), TO).send(note())
    assert isinstance(answer, RetryLater) and "unreachable" in answer.reason


def test_vietnamese_subject_and_text_survive_the_wire() -> None:
    box = Mailbox()
    n = dataclasses.replace(note(), subject="Có bên cần nước thải đã xử lý của quý công ty")
    with LocalSmtp(box) as server:
        assert isinstance(SmtpChannel(plain(server.port), TO).send(n), Accepted)
    (m,) = box.messages
    assert str(make_header(decode_header(m["Subject"]))) == n.subject
    assert m["Auto-Submitted"] == "auto-generated"
    assert m["X-Parkflow-Alert"] == "opportunity_new; severity=info"
    assert message(n, plain(25), TO)["Message-ID"] == m["Message-ID"]  # same id, every attempt
