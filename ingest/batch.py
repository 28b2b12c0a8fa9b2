"""A batch: the messages one store write makes durable, and what they became.

The validation thread fills one; full ones are sealed and wait for the writer, which may merge
several when it has fallen behind (one write of several requests, spread over the store's
cores). Rejections beyond a tenant's quarantine quota are only counted here, and become one
summary record per tenant when the writer takes the batch.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field

from ingest.mqtt.source import InboundMessage
from ingest.quota import Suppressed, summary
from parkflow.model import QuarantinedMessage, Reading, Rejection, WriteBatch


@dataclass(slots=True)
class Batch:
    messages: list[InboundMessage] = field(default_factory=list)
    readings: list[Reading] = field(default_factory=list)
    rejections: list[Rejection] = field(default_factory=list)
    quarantined: list[QuarantinedMessage] = field(default_factory=list)
    suppressed: dict[tuple[str, str], Suppressed] = field(default_factory=dict)
    nbytes: int = 0  # payload bytes of ``messages``
    since: float = 0.0  # monotonic time the oldest message was added

    @property
    def records(self) -> int:
        return len(self.readings) + len(self.rejections) + len(self.quarantined)

    def merge(self, other: Batch) -> None:
        self.messages += other.messages
        self.readings += other.readings
        self.rejections += other.rejections
        self.quarantined += other.quarantined
        self.nbytes += other.nbytes
        for key, s in other.suppressed.items():
            mine = self.suppressed.get(key)
            if mine is None:
                self.suppressed[key] = s
            else:
                mine.first_ms = min(mine.first_ms, s.first_ms)
                mine.last_ms = max(mine.last_ms, s.last_ms)
                mine.reasons.update(s.reasons)
                mine.messages += s.messages
                mine.payload_bytes += s.payload_bytes

    def to_write(self, now_ms: int) -> WriteBatch:
        """What the store must make durable; the quota summaries each get an identity of
        their own (a nonce: two batches may count the same tenant in the same millisecond)."""
        rejections = list(self.rejections)
        nonce = uuid.uuid4().hex[:12]
        rejections += [summary(k, s, now_ms, nonce) for k, s in self.suppressed.items()]
        return WriteBatch(tuple(self.readings), tuple(rejections), tuple(self.quarantined))
