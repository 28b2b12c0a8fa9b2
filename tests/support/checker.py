"""A Jepsen-style checker for the ingest path: what the broker acknowledged vs what the store holds.
(The publisher, its log and the check belong together: one module, however long.)

The ``Publisher`` sends sequence-numbered readings (the ``seq`` field, unique per reading) with
QoS 1 over MQTT v5, spread round-robin over several meters, one reading per message or batches
of them, and records for every message the reason code of the broker's PUBACK. A message is
*acknowledged* only when the broker answered with a reason code below 0x80; a refusal (0x80 and
up, e.g. 0x87 not authorised) or no answer at all means the broker never took responsibility for
it, so it may be missing from the store without anything being lost.

``check(store, acknowledged)`` reads the store back and classifies:

- lost: an acknowledged reading with no stored reading at its (park, tenant, meter, ts) holding
  the value (in canonical units) and seq that were sent;
- duplicated: a seq stored more than once (under two timestamps or meters, say);
- unexpected: a stored reading that nobody sent (unknown key, or a value or seq other than the
  one sent under that key).

Readings sent but never acknowledged may or may not be stored; pass them as ``sent`` so that
finding them stored is not counted as unexpected.

The publisher runs in the caller's process, or in a subprocess when the publishing client must
not share the test's CPU and GIL::

    python -m tests.support.checker --port 1883 --count 5000 --batch 10 --out sent.json

writes the log of every message (readings, mid, reason code), and ``load_log`` reads it back.
"""

from __future__ import annotations

import argparse
import json
import math
import time
import uuid
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from parkflow.model import Reading
from parkflow.registry import SAMPLE_REGISTRY, Registry, ResolvedMeter, load_registry
from parkflow.store.ports import ReadingQuery, Store
from parkflow.topics import topic_for
from service.simulate.mqtt_client import NO_MATCHING_SUBSCRIBERS, REFUSED, QoS1Publisher

__all__ = [  # REFUSED and NO_MATCHING_SUBSCRIBERS are the tests' names for the reason codes
    "DEFAULT_METERS",
    "NO_MATCHING_SUBSCRIBERS",
    "REFUSED",
    "MeterTarget",
    "Publisher",
    "Result",
    "SentMessage",
    "SentReading",
    "acknowledged_in",
    "check",
    "default_value",
    "load_log",
    "meters_from_registry",
    "meters_of_park",
    "sent_in",
]

# Sample-park meters of all three kinds and of different units (kg -> t, L -> m3, ...).
DEFAULT_METERS = (
    ("songlam", "thep-an", "thep-water"),
    ("songlam", "mekong-foods", "mf-pallets"),
    ("songlam", "thep-an", "thep-elec"),
    ("songlam", "det-phuoc", "det-water"),
    ("songlam", "thep-an", "thep-scale"),
)


@dataclass(frozen=True, slots=True)
class MeterTarget:
    park: str
    tenant: str
    meter: str
    to_canonical: float = 1.0  # the store holds sent value * this
    lo: float | None = None  # the meter's plausible range, in the unit we send
    hi: float | None = None
    resource: str = ""  # what the store files the readings under (for building them)
    direction: str = ""

    @property
    def topic(self) -> str:
        return topic_for(self.park, self.tenant, self.meter)

    @classmethod
    def of(cls, rm: ResolvedMeter) -> MeterTarget:
        m = rm.meter
        return cls(
            rm.park.id,
            rm.tenant.id,
            m.id,
            rm.to_canonical,
            m.min,
            m.max,
            str(m.resource),
            str(m.direction),
        )


def meters_from_registry(
    registry: Registry | None = None, ids: Iterable[tuple[str, str, str]] = DEFAULT_METERS
) -> list[MeterTarget]:
    reg = registry or load_registry(SAMPLE_REGISTRY)
    out = []
    for park, tenant, meter in ids:
        rm = reg.meter(park, tenant, meter)
        if rm is None:
            raise KeyError(f"{park}/{tenant}/{meter} is not in the registry")
        out.append(MeterTarget.of(rm))
    return out


