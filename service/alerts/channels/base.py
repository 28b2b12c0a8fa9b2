"""The one seam every delivery channel fits: ``send(notification) -> Delivery``.

A channel answers with a value, never an exception, so that the code recording the outcome
(``service.alerts.delivery``) has three cases to persist rather than every library's errors:
each channel module is the one place that meets its library (httpx, smtplib, paho) and maps
what that library raises to one of these.
"""

from __future__ import annotations

import hashlib
import re
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal, Protocol

Language = Literal["en", "vi"]
LANGUAGES: tuple[Language, ...] = ("en", "vi")
Severity = Literal["info", "warning", "critical"]
SEVERITIES: tuple[Severity, ...] = ("info", "warning", "critical")  # in rising order


def severity_at_least(severity: Severity, minimum: Severity) -> bool:
    """Whether a contact whose threshold is ``minimum`` wants an alert of ``severity``."""
    return SEVERITIES.index(severity) >= SEVERITIES.index(minimum)


@dataclass(frozen=True, slots=True)
class Recipient:
    """Who a notification is for: one tenant of a park, or one operator (``tenant`` None)."""

    park: str
    tenant: str | None = None
    operator: str | None = None

    def __post_init__(self) -> None:
        if (self.tenant is None) == (self.operator is None):
            raise ValueError("a recipient is either a tenant or an operator")

    @property
    def is_operator(self) -> bool:
        return self.operator is not None


@dataclass(frozen=True, slots=True)
class Notification:
    """One alert rendered for one recipient in one language, ready for any channel.

    ``id`` is the idempotency key: the same notification is sent with the same id on every
    attempt (webhook-id, the e-mail's Message-ID, the MQTT payload's id), so a receiver that
    remembers ids sees each alert once however often it is retried. Everything in ``subject``,
    ``text`` and ``data`` has already passed the privacy rule (``service.alerts.texts``):
    channels send it as it is.
    """

    id: str
    recipient: Recipient
    kind: str
    subject: str
    severity: Severity
    language: Language
    text: str
    created_at: datetime  # timezone-aware, UTC
    data: Mapping[str, Any] = field(default_factory=dict)  # JSON-safe values only

    def __post_init__(self) -> None:
        try:
            uuid.UUID(self.id)
        except ValueError:
            raise ValueError(f"notification id {self.id!r} is not a UUID") from None
        if self.created_at.tzinfo is None:
            raise ValueError("created_at must be timezone-aware")
        if self.severity not in SEVERITIES:
            raise ValueError(f"unknown severity {self.severity!r}")
        if self.language not in LANGUAGES:
            raise ValueError(f"unknown language {self.language!r}")
        if re.search(r"[\r\n]", self.subject):
            raise ValueError("a subject is one line")


@dataclass(frozen=True, slots=True)
class Accepted:
    """The channel took responsibility for the notification (2xx, 250, PUBACK)."""

    detail: str = ""


@dataclass(frozen=True, slots=True)
class RetryLater:
    """Not delivered this time; the same notification may succeed later. ``after``: seconds
    the receiver asked us to wait (Retry-After), if it said."""

    reason: str
    after: float | None = None


@dataclass(frozen=True, slots=True)
class Gone:
    """The endpoint says it will never take anything again (HTTP 410, a mailbox that does not
    exist, an address that is refused): stop sending to it."""

    reason: str


Delivery = Accepted | RetryLater | Gone


class Channel(Protocol):
    """A way to reach one endpoint: a webhook URL, a mailbox, an MQTT topic."""

    name: str  # webhook, email, mqtt, memory: the label metrics and records use

    def send(self, n: Notification) -> Delivery: ...


class BatchChannel(Channel, Protocol):
    """A channel whose endpoint asked for several notifications per request (a webhook with
    ``batch``): ``send_batch`` carries up to ``batch`` of them, in order, as one document,
    accepted or refused as a whole."""

    batch: int

    def send_batch(self, ns: Sequence[Notification]) -> Delivery: ...


def batching(channel: Channel) -> int:
    """How many notifications ``channel`` takes per request (1: one at a time)."""
    n = getattr(channel, "batch", 1)
    return n if isinstance(n, int) and n > 1 and hasattr(channel, "send_batch") else 1


BATCH_TYPE = "alert.batch"


def batch_id(ns: Sequence[Notification]) -> str:
    """A batch's idempotency key (its ``webhook-id``): the same notifications in the same
    order give the same id, so a batch resent after a crash is recognised as a whole; a
    batch made up anew (more became due meanwhile) has another, and receivers tell its
    notifications apart by their own ids (docs/alerts.md)."""
    digest = hashlib.sha256("\n".join(n.id for n in ns).encode("ascii")).hexdigest()
    return f"batch_{digest[:32]}"


def batch_payload(ns: Sequence[Notification]) -> dict[str, Any]:
    """The document of a batch: each notification's own document, in order, under ``data``;
    its time the newest of theirs (the same batch resent is the same document)."""
    newest = max(n.created_at for n in ns)
    return {
        "type": BATCH_TYPE,
        "timestamp": newest.isoformat().replace("+00:00", "Z"),
        "data": {"id": batch_id(ns), "notifications": [payload(n) for n in ns]},
    }


ALERT_KEYS = ("alert_id", "event", "status")


def payload(n: Notification) -> dict[str, Any]:
    """The JSON document a notification is sent as over webhooks and MQTT (docs/alerts.md).

    The shape follows the Standard Webhooks recommendation (``type``, ``timestamp``, ``data``)
    so integrators' libraries that expect it parse it as is."""
    who: dict[str, Any] = {"park": n.recipient.park}
    if n.recipient.tenant is not None:
        who["tenant"] = n.recipient.tenant
    else:
        who["operator"] = n.recipient.operator
    facts = dict(n.data)
    # the alert's own id, the step it tells of and the state it left: beside the facts
    about = {k: facts.pop(k) for k in ALERT_KEYS if k in facts}
    return {
        "type": f"alert.{n.kind}",
        "timestamp": n.created_at.isoformat().replace("+00:00", "Z"),
        "data": {
            "id": n.id,
            **who,
            "kind": n.kind,
            "severity": n.severity,
            "language": n.language,
            "subject": n.subject,
            "text": n.text,
            **about,
            "facts": facts,
        },
    }
