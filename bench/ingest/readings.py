"""The readings a phase sends: which reading goes in which message, with what ts, seq and value."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass

from tests.support.checker import MeterTarget, meters_of_park

PARK = "songlam"
BUCKET_MS = 100  # readings per latency bucket (ts step is 1 ms per reading)
BATCH_MESSAGE = 100  # readings per message in the batch phase
RAW_BODY_POINTS = 5000
DAY_MS = 86_400_000
PROBE_SEQ = 2**62  # the readiness probe's seq; its ts lies before T0, outside every count


def park_meters() -> list[MeterTarget]:
    """The sample park's meters (from the sample registry), in registry order."""
    return meters_of_park(PARK)


def low(m: MeterTarget) -> float:
    """The lowest value sent to a meter: its registry minimum, else 0."""
    return float(m.lo) if m.lo is not None else 0.0


def span(m: MeterTarget) -> float:
    """Values sent to a meter lie in [low, low + span): its registry range, else 1000 wide."""
    lo = m.lo if m.lo is not None else 0.0
    hi = m.hi if m.hi is not None else lo + 1000.0
    return float(hi - lo)


@dataclass(frozen=True)
class Layout:
    """Which reading goes where: reading k has seq k, ts t0 + k ms, and sits in message k // size."""

    n: int
    msg_size: int
    t0: int
    meters: list[MeterTarget]

    def meter_of(self, k: int) -> MeterTarget:
        return self.meters[(k // self.msg_size) % len(self.meters)]

    def value(self, k: int) -> float:
        m = self.meter_of(k)
        return round(low(m) + span(m) * ((k * 7919) % 1000) / 1000, 3)

    def message(self, first: int) -> tuple[str, bytes]:
        """Topic and payload of the message whose first reading is ``first``."""
        topic = self.meter_of(first).topic
        items = [
            {"ts": self.t0 + k, "value": self.value(k), "seq": k}
            for k in range(first, first + self.msg_size)
        ]
        doc: object = items[0] if self.msg_size == 1 else items
        return topic, json.dumps(doc, separators=(",", ":")).encode()

    def blocks(self, publishers: int) -> list[tuple[int, int]]:
        per = self.n // publishers
        return [(p * per, (p + 1) * per) for p in range(publishers)]


def round_n(n: int, publishers: int) -> int:
    """``n`` rounded up so that every publisher's block is whole buckets and whole messages."""
    unit = publishers * BUCKET_MS * BATCH_MESSAGE // math.gcd(BUCKET_MS, BATCH_MESSAGE)
    return max(unit, -(-n // unit) * unit)