def meters_of_park(park: str, registry: Registry | None = None) -> list[MeterTarget]:
    """Every meter of one park, in registry order."""
    reg = registry or load_registry(SAMPLE_REGISTRY)
    out = [MeterTarget.of(rm) for rm in reg.meters() if rm.park.id == park]
    if not out:
        raise KeyError(f"no meters for park {park!r} in the registry")
    return out


@dataclass(frozen=True, slots=True)
class SentReading:
    seq: int
    park: str
    tenant: str
    meter: str
    ts_ms: int
    value: float  # as sent, in the meter's unit
    expected: float  # what the store must hold: value in the canonical unit

    @property
    def key(self) -> tuple[str, str, str, int]:
        return (self.park, self.tenant, self.meter, self.ts_ms)


@dataclass(slots=True)
class SentMessage:
    topic: str
    readings: tuple[SentReading, ...]
    mid: int = -1
    reason: int | None = None  # PUBACK reason code; None while unanswered
    sent_at: float = 0.0  # time.time()
    acked_at: float | None = None

    @property
    def answered(self) -> bool:
        return self.reason is not None

    @property
    def acknowledged(self) -> bool:
        return self.reason is not None and self.reason < REFUSED

    def to_json(self) -> dict[str, Any]:
        return {
            "topic": self.topic,
            "mid": self.mid,
            "reason": self.reason,
            "sent_at": self.sent_at,
            "acked_at": self.acked_at,
            "readings": [
                [r.seq, r.park, r.tenant, r.meter, r.ts_ms, r.value, r.expected]
                for r in self.readings
            ],
        }

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> SentMessage:
        return cls(
            d["topic"],
            tuple(SentReading(*row) for row in d["readings"]),
            d["mid"],
            d["reason"],
            d["sent_at"],
            d["acked_at"],
        )


def default_value(seq: int, target: MeterTarget) -> float:
    """A value inside the meter's range that differs from reading to reading."""
    v = 1.0 + (seq % 997) * 0.25
    if target.lo is not None:
        v = max(v, target.lo)
    if target.hi is not None:
        v = min(v, target.hi)
    return v


