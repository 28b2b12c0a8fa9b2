"""Webhooks: a JSON POST signed per the Standard Webhooks specification; the one place that
meets httpx for alerts.

Headers ``webhook-id`` (the notification id: the idempotency key; a batch's own id for a
batch, whose notifications keep theirs in the body), ``webhook-timestamp``
(Unix seconds) and ``webhook-signature``: ``v1,<base64 HMAC-SHA256 of id.timestamp.body>``,
one per secret, separated by spaces, so an endpoint rotating its secret verifies with either
while the new one is rolled out. Signing uses the ``standardwebhooks`` package, the reference
implementation receivers verify with, so the two cannot drift apart.

What an answer means: 2xx accepted; 410 gone (the receiver asks us to stop: the endpoint is
disabled at once); anything else, including a timeout, a refused connection, a redirect (not
followed: it could lead to an address the URL check never saw) and other 4xx, is retried,
until the endpoint has failed for the policy's bounded time.

The URL is checked before each request (``service.alerts.ssrf``) and the request goes to the
address that was checked, not to whatever the name resolves to next.
"""

from __future__ import annotations

import binascii
import functools
import ssl
import time
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any

import httpx
import orjson
from standardwebhooks import Webhook
from standardwebhooks.webhooks import EmptyWebhookSecretError

from service.alerts.channels.base import (
    Accepted,
    Delivery,
    Gone,
    Notification,
    RetryLater,
    batch_id,
    batch_payload,
    payload,
)
from service.alerts.ssrf import (
    IPAddress,
    Network,
    Resolver,
    Unresolvable,
    UnsafeUrl,
    check_webhook_url,
    system_resolver,
)

SECRET_PREFIX = "whsec_"
# a batch's body at most (a receiver's or its proxy's usual limit is 1 MiB or more): a
# larger one goes as halves
MAX_BATCH_BYTES = 512 * 1024
USER_AGENT = "parkflow-alerts/1"


def signer(secret: str) -> Webhook:
    """A signer for a ``whsec_<base64>`` secret; ``ValueError`` with a clear reason if not."""
    if not secret.startswith(SECRET_PREFIX):
        raise ValueError(f"a webhook secret starts with {SECRET_PREFIX!r}")
    raw = secret[len(SECRET_PREFIX) :]
    try:
        key = binascii.a2b_base64(raw.encode("ascii") + b"==")
    except (binascii.Error, UnicodeEncodeError) as exc:
        raise ValueError(f"a webhook secret is {SECRET_PREFIX} and base64: {exc}") from exc
    if len(key) < 24:
        raise ValueError(
            f"a webhook secret needs at least 24 random bytes (it has {len(key)}):"
            f" generate one with `python -c 'import secrets, base64;"
            f' print("whsec_" + base64.b64encode(secrets.token_bytes(32)).decode())\''
        )
    try:
        return Webhook(secret)
    except (EmptyWebhookSecretError, binascii.Error, RuntimeError) as exc:
        raise ValueError(f"not a usable webhook secret: {exc}") from exc


def signed_request(
    n: Notification, signers: Sequence[Webhook], at: float
) -> tuple[dict[str, str], bytes]:
    """The headers and body of ``n``'s POST, signed at ``at`` (Unix seconds)."""
    return _signed(n.id, orjson.dumps(payload(n)), signers, at)


def signed_batch(
    ns: Sequence[Notification], signers: Sequence[Webhook], at: float
) -> tuple[dict[str, str], bytes]:
    """The headers and body of a batch's POST, signed at ``at``: its id is the batch's."""
    return _signed(batch_id(ns), orjson.dumps(batch_payload(ns)), signers, at)


def _signed(
    wid: str, body: bytes, signers: Sequence[Webhook], at: float
) -> tuple[dict[str, str], bytes]:
    when = datetime.fromtimestamp(int(at), tz=UTC)
    text = body.decode("utf-8")
    signature = " ".join(s.sign(wid, when, text) for s in signers)
    headers = {
        "content-type": "application/json",
        "user-agent": USER_AGENT,
        "webhook-id": wid,
        "webhook-timestamp": str(int(at)),
        "webhook-signature": signature,
    }
    return headers, body


def retry_after(headers: Mapping[str, str], now: float) -> float | None:
    """Seconds a ``Retry-After`` header asks for (delta seconds or an HTTP date)."""
    value = headers.get("retry-after")
    if value is None:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        return max(0.0, parsedate_to_datetime(value).timestamp() - now)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None


