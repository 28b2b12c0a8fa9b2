"""Frozen value objects that flow through the pipeline.

Foreign types (paho messages, HTTP responses, rows) are converted to these at the edges.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import NamedTuple


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


@dataclass(frozen=True, slots=True)
class Rejection:
    """Something that was not stored as a reading, with the reason it was quarantined.

    ``index`` is the reading's position in a batch payload, or ``None`` when the whole
    message was rejected. ``payload`` holds the raw bytes that were rejected.
    """

    reason: str
    detail: str
    topic: str
    payload: bytes
    received_ms: int
    index: int | None = None
    park: str | None = None
    tenant: str | None = None
    meter: str | None = None


@dataclass(frozen=True, slots=True)
class WriteBatch:
    """What one store write must make durable, all or nothing as far as acking goes."""

    readings: tuple[Reading, ...] = ()
    rejections: tuple[Rejection, ...] = ()

    def __len__(self) -> int:
        return len(self.readings) + len(self.rejections)