class Publisher:
    """A QoS 1, MQTT v5 publisher that remembers what the broker acknowledged.

    Readings are spread round-robin over ``meters``; each message holds ``batch`` readings of one
    meter (``batch=1`` sends a single JSON object, more sends an array). Every meter gets
    timestamps ``base_ts_ms + k * step_ms`` for its k-th reading, so (meter, ts) is unique.
    The MQTT side (in-flight window, PUBACKs matched to messages, also those that arrive before
    ``publish`` returns) is ``service.simulate.mqtt_client.QoS1Publisher``.
    """

    def __init__(
        self,
        port: int,
        host: str = "127.0.0.1",
        *,
        meters: Sequence[MeterTarget] | None = None,
        batch: int = 1,
        base_ts_ms: int | None = None,
        step_ms: int = 1000,
        first_seq: int = 1,
        value: Callable[[int, MeterTarget], float] = default_value,
        client_id: str | None = None,
        max_inflight: int = 500,
        username: str | None = None,
        password: str | None = None,
    ) -> None:
        if batch < 1:
            raise ValueError("batch must be at least 1")
        self.host, self.port = host, port
        self.meters = list(meters) if meters is not None else meters_from_registry()
        self.batch = batch
        self.base_ts_ms = (
            base_ts_ms
            if base_ts_ms is not None
            else (time.time_ns() // 1_000_000 // 1000 * 1000 - 6 * 3_600_000)
        )
        self.step_ms = step_ms
        self.value = value
        self._next_seq = first_seq
        self._per_meter = [0] * len(self.meters)
        self._turn = 0
        self.messages: list[SentMessage] = []
        self._mqtt = QoS1Publisher[SentMessage](
            host,
            port,
            self._on_answer,
            client_id=client_id or f"checker-{uuid.uuid4().hex[:10]}",
            window=max_inflight,
            username=username,
            password=password,
            clean_start=True,
            # Mosquitto 2.0.11 answers a publish its ACL denies with PUBACK 0x87 and then
            # closes the connection; paho resends what was in flight on reconnect. Reconnect at
            # once, or a few refusals cost seconds each.
            reconnect_delay=(0.05, 0.5),
        )
        self.client = self._mqtt.client
        self._lock = self._mqtt.lock  # also guards what _on_answer writes into the messages

    # connection

    def connect(self, timeout: float = 10.0) -> Publisher:
        self._mqtt.connect(timeout, retry=True)
        return self

    def close(self) -> None:
        self._mqtt.close()

    def __enter__(self) -> Publisher:
        return self.connect()

    def __exit__(self, *exc: object) -> None:
        self.close()

    # publishing

    def _next_message(self) -> SentMessage:
        i = self._turn % len(self.meters)
        self._turn += 1
        target = self.meters[i]
        readings = []
        for _ in range(self.batch):
            seq = self._next_seq
            self._next_seq += 1
            ts = self.base_ts_ms + self._per_meter[i] * self.step_ms
            self._per_meter[i] += 1
            v = self.value(seq, target)
            readings.append(
                SentReading(
                    seq, target.park, target.tenant, target.meter, ts, v, v * target.to_canonical
                )
            )
        return SentMessage(target.topic, tuple(readings))

    @staticmethod
    def payload(msg: SentMessage) -> bytes:
        docs = [{"ts": r.ts_ms, "value": r.value, "seq": r.seq} for r in msg.readings]
        return json.dumps(docs[0] if len(docs) == 1 else docs, separators=(",", ":")).encode()

    def publish(self, readings: int, rate: float | None = None) -> list[SentMessage]:
        """Send at least ``readings`` more readings (whole messages), at ``rate`` readings/s if given."""
        out: list[SentMessage] = []
        started = time.monotonic()
        count = 0
        while count < readings:
            msg = self._next_message()
            self.send(msg)
            out.append(msg)
            count += len(msg.readings)
            if rate:
                ahead = started + count / rate - time.monotonic()
                if ahead > 0:
                    time.sleep(ahead)
        return out

    def send(self, msg: SentMessage, payload: bytes | None = None) -> SentMessage:
        """Publish one message (its own payload unless ``payload`` overrides it) and track it."""
        msg.sent_at = time.time()
        with self._lock:
            self.messages.append(msg)
        body = self.payload(msg) if payload is None else payload
        mid = self._mqtt.publish(msg.topic, body, msg)
        with self._lock:
            msg.mid = mid
        return msg

    @staticmethod
    def _on_answer(msg: SentMessage, mid: int, code: int, at: float) -> None:
        msg.mid, msg.reason, msg.acked_at = mid, code, at

    def wait_answered(self, timeout: float = 30.0) -> None:
        """Wait until the broker has answered every message sent so far."""
        left = self._mqtt.wait_answered(timeout)
        if left:
            raise TimeoutError(f"{left} message(s) still without a PUBACK")

    # results

    def acknowledged(self) -> list[SentReading]:
        with self._lock:
            return [r for m in self.messages if m.acknowledged for r in m.readings]

    def sent(self) -> list[SentReading]:
        with self._lock:
            return [r for m in self.messages for r in m.readings]

    def refused(self) -> list[SentMessage]:
        with self._lock:
            return [m for m in self.messages if m.reason is not None and m.reason >= REFUSED]

    def reason_counts(self) -> dict[int | None, int]:
        counts: dict[int | None, int] = defaultdict(int)
        with self._lock:
            for m in self.messages:
                counts[m.reason] += 1
        return dict(counts)

    def save(self, path: str | Path) -> None:
        with self._lock:
            data = [m.to_json() for m in self.messages]
        Path(path).write_text(json.dumps(data))


def load_log(path: str | Path) -> list[SentMessage]:
    return [SentMessage.from_json(d) for d in json.loads(Path(path).read_text())]


def acknowledged_in(messages: Iterable[SentMessage]) -> list[SentReading]:
    return [r for m in messages if m.acknowledged for r in m.readings]


def sent_in(messages: Iterable[SentMessage]) -> list[SentReading]:
    return [r for m in messages for r in m.readings]


# the check


@dataclass(frozen=True, slots=True)
class Result:
    lost: int
    duplicated: int
    unexpected: int
    stored: int
    lost_examples: tuple[SentReading, ...] = field(default=(), repr=False)
    duplicated_examples: tuple[tuple[int, tuple[Reading, ...]], ...] = field(default=(), repr=False)
    unexpected_examples: tuple[Reading, ...] = field(default=(), repr=False)

    @property
    def ok(self) -> bool:
        return self.lost == 0 and self.duplicated == 0 and self.unexpected == 0

    def describe(self) -> str:
        lines = [
            f"stored={self.stored} lost={self.lost} duplicated={self.duplicated}"
            f" unexpected={self.unexpected}"
        ]
        lines += [f"  lost: {r}" for r in self.lost_examples]
        lines += [f"  duplicated seq {s}: {list(rs)}" for s, rs in self.duplicated_examples]
        lines += [f"  unexpected: {r}" for r in self.unexpected_examples]
        return "\n".join(lines)


def _same_value(a: float, b: float) -> bool:
    return math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-12)


