"""Webhooks against a real HTTP receiver that verifies signatures with ``standardwebhooks``."""

from __future__ import annotations

import json
import ssl
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from standardwebhooks import Webhook, WebhookVerificationError

from service.alerts.backoff import BackoffPolicy
from service.alerts.channels import Accepted, Gone, RetryLater
from service.alerts.channels.webhook import WebhookChannel, retry_after, signed_request, signer
from service.alerts.delivery import Attempts, Disabled, Retry, Sent, deliver
from service.alerts.ssrf import parse_networks
from tests.service.alerts.build import OTHER_SECRET, SECRET, note
from tests.support.webhook_receiver import Answer, WebhookReceiver

LOOPBACK = parse_networks(["127.0.0.0/8"])  # the operator's allow-list for a local receiver


@pytest.fixture
def receiver() -> Iterator[WebhookReceiver]:
    with WebhookReceiver(SECRET) as r:
        yield r


def channel(
    r: WebhookReceiver, secrets: list[str] | None = None, timeout_s: float = 10.0
) -> WebhookChannel:
    return WebhookChannel(r.url, secrets or [SECRET], allowed=LOOPBACK, timeout_s=timeout_s)


def test_signature_verifies_with_the_reference_package() -> None:
    n = note()
    headers, body = signed_request(n, [signer(SECRET)], 1_800_000_000)
    assert headers["webhook-id"] == n.id
    assert headers["webhook-timestamp"] == "1800000000"
    version, _ = headers["webhook-signature"].split(",", 1)
    assert version == "v1"
    # verify() checks the timestamp against the clock: sign now for the round trip
    now = datetime.now(UTC).timestamp()
    headers, body = signed_request(n, [signer(SECRET)], now)
    assert Webhook(SECRET).verify(body, headers)["data"]["id"] == n.id
    with pytest.raises(WebhookVerificationError):
        Webhook(OTHER_SECRET).verify(body, headers)
    with pytest.raises(WebhookVerificationError):
        Webhook(SECRET).verify(body.replace(b"150", b"151"), headers)


def test_rotation_signs_with_every_secret() -> None:
    headers, body = signed_request(
        note(), [signer(OTHER_SECRET), signer(SECRET)], datetime.now(UTC).timestamp()
    )
    assert len(headers["webhook-signature"].split(" ")) == 2
    Webhook(SECRET).verify(body, headers)  # the old secret still verifies
    Webhook(OTHER_SECRET).verify(body, headers)  # and the new one


@pytest.mark.parametrize(
    ("secret", "why"),
    [
        ("k" * 40, "starts with 'whsec_'"),
        ("whsec_", "at least 24 random bytes"),
        ("whsec_c2hvcnQ=", "at least 24 random bytes"),
    ],
)
def test_malformed_secrets_are_refused_clearly(secret: str, why: str) -> None:
    with pytest.raises(ValueError, match=why):
        signer(secret)


def test_accepted_and_verified_by_a_real_receiver(receiver: WebhookReceiver) -> None:
    n = note()
    assert isinstance(channel(receiver).send(n), Accepted)
    assert receiver.bad_signatures == 0
    body = receiver.delivered[n.id]
    assert body["type"] == "alert.opportunity_new"
    assert body["data"]["text"] == n.text
    assert body["data"]["tenant"] == "dye"


def test_rotating_receiver_accepts_during_rollout(receiver: WebhookReceiver) -> None:
    assert isinstance(channel(receiver, [OTHER_SECRET, SECRET]).send(note()), Accepted)
    assert isinstance(channel(receiver, [OTHER_SECRET]).send(note()), RetryLater)  # 400
    assert receiver.bad_signatures == 1


def test_500_then_200_is_retried_then_sent_once(receiver: WebhookReceiver) -> None:
    receiver.script = [Answer(500), Answer(503, headers={"Retry-After": "120"}), Answer(200)]
    ch, n = channel(receiver), note()
    policy = BackoffPolicy(base_s=1, cap_s=60, disable_after_s=3600)
    t0 = datetime(2026, 12, 2, 8, 0, tzinfo=UTC)
    first = deliver(n, ch, policy, t0, jitter=lambda: 0.5)
    assert isinstance(first, Retry)
    assert first.reason == "HTTP 500"
    assert first.at == t0 + timedelta(seconds=0.5)
    second = deliver(n, ch, policy, first.at, first.attempts, jitter=lambda: 0.5)
    assert isinstance(second, Retry)
    assert second.at == first.at + timedelta(seconds=120)  # the receiver's Retry-After wins
    assert second.attempts == Attempts(2, t0)
    third = deliver(n, ch, policy, second.at, second.attempts)
    assert isinstance(third, Sent)
    assert list(receiver.delivered) == [n.id]
    # a dispatcher that crashed before recording Sent sends it again: the receiver drops it
    assert isinstance(ch.send(n), Accepted)
    assert list(receiver.delivered) == [n.id]
    assert receiver.duplicates == 1
    assert len({h["webhook-id"] for h in receiver.requests}) == 1


def test_410_disables_at_once(receiver: WebhookReceiver) -> None:
    receiver.script = [Answer(410)]
    outcome = deliver(note(), channel(receiver), BackoffPolicy(), datetime.now(UTC))
    assert isinstance(outcome, Disabled)
    assert outcome.gone
    assert "410" in outcome.reason and outcome.channel == "webhook"
    assert outcome.recipient.tenant == "dye"


