"""A quarantine quota per tenant, so one tenant's garbage never fills the store for everyone.

Every tenant has two token buckets, in records and in bytes. A quarantined message costs one
record for itself plus one per rejected reading, and the bytes kept of it. Within the quota
everything is kept; beyond it the message's rejections are only counted by reason, and the
counts go into one summary record per tenant and store write, so nothing disappears silently
and what is written stays bounded. Pure: the clock is passed in.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from parkflow.model import QuarantinedMessage, Rejection

QUOTA_EXCEEDED = "quota_exceeded"
UNATTRIBUTED = ("", "")  # messages whose topic names no registered tenant share one bucket


@dataclass(frozen=True, slots=True)
class QuotaLimits:
    burst_records: int = 2000
    records_per_s: float = 20.0
    burst_bytes: int = 8 * 1024 * 1024
    bytes_per_s: float = 256 * 1024


@dataclass(slots=True)
class _Bucket:
    records: float
    nbytes: float
    at_s: float


@dataclass(slots=True)
class Suppressed:
    """What one tenant had beyond its quota since the last summary."""

    first_ms: int
    last_ms: int
    reasons: Counter[str] = field(default_factory=Counter)
    messages: int = 0
    payload_bytes: int = 0


def cost(rejections: list[Rejection], message: QuarantinedMessage | None) -> tuple[int, int]:
    """(records, bytes) that keeping this costs."""
    records = len(rejections) + (1 if message is not None else 0)
    nbytes = sum(len(r.detail) + 64 for r in rejections)
    if message is not None:
        nbytes += len(message.payload) + len(message.topic) + 64
    return records, nbytes


class QuarantineQuota:
    def __init__(self, limits: QuotaLimits | None = None) -> None:
        self.limits = limits or QuotaLimits()
        self._buckets: dict[tuple[str, str], _Bucket] = {}

    def admit(self, key: tuple[str, str], records: int, nbytes: int, now_s: float) -> bool:
        """Take the cost from the tenant's buckets if both hold it; False leaves them as they are."""
        lim = self.limits
        b = self._buckets.get(key)
        if b is None:
            b = self._buckets[key] = _Bucket(lim.burst_records, lim.burst_bytes, now_s)
        elapsed = max(0.0, now_s - b.at_s)
        b.records = min(lim.burst_records, b.records + elapsed * lim.records_per_s)
        b.nbytes = min(lim.burst_bytes, b.nbytes + elapsed * lim.bytes_per_s)
        b.at_s = now_s
        if records <= b.records and nbytes <= b.nbytes:
            b.records -= records
            b.nbytes -= nbytes
            return True
        return False


def tenant_key(park: str | None, tenant: str | None) -> tuple[str, str]:
    if park is None or tenant is None:
        return UNATTRIBUTED
    return (park, tenant)


def summary(key: tuple[str, str], s: Suppressed, received_ms: int, nonce: str) -> Rejection:
    """The record that stands for a tenant's suppressed rejections in one store write."""
    park, tenant = key
    who = f"tenant {park}/{tenant}" if key != UNATTRIBUTED else "unattributed topics"
    reasons = ", ".join(f"{reason} {n}" for reason, n in s.reasons.most_common())
    detail = (
        f"{sum(s.reasons.values())} rejection(s) in {s.messages} message(s) from {who}"
        f" beyond the quarantine quota, received {s.first_ms}..{s.last_ms} (ms):"
        f" {reasons}; {s.payload_bytes} payload bytes not kept"
    )
    return Rejection(
        QUOTA_EXCEEDED,
        detail[:2000],
        "",
        received_ms,
        f"quota:{park}/{tenant}:{s.first_ms}:{nonce}",
        None,
        park or None,
        tenant or None,
        None,
    )