def check(
    store: Store,
    acknowledged: Iterable[SentReading],
    *,
    sent: Iterable[SentReading] = (),
    query: ReadingQuery | None = None,
    examples: int = 10,
) -> Result:
    """Compare the store with what the broker acknowledged (see the module docstring).

    ``query`` limits what is read back (default: every park the readings were sent to).
    """
    acked = list(acknowledged)
    expected: dict[tuple[str, str, str, int], SentReading] = {}
    for r in [*acked, *sent]:
        expected.setdefault(r.key, r)
    if query is not None:
        stored = store.readings(query)
    else:
        stored = []
        for park in sorted({r.park for r in expected.values()}):
            stored += store.readings(ReadingQuery(park=park))
    by_key: dict[tuple[str, str, str, int], Reading] = {}
    by_seq: dict[int, list[Reading]] = defaultdict(list)
    unexpected: list[Reading] = []
    for s in stored:
        key = (s.park, s.tenant, s.meter, s.ts_ms)
        by_key[key] = s
        if s.seq is not None:
            by_seq[s.seq].append(s)
        want = expected.get(key)
        if want is None or want.seq != s.seq or not _same_value(want.expected, s.value):
            unexpected.append(s)
    lost = []
    for r in acked:
        got = by_key.get(r.key)
        if got is None or got.seq != r.seq or not _same_value(r.expected, got.value):
            lost.append(r)
    duplicated = [(seq, tuple(rs)) for seq, rs in sorted(by_seq.items()) if len(rs) > 1]
    return Result(
        lost=len(lost),
        duplicated=len(duplicated),
        unexpected=len(unexpected),
        stored=len(stored),
        lost_examples=tuple(lost[:examples]),
        duplicated_examples=tuple(duplicated[:examples]),
        unexpected_examples=tuple(unexpected[:examples]),
    )


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(description="publish sequence-numbered readings and log PUBACKs")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--count", type=int, required=True, help="readings to send")
    p.add_argument("--batch", type=int, default=1, help="readings per message")
    p.add_argument("--rate", type=float, default=None, help="readings per second")
    p.add_argument("--first-seq", type=int, default=1)
    p.add_argument("--base-ts-ms", type=int, default=None)
    p.add_argument("--registry", type=Path, default=SAMPLE_REGISTRY)
    p.add_argument("--timeout", type=float, default=120.0, help="wait this long for PUBACKs")
    p.add_argument("--out", type=Path, required=True, help="JSON log of every message")
    args = p.parse_args(argv)
    pub = Publisher(
        args.port,
        args.host,
        meters=meters_from_registry(load_registry(args.registry)),
        batch=args.batch,
        base_ts_ms=args.base_ts_ms,
        first_seq=args.first_seq,
    )
    with pub:
        pub.publish(args.count, rate=args.rate)
        try:
            pub.wait_answered(args.timeout)
        finally:
            pub.save(args.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
