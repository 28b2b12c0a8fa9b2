"""One delivery attempt and what to record of it: sent, retry at a time, or disabled.

A dispatcher reads a pending notification and its endpoint's state from the outbox, calls
``deliver`` and persists the outcome it returns, in that order; it marks a notification sent
only on ``Sent``, which a channel returns only once the receiver accepted. A crash between the
send and the write sends that notification again on restart, with the same id, which a
receiver honouring the idempotency key drops: at least once, never lost.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from service.alerts.backoff import BackoffPolicy, delay, expired
from service.alerts.channels.base import (
    Accepted,
    BatchChannel,
    Channel,
    Delivery,
    Gone,
    Notification,
    Recipient,
    RetryLater,
)


@dataclass(frozen=True, slots=True)
class Attempts:
    """What the dispatcher keeps between attempts: failures of this notification so far, and
    since when its endpoint has failed without a success (the endpoint's, shared by all its
    notifications, so a dead endpoint is disabled on time however many alerts queue for it)."""

    failures: int = 0
    failing_since: datetime | None = None


@dataclass(frozen=True, slots=True)
class Sent:
    at: datetime
    detail: str = ""


@dataclass(frozen=True, slots=True)
class Retry:
    at: datetime  # not before this time
    attempts: Attempts  # to store with the notification and its endpoint
    reason: str


@dataclass(frozen=True, slots=True)
class Disabled:
    """The endpoint is to be disabled, and the operator told (``texts.endpoint_disabled``
    renders the alert in either language); its pending notifications stay in the outbox,
    undelivered, for the operator to see or re-enable."""

    at: datetime
    reason: str
    gone: bool  # the endpoint said so itself (410, no such mailbox), rather than timing out
    channel: str  # the channel's name: webhook, email, mqtt
    recipient: Recipient  # whose endpoint it was


Outcome = Sent | Retry | Disabled


def deliver(
    n: Notification,
    channel: Channel,
    policy: BackoffPolicy,
    now: datetime,
    attempts: Attempts = Attempts(),
    *,
    jitter: Callable[[], float] = random.random,
) -> Outcome:
    """Send ``n`` once over ``channel`` and say what to record."""
    return outcome(channel.send(n), channel.name, n.recipient, policy, now, attempts, jitter)


def deliver_batch(
    ns: Sequence[Notification],
    channel: BatchChannel,
    policy: BackoffPolicy,
    now: datetime,
    attempts: Attempts = Attempts(),
    *,
    jitter: Callable[[], float] = random.random,
) -> Outcome:
    """Send ``ns`` once over ``channel`` as one batch: what to record for each of them (a
    batch is accepted or refused as a whole). A disabled endpoint is reported as the first
    notification's recipient's."""
    answer = channel.send_batch(ns)
    return outcome(answer, channel.name, ns[0].recipient, policy, now, attempts, jitter)


def outcome(
    answer: Delivery,
    channel: str,
    recipient: Recipient,
    policy: BackoffPolicy,
    now: datetime,
    attempts: Attempts,
    jitter: Callable[[], float] = random.random,
) -> Outcome:
    """What a channel's answer means for the record: sent, retry when, or disabled."""
    if isinstance(answer, Accepted):
        return Sent(now, answer.detail)
    if isinstance(answer, Gone):
        return Disabled(now, answer.reason, True, channel, recipient)
    assert isinstance(answer, RetryLater)
    since = attempts.failing_since or now
    if expired(policy, since, now):
        reason = (
            f"failing since {since.isoformat()} (more than {policy.disable_after_s:.0f} s):"
            f" {answer.reason}"
        )
        return Disabled(now, reason, False, channel, recipient)
    wait = delay(policy, attempts.failures, jitter(), answer.after)
    return Retry(
        now + timedelta(seconds=wait), Attempts(attempts.failures + 1, since), answer.reason
    )