def pinned(
    url: str, address: IPAddress, headers: dict[str, str]
) -> tuple[httpx.URL, dict[str, Any]]:
    """The request to ``url`` sent to the ``address`` that was checked, so that a name which
    resolves to a public address for the check and to a private one a moment later (DNS
    rebinding) still reaches only the checked one. The Host header, and for HTTPS the TLS
    server name and the certificate check, keep the URL's own host name."""
    original = httpx.URL(url)
    if original.host == str(address):
        return original, {}
    headers["host"] = original.netloc.decode("ascii")
    extensions: dict[str, Any] = {}
    if original.scheme == "https":
        extensions["sni_hostname"] = original.host
    return original.copy_with(host=str(address)), extensions


@functools.cache
def default_tls() -> ssl.SSLContext:
    """The system's trusted CAs (certifi's, as httpx would), loaded once per process: loading
    them takes milliseconds, once per endpoint it was most of a first dispatch pass."""
    return httpx.create_ssl_context(trust_env=False)


class WebhookChannel:
    """POSTs notifications to one endpoint. ``secrets``: the endpoint's current secrets (more
    than one while rotating). ``allowed``: networks the operator lets webhooks reach although
    they are not public. ``batch``: up to this many notifications per POST, for an endpoint
    that asked for batches (1: one per POST, the default)."""

    name = "webhook"

    def __init__(
        self,
        url: str,
        secrets: Sequence[str],
        *,
        timeout_s: float = 10.0,
        allowed: Sequence[Network] = (),
        resolve: Resolver = system_resolver,
        clock: Callable[[], float] = time.time,
        verify: ssl.SSLContext | bool = True,  # a context with a park's own CA, if it has one
        batch: int = 1,
    ) -> None:
        if not secrets:
            raise ValueError("a webhook needs at least one secret")
        if batch < 1:
            raise ValueError("a webhook batch holds at least one notification")
        self.url = url
        self.batch = batch
        self._signers = [signer(s) for s in secrets]
        self._allowed = tuple(allowed)
        self._resolve = resolve
        self._clock = clock
        # The transport, not a client: a client's cookie jar, auth and redirect machinery are
        # nothing a webhook wants (redirects are never followed), and cost more CPU per POST
        # than the rest of a delivery.
        self._transport = httpx.HTTPTransport(
            verify=default_tls() if verify is True else verify, trust_env=False
        )
        self._timeout = httpx.Timeout(timeout_s).as_dict()

    def close(self) -> None:
        self._transport.close()

    def send(self, n: Notification) -> Delivery:
        answer, _ = self._post(*signed_request(n, self._signers, self._clock()))
        return answer

    def send_batch(self, ns: Sequence[Notification]) -> Delivery:
        """One POST of ``ns``, or of its halves in turn when its body would exceed
        ``MAX_BATCH_BYTES`` or the receiver answers 413 (too large): a batch a receiver
        cannot take would otherwise be retried until its endpoint is disabled. Accepted
        only when every part was; a part accepted before another failed is sent again with
        the rest (each notification keeps its id: receivers drop the repeat)."""
        if not 1 <= len(ns) <= self.batch:
            raise ValueError(f"a batch of {len(ns)}: this endpoint takes 1 to {self.batch}")
        headers, body = signed_batch(ns, self._signers, self._clock())
        if len(ns) > 1 and len(body) > MAX_BATCH_BYTES:
            return self._halves(ns)
        answer, status = self._post(headers, body)
        if len(ns) > 1 and status == 413:
            return self._halves(ns)
        return answer

    def _halves(self, ns: Sequence[Notification]) -> Delivery:
        first = self.send_batch(ns[: len(ns) // 2])
        return first if not isinstance(first, Accepted) else self.send_batch(ns[len(ns) // 2 :])

    def _post(self, headers: dict[str, str], body: bytes) -> tuple[Delivery, int | None]:
        """The answer, and the HTTP status when there was one."""
        try:
            addresses = check_webhook_url(self.url, self._allowed, self._resolve)
        except Unresolvable as exc:
            return RetryLater(str(exc)), None
        except UnsafeUrl as exc:
            return Gone(f"refused address: {exc}"), None
        url, extensions = pinned(self.url, addresses[0], headers)
        request = httpx.Request(
            "POST",
            url,
            content=body,
            headers=headers,
            extensions={**extensions, "timeout": self._timeout},
        )
        try:
            response = self._transport.handle_request(request)
            try:
                response.read()
            finally:
                response.close()
        except httpx.TimeoutException as exc:
            return RetryLater(f"timed out: {exc!r}"), None
        except httpx.HTTPError as exc:
            return RetryLater(f"unreachable: {exc!r}"), None
        status = response.status_code
        if 200 <= status < 300:
            return Accepted(f"HTTP {status}"), status
        if status == 410:
            return Gone("HTTP 410 Gone: the endpoint asked to receive no more"), status
        reason = f"HTTP {status}"
        if 300 <= status < 400:
            reason += " (redirects are not followed: give the final URL)"
        return RetryLater(reason, retry_after(response.headers, self._clock())), status
