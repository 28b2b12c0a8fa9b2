"""Frozen value objects that flow through the pipeline.

Foreign types (paho messages, HTTP responses, rows) are converted to these at the edges.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum
from typing import NamedTuple

# No meter reads more than this, in canonical units (m3, kWh, t; per hour for rates): a
# thousand cubic kilometres of water, a petawatt-hour. A reading beyond it is a gateway fault:
# the ingestor quarantines it, and meter maths drops a step beyond it (two finite register
# values must never make an infinite step).
PHYSICAL_LIMIT = 1e12


Point = tuple[int, float]  # (ts_ms, value) of one meter


def dedupe_points(points: Iterable[Point]) -> list[Point]:
    """Sorted by time, one per timestamp, the last given winning, as the stores' identity says
    (a correction replaces the reading). InfluxDB may also hold two points at one ts_ms when a
    meter's resource or direction changed."""
    by_ts: dict[int, float] = {}
    for ts, value in points:
        by_ts[ts] = value
    return sorted(by_ts.items())


class Direction(StrEnum):
    IN = "in"  # consumption or intake
    OUT = "out"  # generation or discharge


class MeterKind(StrEnum):
    CUMULATIVE = "cumulative"  # ever-growing counter (may reset or roll over)
    DELTA = "delta"  # quantity since the previous reading
    RATE = "rate"  # instantaneous rate, integrated over time


@dataclass(frozen=True, slots=True)
class MeterKey:
    park: str
    tenant: str
    meter: str


class Reading(NamedTuple):
    """One validated reading, value already in the meter's canonical unit.

    Identity is (park, tenant, meter, ts_ms): the same reading delivered twice is the same point.
    A named tuple rather than a frozen dataclass: it is built once per reading on the ingest
    hot path, where it costs a third of the dataclass.
    """

    park: str
    tenant: str
    meter: str
    resource: str
    direction: Direction
    ts_ms: int  # epoch milliseconds, UTC
    value: float  # canonical unit: m3, kWh or t (per hour for rate meters)
    seq: int | None = None

    @property
    def key(self) -> MeterKey:
        return MeterKey(self.park, self.tenant, self.meter)


MESSAGE_ID_HEX = 32  # 128 bits of SHA-256: collisions are out of reach, the id stays short
WHOLE_MESSAGE = -1  # ``Rejection.slot`` of a rejection that concerns the whole message


def message_id(topic: str, payload: bytes) -> str:
    """The identity of a message's content: the same bytes on the same topic, delivered again
    (a QoS 1 redelivery after a crash, a gateway resending), get the same quarantine records."""
    h = hashlib.sha256(topic.encode("utf-8", "surrogateescape"))
    h.update(b"\0")
    h.update(payload)
    return h.hexdigest()[:MESSAGE_ID_HEX]


@dataclass(frozen=True, slots=True)
class QuarantinedMessage:
    """The raw message that rejections point to, kept once per message however many of its
    readings were rejected, and capped: one big bad message must not cost a thousand copies
    of itself. ``payload`` holds its first bytes, ``size`` its full length, ``message_id`` the
    hash of topic and full payload."""

    message_id: str
    topic: str
    received_ms: int
    payload: bytes
    size: int
    park: str | None = None
    tenant: str | None = None
    meter: str | None = None

    @property
    def truncated(self) -> bool:
        return len(self.payload) < self.size


@dataclass(frozen=True, slots=True)
class Rejection:
    """Something that was not stored as a reading, with the reason it was quarantined.

    ``index`` is the reading's position in a batch payload, or ``None`` when the whole
    message was rejected; the raw bytes are in the ``QuarantinedMessage`` named by
    ``message_id``. A rejection's identity is (message_id, index): writing it twice keeps one.
    """

    reason: str
    detail: str
    topic: str
    received_ms: int
    message_id: str
    index: int | None = None
    park: str | None = None
    tenant: str | None = None
    meter: str | None = None

    @property
    def slot(self) -> int:
        return WHOLE_MESSAGE if self.index is None else self.index

    @property
    def rid(self) -> str:
        """The rejection's identity as one string (InfluxDB keeps it as a field)."""
        return f"{self.message_id}:{self.slot}"


@dataclass(frozen=True, slots=True)
class WriteBatch:
    """What one store write must make durable, all or nothing as far as acking goes."""

    readings: tuple[Reading, ...] = ()
    rejections: tuple[Rejection, ...] = ()
    messages: tuple[QuarantinedMessage, ...] = ()

    def __len__(self) -> int:
        return len(self.readings) + len(self.rejections) + len(self.messages)