def test_a_slow_receiver_times_out_and_is_retried(receiver: WebhookReceiver) -> None:
    receiver.script = [Answer(200, delay_s=2.0)]
    answer = channel(receiver, timeout_s=0.3).send(note())
    assert isinstance(answer, RetryLater)
    assert "timed out" in answer.reason


def test_a_closed_port_is_retried() -> None:
    r = WebhookReceiver(SECRET)
    url = r.url
    r.server.server_close()  # nothing listens there now
    answer = WebhookChannel(url, [SECRET], allowed=LOOPBACK).send(note())
    assert isinstance(answer, RetryLater)
    assert "unreachable" in answer.reason


def test_an_endpoint_failing_beyond_the_bound_is_disabled(receiver: WebhookReceiver) -> None:
    receiver.script = [Answer(500)] * 3
    ch, n = channel(receiver), note()
    policy = BackoffPolicy(base_s=1, cap_s=10, disable_after_s=600)
    t0 = datetime(2026, 12, 2, 8, 0, tzinfo=UTC)
    out = deliver(n, ch, policy, t0)
    assert isinstance(out, Retry)
    out = deliver(n, ch, policy, t0 + timedelta(seconds=599), out.attempts)
    assert isinstance(out, Retry)
    out = deliver(n, ch, policy, t0 + timedelta(seconds=600), out.attempts)
    assert isinstance(out, Disabled)
    assert not out.gone
    assert "HTTP 500" in out.reason and out.recipient.tenant == "dye"


def test_loopback_is_refused_without_the_operators_allowance(receiver: WebhookReceiver) -> None:
    answer = WebhookChannel(receiver.url, [SECRET]).send(note())
    assert isinstance(answer, Gone)
    assert "loopback" in answer.reason
    assert receiver.requests == []  # refused before any request


def test_redirects_are_not_followed(receiver: WebhookReceiver) -> None:
    receiver.script = [Answer(302, headers={"Location": "http://169.254.169.254/"})]
    answer = channel(receiver).send(note())
    assert isinstance(answer, RetryLater)
    assert "302" in answer.reason and len(receiver.requests) == 1


def test_retry_after_forms() -> None:
    assert retry_after({"retry-after": "30"}, 0) == 30
    assert retry_after({"retry-after": "Thu, 01 Jan 1970 00:01:00 GMT"}, 0) == 60
    assert retry_after({"retry-after": "soon"}, 0) is None
    assert retry_after({}, 0) is None


def test_body_is_the_documented_json(receiver: WebhookReceiver) -> None:
    n = note("Xin chào", language="vi", ref="abc")
    channel(receiver).send(n)
    doc = json.loads(receiver.bodies[-1])
    assert doc == {
        "type": "alert.opportunity_new",
        "timestamp": "2026-12-02T08:00:00Z",
        "data": {
            "id": n.id,
            "park": "hp",
            "tenant": "dye",
            "kind": "opportunity_new",
            "severity": "info",
            "language": "vi",
            "subject": "Exchange opportunity",
            "text": "Xin chào",
            "facts": {"ref": "abc"},
        },
    }


def test_the_request_goes_to_the_address_that_was_checked(receiver: WebhookReceiver) -> None:
    """A name the system cannot resolve reaches the receiver: the request was sent to the
    address the check resolved, with the URL's host name in the Host header."""
    url = f"http://hooks.receiver.invalid:{receiver.port}/hooks/parkflow"
    ch = WebhookChannel(url, [SECRET], allowed=LOOPBACK, resolve=lambda host, port: ["127.0.0.1"])
    assert isinstance(ch.send(note()), Accepted)
    assert receiver.requests[-1]["host"] == f"hooks.receiver.invalid:{receiver.port}"


def test_a_name_that_now_resolves_to_a_private_address_is_not_called(
    receiver: WebhookReceiver,
) -> None:
    answers = iter([["127.0.0.1"], ["10.9.9.9"]])  # allowed the first time, then rebound
    url = f"http://hooks.receiver.invalid:{receiver.port}/x"
    ch = WebhookChannel(url, [SECRET], allowed=LOOPBACK, resolve=lambda h, p: next(answers))
    assert isinstance(ch.send(note()), Accepted)
    answer = ch.send(note())
    assert isinstance(answer, Gone) and "10.9.9.9" in answer.reason
    assert len(receiver.requests) == 1


def test_https_to_a_pinned_address_checks_the_certificate_of_the_name() -> None:
    """Sent to the checked address, TLS still names the URL's host: the certificate for
    hooks.receiver.test verifies, and a receiver whose certificate names another host does
    not."""
    with WebhookReceiver(SECRET, tls_name="hooks.receiver.test") as r:
        assert r.cert is not None
        ctx = ssl.create_default_context(cafile=str(r.cert))
        to_loopback = lambda host, port: ["127.0.0.1"]  # noqa: E731
        ch = WebhookChannel(r.url, [SECRET], allowed=LOOPBACK, resolve=to_loopback, verify=ctx)
        n = note()
        assert isinstance(ch.send(n), Accepted)
        assert n.id in r.delivered
        other = r.url.replace("hooks.receiver.test", "other.receiver.test")
        wrong = WebhookChannel(other, [SECRET], allowed=LOOPBACK, resolve=to_loopback, verify=ctx)
        answer = wrong.send(note())
        assert isinstance(answer, RetryLater) and "CERTIFICATE_VERIFY_FAILED" in answer.reason
